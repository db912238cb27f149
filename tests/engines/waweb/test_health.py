"""Honest health of waweb sessions: the silence decision and the health of a session
row at an injected clock (no wall clock), and what ``/metrics`` reports from the
rows. The supervisor restarting a silent child with real processes is in
test_processes.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from engines.models import CommandListener
from engines.waweb import health
from engines.waweb.models import WawebSession
from instances.models import Instance
from tests.factories import make_instance

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SILENT_AFTER = 180.0


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def row(**fields: object) -> WawebSession:
    base: dict[str, object] = {"instance_id": 1, "started_at": ago(3600)}
    base.update(fields)
    return WawebSession(**base)


# --- The decision, at an injected clock -----------------------------------------------


def test_a_session_that_is_not_connected_is_never_silent() -> None:
    assert health.silent_for(row(connected=False, alive_at=ago(3600)), now=NOW, silent_after=SILENT_AFTER) is None


def test_a_connected_session_with_recent_proof_is_not_silent() -> None:
    session = row(connected=True, connected_at=ago(3600), alive_at=ago(SILENT_AFTER - 1))
    assert health.silent_for(session, now=NOW, silent_after=SILENT_AFTER) is None


def test_a_connected_session_without_proof_for_longer_than_the_setting_is_silent() -> None:
    session = row(connected=True, connected_at=ago(3600), alive_at=ago(600), last_event_at=ago(30))
    # last_event_at alone proves nothing (keep-alive timeouts are events too).
    assert health.silent_for(session, now=NOW, silent_after=SILENT_AFTER) == 600


def test_connecting_counts_as_proof() -> None:
    fresh = row(connected=True, connected_at=ago(10), alive_at=None)
    assert health.silent_for(fresh, now=NOW, silent_after=SILENT_AFTER) is None
    stale = row(connected=True, connected_at=ago(SILENT_AFTER + 5), alive_at=None)
    assert health.silent_for(stale, now=NOW, silent_after=SILENT_AFTER) == SILENT_AFTER + 5


def test_silence_is_judged_exactly_at_the_threshold() -> None:
    at = row(connected=True, connected_at=ago(SILENT_AFTER))
    assert health.silent_for(at, now=NOW, silent_after=SILENT_AFTER) is None
    past = row(connected=True, connected_at=ago(SILENT_AFTER + 0.5))
    assert health.silent_for(past, now=NOW, silent_after=SILENT_AFTER) == SILENT_AFTER + 0.5


@pytest.mark.parametrize(
    ("fields", "running", "expected"),
    [
        ({"connected": True, "connected_at": ago(600), "alive_at": ago(20)}, True, health.HEALTHY),
        ({"connected": True, "connected_at": ago(600), "alive_at": ago(400)}, True, health.SILENT),
        ({"connected": False}, True, health.DIALING),
        ({"connected": True, "connected_at": ago(600), "alive_at": ago(20)}, False, health.STOPPED),
        ({"parked_reason": "crashed", "parked_until": NOW + timedelta(seconds=8)}, False, health.BACKING_OFF),
        ({"parked_reason": "silent", "parked_until": ago(1)}, False, health.BACKING_OFF),
        ({"parked_reason": "loggedOut", "parked_until": None}, False, health.STOPPED),
    ],
    ids=["healthy", "silent", "dialing", "no-process", "backing-off", "restart-due", "parked-for-the-epoch"],
)
def test_the_health_of_a_row(fields: dict[str, object], running: bool, expected: str) -> None:
    assert health.classify(row(**fields), now=NOW, silent_after=SILENT_AFTER, running=running) == expected


# --- /metrics -------------------------------------------------------------------------


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def listening(instance: Instance) -> None:
    CommandListener.objects.create(instance_id=instance.pk, epoch=1, pid=1, heartbeat_at=timezone.now() + timedelta(hours=1))  # fresh however slow the run


@pytest.mark.django_db
def test_metrics_count_sessions_by_health_and_sum_their_counters(client: Client) -> None:
    now = timezone.now()
    healthy, silent, dialing, backing_off, never = (make_instance(engine="waweb") for _ in range(5))
    deleted = make_instance(engine="waweb")
    make_instance()  # an emulator instance is not a waweb session
    WawebSession.objects.create(
        instance_id=healthy.pk, started_at=now, connected=True, connected_at=now - timedelta(seconds=900),
        alive_at=now - timedelta(seconds=5), last_event_at=now - timedelta(seconds=42),
        reconnects=2, keepalive_failures=1, restarts=1,
    )
    WawebSession.objects.create(
        instance_id=silent.pk, started_at=now, connected=True, connected_at=now - timedelta(hours=2),
        alive_at=now - timedelta(hours=1), last_event_at=now - timedelta(hours=1), keepalive_failures=7,
        silent_restarts=3, restarts=3,
    )
    WawebSession.objects.create(instance_id=dialing.pk, started_at=now)
    WawebSession.objects.create(
        instance_id=backing_off.pk, restarts=5, parked_reason="crashed", parked_until=now + timedelta(seconds=30)
    )
    WawebSession.objects.create(instance_id=deleted.pk, restarts=100, connected=True, connected_at=now)
    Instance.objects.filter(pk=deleted.pk).update(is_deleted=True)
    for instance in (healthy, silent, dialing, deleted):
        listening(instance)

    samples = scrape(client)

    def sessions(status: str) -> float:
        return samples[("relay_engine_sessions", (("engine", "waweb"), ("health", status)))]

    assert sessions("healthy") == 1
    assert sessions("silent") == 1
    assert sessions("dialing") == 1
    assert sessions("backingOff") == 1
    assert sessions("stopped") == 1  # ``never``: no session row yet
    assert never.pk not in set(WawebSession.objects.values_list("instance_id", flat=True))
    waweb = (("engine", "waweb"),)
    assert samples[("relay_engine_session_reconnects_total", waweb)] == 2
    assert samples[("relay_engine_session_keepalive_failures_total", waweb)] == 8
    assert samples[("relay_engine_session_restarts_total", waweb)] == 9
    assert samples[("relay_engine_session_silent_restarts_total", waweb)] == 3
    # The silent session's hour without an event, not the deleted one's.
    quiet = samples[("relay_engine_session_seconds_since_last_event_max", waweb)]
    assert 3600 <= quiet < 3600 + 600


@pytest.mark.django_db
def test_metrics_export_every_health_at_zero_with_no_waweb_instance(client: Client) -> None:
    samples = scrape(client)
    for status in health.STATUSES:
        assert samples[("relay_engine_sessions", (("engine", "waweb"), ("health", status)))] == 0
    assert samples[("relay_engine_session_seconds_since_last_event_max", (("engine", "waweb"),))] == 0


@pytest.mark.django_db
def test_the_admin_lists_the_health_columns(admin_client: Client) -> None:
    instance = make_instance(engine="waweb")
    WawebSession.objects.create(instance_id=instance.pk, connected=True, silent_restarts=7)
    body = admin_client.get("/admin/waweb/wawebsession/").content.decode()
    assert "Silent restarts" in body
    assert "Alive at" in body
    assert ">7<" in body
