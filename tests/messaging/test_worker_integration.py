"""The send queue with real Celery worker processes (Redis broker in CI)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuMessage
from engines.emulator.transport import ensure_phone
from instances.models import Instance
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import method_url
from tests.factories import make_instance
from tests.processes import celery_worker_args, private_broker_queue, running, start, stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RECIPIENT = "79001230000"


@pytest.fixture
def queue(settings: Any) -> Iterator[str]:
    """A private broker queue, so concurrent test runs never eat each other's tasks;
    tasks go to the broker (not inline) so the real workers get them."""
    with private_broker_queue(settings) as name:
        yield name


def _sender(delay_ms: int) -> Instance:
    instance = make_instance(authorized=True)
    instance.settings["delaySendMessagesMilliseconds"] = delay_ms
    instance.save(update_fields=["settings"])
    ensure_phone(RECIPIENT, "Recipient")
    return instance


def _send_many(instance: Instance, count: int) -> list[str]:
    client = APIClient()
    ids = []
    for n in range(count):
        r = client.post(
            method_url(instance, "sendMessage"), {"chatId": f"{RECIPIENT}@c.us", "message": f"m{n}"}, format="json"
        )
        assert r.status_code == 200
        ids.append(r.json()["idMessage"])
    return ids


def _all_sent(instance: Instance, count: int) -> bool:
    return (
        OutgoingMessage.objects.filter(instance=instance, status=OutgoingStatus.SENT).count() == count
    )


def test_worker_sends_fifo_with_the_configured_delay(queue: str, tmp_path: Path) -> None:
    instance = _sender(delay_ms=500)
    ids = _send_many(instance, 5)
    assert OutgoingMessage.objects.filter(instance=instance, status=OutgoingStatus.QUEUED).count() == 5
    with running(celery_worker_args(queue), tmp_path / "worker.log", CELERY_TASK_DEFAULT_QUEUE=queue):
        wait_for(lambda: _all_sent(instance, 5), timeout=40, what="5 messages sent")
    rows = list(OutgoingMessage.objects.filter(instance=instance).order_by("sent_at"))
    assert [r.id_message for r in rows] == ids  # FIFO
    gaps = [(b.sent_at - a.sent_at).total_seconds() for a, b in zip(rows, rows[1:], strict=False)]
    assert all(gap >= 0.45 for gap in gaps), gaps
    network = list(EmuMessage.objects.filter(sender=instance.phone).order_by("created_at", "id"))
    assert [m.id_message for m in network] == ids


def test_kill_9_mid_drain_then_restart_delivers_each_message_exactly_once(queue: str, tmp_path: Path) -> None:
    instance = _sender(delay_ms=300)
    count = 20
    ids = _send_many(instance, count)
    fast_recovery = {
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SEND_STUCK_AFTER_SECONDS": "2",
        "SEND_DRAIN_LOCK_SECONDS": "2",
        "RELAY_RECOVER_INTERVAL_SECONDS": "1",
    }
    first = start(celery_worker_args(queue), tmp_path / "worker1.log", **fast_recovery)
    try:
        wait_for(
            lambda: OutgoingMessage.objects.filter(instance=instance, status=OutgoingStatus.SENT).count() >= 3,
            timeout=40,
            what="the first worker to be mid-drain",
        )
    finally:
        stop(first, signal.SIGKILL)
    sent_before = OutgoingMessage.objects.filter(instance=instance, status=OutgoingStatus.SENT).count()
    assert sent_before < count, "the worker finished before it could be killed; raise the count"
    with running(
        celery_worker_args(queue, schedule=tmp_path / "beat-schedule"), tmp_path / "worker2.log", **fast_recovery
    ):
        wait_for(lambda: _all_sent(instance, count), timeout=60, what="every message sent after restart")
    network_ids = list(EmuMessage.objects.filter(sender=instance.phone).values_list("id_message", flat=True))
    assert sorted(network_ids) == sorted(ids)  # nothing lost, nothing twice
    assert len(set(network_ids)) == count
    order = list(OutgoingMessage.objects.filter(instance=instance).order_by("sent_at").values_list("id_message", flat=True))
    assert order == ids  # still FIFO across the crash
