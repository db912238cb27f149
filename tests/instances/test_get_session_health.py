"""getSessionHealth (Relay extension): the instance's engine, state, whether a runner
holds its session, and the engine's own health report; null for what an engine does
not report, never a made-up figure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines.models import CommandListener
from engines.waweb.models import WawebSession
from instances.api import SESSION_HEALTH_FIELDS
from instances.models import Instance, SessionLease
from tests.conftest import method_url
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


def leased(instance: Instance) -> None:
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="runner-1", epoch=2, expires_at=timezone.now() + timedelta(minutes=5)
    )


def test_it_reports_a_waweb_session(api_client: APIClient) -> None:
    instance = make_instance(engine="waweb")
    leased(instance)
    now = timezone.now()
    WawebSession.objects.create(
        instance_id=instance.pk,
        started_at=now - timedelta(minutes=30),
        connected=True,
        connected_at=now - timedelta(minutes=29),
        last_event_at=now - timedelta(seconds=40),
        alive_at=now - timedelta(seconds=40),
        reconnects=2,
        keepalive_failures=3,
        restarts=4,
        silent_restarts=1,
        last_error="silent for 200 s: said connected, but no event and no answered probe",
    )
    CommandListener.objects.create(instance_id=instance.pk, epoch=2, pid=1, heartbeat_at=timezone.now() + timedelta(hours=1))  # fresh however slow the run

    r = api_client.get(method_url(instance, "getSessionHealth"))

    assert r.status_code == 200
    body = r.json()
    assert body["engine"] == "waweb"
    assert body["stateInstance"] == instance.state
    assert body["leased"] is True
    assert body["health"] == "healthy"
    assert body["connectedAt"] == int((now - timedelta(minutes=29)).timestamp())
    assert 40 <= body["lastEventSecondsAgo"] < 40 + 600
    assert (body["reconnects"], body["keepAliveFailures"], body["restarts"], body["silentRestarts"]) == (2, 3, 4, 1)
    assert body["lastError"].startswith("silent for 200 s")
    assert body["backingOffReason"] == ""
    assert body["backingOffUntil"] is None
    assert body["silentAfterSeconds"] == 180


def test_it_reports_a_silent_waweb_session(api_client: APIClient) -> None:
    instance = make_instance(engine="waweb")
    hour_ago = timezone.now() - timedelta(hours=1)
    WawebSession.objects.create(
        instance_id=instance.pk, started_at=hour_ago, connected=True, connected_at=hour_ago, alive_at=hour_ago
    )
    CommandListener.objects.create(instance_id=instance.pk, epoch=1, pid=1, heartbeat_at=timezone.now() + timedelta(hours=1))  # fresh however slow the run

    body = api_client.get(method_url(instance, "getSessionHealth")).json()

    assert body["health"] == "silent"
    assert body["lastEventAt"] is None  # connected, then never an event
    assert body["lastEventSecondsAgo"] is None


def test_a_waweb_session_that_never_started_is_stopped_with_zero_counts(api_client: APIClient) -> None:
    instance = make_instance(engine="waweb")
    body = api_client.get(method_url(instance, "getSessionHealth")).json()
    assert body["health"] == "stopped"
    assert body["leased"] is False
    assert body["restarts"] == 0
    assert body["startedAt"] is None


def test_a_backing_off_waweb_session_says_why_and_until_when(api_client: APIClient) -> None:
    instance = make_instance(engine="waweb")
    until = timezone.now() + timedelta(seconds=64)
    WawebSession.objects.create(instance_id=instance.pk, restarts=6, parked_reason="crashed", parked_until=until)
    body = api_client.get(method_url(instance, "getSessionHealth")).json()
    assert body["health"] == "backingOff"
    assert body["backingOffReason"] == "crashed"
    assert body["backingOffUntil"] == int(until.timestamp())


def test_the_emulator_reports_engine_state_and_lease_and_no_health_figures(
    api_client: APIClient, instance: Instance
) -> None:
    leased(instance)
    body = api_client.get(method_url(instance, "getSessionHealth")).json()
    assert body == {
        "engine": "emulator",
        "stateInstance": instance.state,
        "leased": True,
        "health": None,
        **dict.fromkeys(SESSION_HEALTH_FIELDS, None),
    }


def test_the_cloud_engine_has_no_live_session(api_client: APIClient) -> None:
    instance = make_instance(engine="cloud")
    body = api_client.get(method_url(instance, "getSessionHealth")).json()
    assert (body["engine"], body["leased"], body["health"]) == ("cloud", None, None)
    assert all(body[name] is None for name in SESSION_HEALTH_FIELDS)


def test_waweb_and_other_engines_answer_the_same_keys(api_client: APIClient, instance: Instance) -> None:
    waweb = make_instance(engine="waweb")
    keys = set(api_client.get(method_url(waweb, "getSessionHealth")).json())
    assert keys == set(api_client.get(method_url(instance, "getSessionHealth")).json())


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "getSessionHealth", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_another_instances_token_never_sees_this_one(api_client: APIClient) -> None:
    mine, theirs = make_instance(engine="waweb"), make_instance(engine="waweb")
    WawebSession.objects.create(instance_id=mine.pk, restarts=9, last_error="secret reason")
    r = api_client.get(method_url(mine, "getSessionHealth", token=theirs.api_token))
    assert r.status_code == 401
    assert "secret reason" not in r.content.decode()


def test_it_answers_only_get(api_client: APIClient, instance: Instance) -> None:
    assert api_client.post(method_url(instance, "getSessionHealth"), {}, format="json").status_code == 404
