"""The database goes away in the middle of a drain sweep (after the engine took the
batch, before its statuses were written): the sweep raises DrainInterrupted, and
once the database is back resume_drains releases the dead sweep's lock and puts its
claimed rows back, so the queue moves at once instead of waiting out the drain
lock (SEND_DRAIN_LOCK_SECONDS) and the stuck-row timeout (SEND_STUCK_AFTER_SECONDS).
Nothing is sent twice: the engine skips what it already took."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from engines.contract import OutgoingPayload, SendResult
from engines.emulator.models import EmuMessage
from instances.models import Instance
from messaging import services
from messaging.models import OutgoingMessage, SendAttempt, SendCursor
from messaging.selectors import send_attempt_tally
from tests.instances.test_database_outage import unreachable_database
from tests.messaging.test_drain_batches import queue, unpaced

__all__ = ["unpaced"]

pytestmark = pytest.mark.django_db(transaction=True)


def queue_quietly(instance: Instance, texts: list[str], monkeypatch: pytest.MonkeyPatch) -> list[OutgoingMessage]:
    """Queue without the on-commit wake-up (inline Celery would drain at once): the
    tests drain by hand, at the moment they choose."""
    with monkeypatch.context() as patch:
        patch.setattr(services, "wake_queue", lambda *args, **kwargs: None)
        return queue(instance, texts)


def test_a_sweep_cut_by_an_outage_resumes_as_soon_as_the_database_is_back(
    unpaced: Instance, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    messages = queue_quietly(unpaced, ["1", "2", "3"], monkeypatch)
    from engines.emulator.transport import EmulatorTransport

    real = EmulatorTransport.send_messages
    outage = contextlib.ExitStack()

    def then_the_database_dies(self: Any, payloads: list[OutgoingPayload]) -> list[SendResult]:
        results = real(self, payloads)
        outage.enter_context(unreachable_database(str(tmp_path)))
        return results

    monkeypatch.setattr(EmulatorTransport, "send_messages", then_the_database_dies)
    with pytest.raises(services.DrainInterrupted) as interrupted:
        services.drain_queues([unpaced.id], "worker-1")
    outage.close()  # the database is back
    monkeypatch.setattr(EmulatorTransport, "send_messages", real)
    assert interrupted.value.locked == [unpaced.id]
    # What the outage left: the rows claimed, the lock held by the dead sweep.
    assert set(OutgoingMessage.objects.values_list("status", flat=True)) == {"sending"}
    assert SendCursor.objects.get(instance=unpaced).locked_by == "worker-1"
    services.drain_queues([unpaced.id], "worker-2")
    assert set(OutgoingMessage.objects.values_list("status", flat=True)) == {"sending"}  # still stuck

    woken = services.resume_drains(
        "worker-1", interrupted.value.instance_ids, interrupted.value.locked, interrupted.value.at
    )
    assert woken == [unpaced.id]
    assert SendCursor.objects.get(instance=unpaced).locked_by == ""
    services.drain_queues([unpaced.id], "worker-2")
    assert {m.status for m in OutgoingMessage.objects.all()} == {"sent"}
    on_network = list(EmuMessage.objects.filter(sender=unpaced.phone).order_by("id").values_list("id_message", flat=True))
    assert on_network == [m.id_message for m in messages]  # once each, in order
    assert send_attempt_tally() == (3, 3, 3, 0)
    assert set(SendAttempt.objects.values_list("attempt", flat=True)) == {2}  # the first hand-over rolled back


def test_resume_leaves_a_lock_another_worker_holds(unpaced: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    queue_quietly(unpaced, ["1"], monkeypatch)
    services.drain_queues([unpaced.id], "warm-up")  # creates the cursor row
    queue_quietly(unpaced, ["2"], monkeypatch)
    SendCursor.objects.filter(instance=unpaced).update(locked_by="worker-2")
    OutgoingMessage.objects.filter(status="queued").update(status="sending")
    from django.utils import timezone

    services.resume_drains("worker-1", [unpaced.id], [unpaced.id], timezone.now())
    assert SendCursor.objects.get(instance=unpaced).locked_by == "worker-2"
    assert OutgoingMessage.objects.filter(status="sending").count() == 1
