"""The emulated receipts of one runner tick are one batch for every instance the
runner leases: delivered and read reports of all instances go through one
transaction, their statement count does not grow with the number of instances,
and each receipt still applies exactly once, in order per message, with the
notifications' receiptIds consecutive per instance."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from engines.contract import OutgoingPayload
from engines.emulator.models import EmuMessage
from engines.emulator.receipts import emulate_receipts
from engines.emulator.transport import ensure_phone
from engines.registry import get_transport
from instances import services as instance_services
from instances.models import Instance
from instances.runner import Runner
from journals.models import Notification
from messaging import services
from messaging.models import HeldReceipt, MessageStatusChange, OutgoingMessage, OutgoingStatus

RECIPIENT = "79001112255"
CHAT = f"{RECIPIENT}@c.us"


def make_senders(account: Any, n: int) -> list[Instance]:
    from tests.factories import make_instance

    ensure_phone(RECIPIENT, "Recipient")
    out = []
    for _ in range(n):
        instance = make_instance(account, authorized=True)
        instance_services.update_settings(
            instance,
            {"delaySendMessagesMilliseconds": 0, "outgoingWebhook": True, "outgoingAPIMessageWebhook": True},
        )
        instance.refresh_from_db()
        out.append(instance)
    return out


def queue(instance: Instance, texts: list[str]) -> list[OutgoingMessage]:
    return [
        services.send(
            instance=instance, method="sendMessage", chat_id=CHAT, type_message="textMessage",
            request={"chatId": CHAT, "message": text}, payload={"message": text},
        )
        for text in texts
    ]


def sent_by(senders: list[Instance], per_instance: int = 2) -> tuple[str, dict[int, list[OutgoingMessage]]]:
    """Lease the senders to one runner, send and hand over ``per_instance`` messages
    each; returns the runner id and the messages."""
    runner = Runner()
    runner.tick()
    messages = {s.pk: queue(s, [f"{s.pk}-{n}" for n in range(per_instance)]) for s in senders}
    services.drain_queues([s.pk for s in senders], "test")
    mine = OutgoingMessage.objects.filter(instance__in=senders)
    assert set(mine.values_list("status", flat=True)) == {OutgoingStatus.SENT}
    return runner.runner_id, messages


def statuses(instance: Instance) -> list[tuple[int, str, str]]:
    """(receiptId, idMessage, status) of the instance's status notifications, in order."""
    rows = Notification.objects.filter(instance=instance, type_webhook="outgoingMessageStatus").order_by("receipt_id")
    return [(r.receipt_id, r.body["idMessage"], r.body["status"]) for r in rows]


def test_one_tick_applies_the_receipts_of_many_instances_once_and_in_order(account: Any) -> None:
    senders = make_senders(account, 5)
    runner_id, messages = sent_by(senders)
    assert emulate_receipts(runner_id, delivered_after=0, read_after=0) == 10  # delivered only: read waits a tick
    assert set(OutgoingMessage.objects.values_list("status", flat=True)) == {OutgoingStatus.DELIVERED}
    assert emulate_receipts(runner_id, delivered_after=0, read_after=0) == 10
    assert set(OutgoingMessage.objects.values_list("status", flat=True)) == {OutgoingStatus.READ}
    assert emulate_receipts(runner_id, delivered_after=0, read_after=0) == 0  # nothing left to acknowledge

    for sender in senders:
        seen = statuses(sender)
        for message in messages[sender.pk]:
            assert [s for _, i, s in seen if i == message.id_message] == ["sent", "delivered", "read"]
        # One consecutive receiptId range per instance across all three batches.
        every = list(Notification.objects.filter(instance=sender).order_by("receipt_id").values_list("receipt_id", flat=True))
        assert every == list(range(1, len(every) + 1))
    for message in OutgoingMessage.objects.all():
        logged = list(MessageStatusChange.objects.filter(message=message).order_by("id").values_list("status", flat=True))
        assert logged == ["sent", "delivered", "read"]
    assert EmuMessage.objects.filter(delivered_at__isnull=True).count() == 0


def count_statements(runner_id: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert emulate_receipts(runner_id, delivered_after=0, read_after=3600) > 0
    sql = [q["sql"] for q in captured.captured_queries]
    if connection.vendor != "postgresql":
        # Elsewhere the network stamps are one UPDATE per sender (see _stamp_copies).
        sql = [s for s in sql if not s.startswith('UPDATE "emulator_emumessage"')]
    return len(sql)


@pytest.mark.parametrize("per_instance", [1, 3])
def test_the_statement_count_of_a_tick_does_not_grow_with_the_instances(account: Any, per_instance: int) -> None:
    few = make_senders(account, 2)
    runner_id, _ = sent_by(few, per_instance)
    with_few = count_statements(runner_id)

    many = make_senders(account, 7)
    runner_id, _ = sent_by(many, per_instance)  # another runner leases these
    assert count_statements(runner_id) == with_few
    assert set(OutgoingMessage.objects.values_list("status", flat=True)) == {OutgoingStatus.DELIVERED}


def test_a_batch_holds_the_receipt_that_overtook_its_hand_over_and_applies_the_others(account: Any) -> None:
    senders = make_senders(account, 3)
    runner_id, messages = sent_by(senders, 1)
    late = senders[0]
    (unrecorded,) = queue(late, ["not handed over yet"])
    get_transport(late).send_messages(
        [OutgoingPayload(unrecorded.id_message, CHAT, "textMessage", {"message": "not handed over yet"})]
    )
    assert emulate_receipts(runner_id, delivered_after=0, read_after=3600) == 4
    assert list(HeldReceipt.objects.values_list("message_id", flat=True)) == [unrecorded.pk]
    assert OutgoingMessage.objects.get(pk=unrecorded.pk).status == OutgoingStatus.QUEUED
    handed = OutgoingMessage.objects.exclude(pk=unrecorded.pk)
    assert set(handed.values_list("status", flat=True)) == {OutgoingStatus.DELIVERED}

    services.drain_queue(late.pk, "test")  # the hand-over is recorded and releases it
    assert OutgoingMessage.objects.get(pk=unrecorded.pk).status == OutgoingStatus.DELIVERED
    assert not HeldReceipt.objects.exists()
    assert [s for _, i, s in statuses(late) if i == unrecorded.id_message] == ["sent", "delivered"]
    every = list(Notification.objects.filter(instance=late).order_by("receipt_id").values_list("receipt_id", flat=True))
    assert every == list(range(1, len(every) + 1))


def test_the_inbox_skips_the_network_copies_of_api_sends_without_loading_their_instances(account: Any) -> None:
    """What the runner's instances sent through the API is on the network too (it is
    how the phone's other devices see it): it produces nothing for the sender, the
    cursors still pass it, and a message between two of the instances arrives."""
    from engines.emulator.session import take_inbox
    from journals.models import JournalMessage

    senders = make_senders(account, 4)
    runner_id, _ = sent_by(senders, 2)
    with CaptureQueriesContext(connection) as captured:
        assert take_inbox(runner_id) == 0
    assert not any('FROM "instances_instance"' in q["sql"] and '"instances_instance"."settings"' in q["sql"]
                   for q in captured.captured_queries)  # no full instance row was read
    last = EmuMessage.objects.order_by("-id").values_list("id", flat=True)[0]
    from engines.emulator.models import EmuSession

    assert set(EmuSession.objects.filter(instance__in=senders).values_list("cursor", flat=True)) == {last}

    a, b = senders[0], senders[1]
    chat = f"{b.phone}@c.us"
    services.send(
        instance=a, method="sendMessage", chat_id=chat, type_message="textMessage",
        request={"chatId": chat, "message": "to b"}, payload={"message": "to b"},
    )
    services.drain_queue(a.pk, "test")
    assert take_inbox(runner_id) == 1  # b takes it in; a's own copy produces nothing
    assert list(JournalMessage.objects.values_list("instance_id", "direction")) == [(b.pk, "incoming")]
    assert OutgoingMessage.objects.get(chat_id=chat).status == OutgoingStatus.DELIVERED
