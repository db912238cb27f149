"""The send attempt log (messaging.SendAttempt): every message the drain hands to an
engine is logged, with no unique constraint, so "sent exactly once" is counted from
it (messaging.selectors.send_attempt_tally) and a duplicate send shows up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from engines.contract import OutgoingPayload, SendResult, TransportError
from engines.emulator.models import EmuMessage
from instances.models import Instance
from messaging import services
from messaging.models import OutgoingMessage, OutgoingStatus, SendAttempt
from messaging.selectors import send_attempt_tally
from tests.messaging.test_drain_batches import NOBODY, queue, unpaced

__all__ = ["unpaced"]


def test_every_message_handed_over_is_logged_once(unpaced: Instance) -> None:
    messages = queue(unpaced, ["1", "2"]) + queue(unpaced, ["3"], chat_id=NOBODY)
    services.drain_queue(unpaced.id, "test")
    rows = list(SendAttempt.objects.order_by("pk").values_list("id_message", "attempt", "outcome", "instance_id"))
    assert rows == [
        (messages[0].id_message, 1, "sent", unpaced.id),
        (messages[1].id_message, 1, "sent", unpaced.id),
        (messages[2].id_message, 1, "noAccount", unpaced.id),
    ]
    assert send_attempt_tally() == (3, 3, 3, 0)


def test_a_duplicate_send_is_counted(unpaced: Instance) -> None:
    """A message that had gone out is claimed and handed over again (what a lease
    taken over by a second worker, or a re-queue of a row that was sent, would do).
    The emulated network's unique key absorbs the second copy and the status log
    sees no change, but the attempt log counts it."""
    (message,) = queue(unpaced, ["once"])
    services.drain_queue(unpaced.id, "test")
    assert send_attempt_tally().duplicated == 0
    OutgoingMessage.objects.filter(pk=message.pk).update(status=OutgoingStatus.QUEUED)  # the injected fault
    services.drain_queue(unpaced.id, "test")
    assert EmuMessage.objects.filter(sender=unpaced.phone, id_message=message.id_message).count() == 1
    assert list(SendAttempt.objects.order_by("pk").values_list("attempt", "outcome")) == [(1, "sent"), (2, "sent")]
    assert send_attempt_tally() == (2, 1, 1, 1)
    assert send_attempt_tally(instance_ids=[unpaced.id + 1]) == (0, 0, 0, 0)


def test_a_transient_failure_and_its_retry_are_not_a_duplicate(
    unpaced: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    (message,) = queue(unpaced, ["retry me"])
    from engines.emulator.transport import EmulatorTransport

    real = EmulatorTransport.send_messages

    def down(self: Any, payloads: list[OutgoingPayload]) -> list[SendResult | TransportError]:
        return [TransportError("engine unreachable")]

    monkeypatch.setattr(EmulatorTransport, "send_messages", down)
    with pytest.raises(TransportError):
        services.drain_queue(unpaced.id, "test")
    monkeypatch.setattr(EmulatorTransport, "send_messages", real)
    services.drain_queue(unpaced.id, "test")
    assert list(SendAttempt.objects.order_by("pk").values_list("id_message", "attempt", "outcome")) == [
        (message.id_message, 1, "error"),
        (message.id_message, 2, "sent"),
    ]
    assert send_attempt_tally() == (2, 1, 1, 0)


def test_messages_never_handed_over_are_not_logged(unpaced: Instance) -> None:
    queue(unpaced, ["a"])
    services.clear_messages_queue(unpaced)
    services.drain_queue(unpaced.id, "test")
    assert send_attempt_tally() == (0, 0, 0, 0)


@override_settings(SEND_ATTEMPT_RETENTION_DAYS=7)
def test_old_attempts_are_pruned(unpaced: Instance) -> None:
    queue(unpaced, ["old", "new"])
    services.drain_queue(unpaced.id, "test")
    old = SendAttempt.objects.order_by("pk").first()
    assert old is not None
    SendAttempt.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    assert services.prune_send_attempts() == 1
    assert SendAttempt.objects.count() == 1
    with override_settings(SEND_ATTEMPT_RETENTION_DAYS=0):
        SendAttempt.objects.update(created_at=timezone.now() - timedelta(days=80))
        assert services.prune_send_attempts() == 0
