"""The drain's batches: with no delay to honour, the queue head leaves as one batch
(one claim, one engine call, one status write), in FIFO order, with the same
notifications, the same statuses and the same crash and error behaviour as one
message at a time. Also the batched status writes of the emulated receipts."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from engines.contract import OutgoingPayload, SendResult, TransportError
from engines.emulator.models import EmuMessage
from engines.emulator.receipts import emulate_receipts
from engines.emulator.transport import ensure_phone
from instances import services as instance_services
from instances.models import Instance
from journals.models import Notification
from messaging import services
from messaging.models import MessageStatusChange, OutgoingMessage, OutgoingStatus, SendCursor

RECIPIENT = "79001112244"
CHAT = f"{RECIPIENT}@c.us"
NOBODY = "79009999999@c.us"


@pytest.fixture
def unpaced(authorized_instance: Instance) -> Instance:
    ensure_phone(RECIPIENT, "Recipient")
    instance_services.update_settings(
        authorized_instance,
        {"delaySendMessagesMilliseconds": 0, "outgoingWebhook": True, "outgoingAPIMessageWebhook": True},
    )
    authorized_instance.refresh_from_db()
    return authorized_instance


def queue(instance: Instance, texts: list[str], chat_id: str = CHAT) -> list[OutgoingMessage]:
    return [
        services.send(
            instance=instance, method="sendMessage", chat_id=chat_id, type_message="textMessage",
            request={"chatId": chat_id, "message": text}, payload={"message": text},
        )
        for text in texts
    ]


def drain_count_queries(instance: Instance) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert services.drain_queue(instance.id, "test") is None
    return len(captured.captured_queries)


def test_a_batch_leaves_in_order_with_every_notification(unpaced: Instance) -> None:
    messages = queue(unpaced, [str(n) for n in range(30)])
    services.drain_queue(unpaced.id, "test")
    on_network = list(EmuMessage.objects.filter(sender=unpaced.phone).order_by("id").values_list("id_message", flat=True))
    assert on_network == [m.id_message for m in messages]
    assert set(OutgoingMessage.objects.filter(instance=unpaced).values_list("status", flat=True)) == {"sent"}
    bodies = list(
        Notification.objects.filter(instance=unpaced).exclude(type_webhook="stateInstanceChanged")
        .order_by("receipt_id").values_list("body", flat=True)
    )
    # Per message, in queue order: outgoingAPIMessageReceived, then its "sent" status.
    expected = []
    for m in messages:
        expected += [("outgoingAPIMessageReceived", m.id_message), ("outgoingMessageStatus", m.id_message)]
    assert [(b["typeWebhook"], b.get("idMessage")) for b in bodies] == expected
    receipt_ids = list(Notification.objects.filter(instance=unpaced).order_by("receipt_id").values_list("receipt_id", flat=True))
    assert receipt_ids == list(range(receipt_ids[0], receipt_ids[0] + len(receipt_ids)))
    assert MessageStatusChange.objects.filter(message__instance=unpaced, status="sent").count() == 30
    sent_at = {m.sent_at for m in OutgoingMessage.objects.filter(instance=unpaced)}
    assert None not in sent_at


def test_a_batch_costs_a_fixed_number_of_queries_not_one_set_per_message(unpaced: Instance) -> None:
    queue(unpaced, ["warm-up"])
    drain_count_queries(unpaced)  # the first drain creates the instance's cursor rows
    queue(unpaced, ["a", "b"])
    few = drain_count_queries(unpaced)
    queue(unpaced, [str(n) for n in range(60)])
    many = drain_count_queries(unpaced)
    # Equal on PostgreSQL; SQLite splits a long INSERT at 999 parameters.
    assert few <= many <= few + 2, (few, many)


def test_failures_inside_a_batch_fail_only_their_message(unpaced: Instance) -> None:
    good1, bad, good2 = queue(unpaced, ["1"]) + queue(unpaced, ["2"], chat_id=NOBODY) + queue(unpaced, ["3"])
    services.drain_queue(unpaced.id, "test")
    status = dict(OutgoingMessage.objects.filter(instance=unpaced).values_list("id_message", "status"))
    assert [status[m.id_message] for m in (good1, bad, good2)] == ["sent", "noAccount", "sent"]


def test_a_transient_engine_error_puts_the_rest_back_at_the_head(
    unpaced: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine took two, then went away: those two are recorded, the failing one
    and everything after it wait at the head in order, nothing is sent twice."""
    messages = queue(unpaced, [str(n) for n in range(5)])
    from engines.emulator.transport import EmulatorTransport

    real = EmulatorTransport.send_messages

    def flaky(self: Any, payloads: list[OutgoingPayload]) -> list[SendResult | TransportError]:
        results = real(self, payloads[:2])
        return [*results, TransportError("engine unreachable")]

    monkeypatch.setattr(EmulatorTransport, "send_messages", flaky)
    with pytest.raises(TransportError):
        services.drain_queue(unpaced.id, "test")
    status = [OutgoingMessage.objects.get(pk=m.pk).status for m in messages]
    assert status == ["sent", "sent", "queued", "queued", "queued"]
    monkeypatch.setattr(EmulatorTransport, "send_messages", real)
    services.drain_queue(unpaced.id, "test")
    assert {OutgoingMessage.objects.get(pk=m.pk).status for m in messages} == {"sent"}
    on_network = list(EmuMessage.objects.filter(sender=unpaced.phone).order_by("id").values_list("id_message", flat=True))
    assert on_network == [m.id_message for m in messages]


def test_a_batch_retried_after_a_crash_sends_nothing_twice(unpaced: Instance) -> None:
    """A worker died after the engine took the batch and before the statuses were
    written: recover_queues re-queues the rows and the retry puts nothing on the
    network twice."""
    messages = queue(unpaced, [str(n) for n in range(4)])
    from engines.registry import get_transport

    get_transport(unpaced).send_messages(
        [OutgoingPayload(m.id_message, m.chat_id, m.type_message, {"message": m.payload["message"]}) for m in messages]
    )
    services.drain_queue(unpaced.id, "test")
    assert EmuMessage.objects.filter(sender=unpaced.phone).count() == 4
    assert {OutgoingMessage.objects.get(pk=m.pk).status for m in messages} == {"sent"}


def test_a_file_in_the_queue_ends_the_batch_and_is_paced(unpaced: Instance) -> None:
    texts = queue(unpaced, ["1", "2"])
    doc = services.send(
        instance=unpaced, method="sendFileByUrl", chat_id=CHAT, type_message="documentMessage",
        request={}, payload={"urlFile": "https://example.test/a.pdf", "fileName": "a.pdf"}, is_file=True,
    )
    after = queue(unpaced, ["3"])[0]
    wait = services.drain_queue(unpaced.id, "test")
    # The texts left as one batch; the file is next, one at a time, and waits for the
    # 5 s file interval (API.md §6); the text after it waits behind it (FIFO).
    states = {m.pk: OutgoingMessage.objects.get(pk=m.pk).status for m in (*texts, doc, after)}
    assert [states[m.pk] for m in texts] == ["sent", "sent"]
    assert (states[doc.pk], states[after.pk]) == ("queued", "queued")
    assert wait is not None and 4.5 < wait <= 5.0


def test_emulated_receipts_are_recorded_in_one_batch_per_instance(unpaced: Instance) -> None:
    from instances.runner import Runner

    runner = Runner()
    runner.tick()  # lease the instance
    sent = queue(unpaced, [f"text {n}" for n in range(50)])
    assert services.drain_queue(unpaced.id, "test") is None  # all 50 on the network
    Notification.objects.filter(instance=unpaced).delete()
    with CaptureQueriesContext(connection) as captured:
        changed = emulate_receipts(runner.runner_id, delivered_after=0, read_after=3600)
    assert changed == 50
    assert len(captured.captured_queries) < 40
    assert set(OutgoingMessage.objects.filter(instance=unpaced).values_list("status", flat=True)) == {"delivered"}
    statuses = list(
        Notification.objects.filter(instance=unpaced, type_webhook="outgoingMessageStatus")
        .order_by("receipt_id").values_list("body__idMessage", "body__status")
    )
    assert statuses == [(m.id_message, "delivered") for m in sent]


def test_record_statuses_applies_changes_in_order_and_skips_backwards_ones(unpaced: Instance) -> None:
    first, second = queue(unpaced, ["1", "2"])
    changed = services.record_statuses(
        [
            (first.pk, OutgoingStatus.SENT, ""),
            (first.pk, OutgoingStatus.READ, ""),
            (second.pk, OutgoingStatus.DELIVERED, ""),
            (second.pk, OutgoingStatus.SENT, ""),  # late: never backwards
        ]
    )
    assert sorted(changed) == sorted([first.pk, second.pk])
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("read", "delivered")
    assert first.sent_at and first.delivered_at and first.read_at
    assert second.sent_at and second.delivered_at and second.read_at is None
    logged = list(MessageStatusChange.objects.filter(message=first).order_by("id").values_list("status", flat=True))
    assert logged == ["sent", "read"]
    kinds = list(
        Notification.objects.filter(body__idMessage=second.id_message).order_by("receipt_id")
        .values_list("type_webhook", "body__status")
    )
    assert kinds == [
        ("outgoingAPIMessageReceived", None), ("outgoingMessageStatus", "sent"), ("outgoingMessageStatus", "delivered"),
    ]


def test_the_send_cursor_records_the_batch(unpaced: Instance) -> None:
    queue(unpaced, ["1", "2", "3"])
    before = timezone.now()
    services.drain_queue(unpaced.id, "test")
    cursor = SendCursor.objects.get(instance=unpaced)
    assert cursor.last_sent_at is not None and cursor.last_sent_at >= before
    assert cursor.last_was_file is False
    assert cursor.locked_by == ""


# --- Sweeps over several instances (drain_queues) ------------------------------------


def make_unpaced(account: Any, n: int) -> list[Instance]:
    from tests.factories import make_instance

    ensure_phone(RECIPIENT, "Recipient")
    out = []
    for _ in range(n):
        instance = make_instance(account, authorized=True)
        instance_services.update_settings(instance, {"delaySendMessagesMilliseconds": 0})
        instance.refresh_from_db()
        out.append(instance)
    return out


def test_a_sweep_drains_every_instance_in_its_own_order(account: Any) -> None:
    instances = make_unpaced(account, 3)
    queued = {i.pk: queue(i, [f"{i.pk}-{n}" for n in range(5)]) for i in instances}
    report = services.drain_queues([i.pk for i in instances], "test")
    assert report.errors == {}
    assert report.waits == {i.pk: None for i in instances}
    for instance in instances:
        on_network = list(
            EmuMessage.objects.filter(sender=instance.phone).order_by("id").values_list("id_message", flat=True)
        )
        assert on_network == [m.id_message for m in queued[instance.pk]]
        assert set(OutgoingMessage.objects.filter(instance=instance).values_list("status", flat=True)) == {"sent"}
        assert SendCursor.objects.get(instance=instance).locked_by == ""


def test_each_more_instance_in_a_sweep_costs_a_few_queries(account: Any) -> None:
    """Per instance only its engine call and its notification write remain; the
    claim, the status write and the locks are shared by the sweep."""
    instances = make_unpaced(account, 6)
    for instance in instances:  # first drains create the cursor rows
        queue(instance, ["warm-up"])
    services.drain_queues([i.pk for i in instances], "test")

    def cost(group: list[Instance]) -> int:
        for instance in group:
            queue(instance, ["a", "b"])
        with CaptureQueriesContext(connection) as captured:
            services.drain_queues([i.pk for i in group], "test")
        return len(captured.captured_queries)

    two, six = cost(instances[:2]), cost(instances)
    assert (six - two) / 4 <= 10, (two, six)  # one instance drained alone costs ~30


def test_a_sweep_skips_an_instance_another_worker_is_draining(account: Any) -> None:
    mine, busy = make_unpaced(account, 2)
    queue(mine, ["1"])
    queue(busy, ["2"])
    SendCursor.objects.get_or_create(instance=busy)
    SendCursor.objects.filter(instance=busy).update(
        locked_by="other", locked_until=timezone.now() + timezone.timedelta(seconds=30)
    )
    report = services.drain_queues([mine.pk, busy.pk], "test")
    assert report.waits[busy.pk] is None  # the other worker re-checks after releasing
    assert OutgoingMessage.objects.get(instance=busy).status == "queued"
    assert OutgoingMessage.objects.get(instance=mine).status == "sent"
    assert SendCursor.objects.get(instance=busy).locked_by == "other"


def test_one_engine_failing_never_holds_back_the_others(account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from engines.emulator.transport import EmulatorTransport

    broken, fine = make_unpaced(account, 2)
    queue(broken, ["1", "2"])
    queue(fine, ["3", "4"])
    real = EmulatorTransport.send_messages

    def flaky(self: Any, payloads: list[OutgoingPayload]) -> list[SendResult | TransportError]:
        if self.instance.pk == broken.pk:
            return [TransportError("engine unreachable")]
        return real(self, payloads)

    monkeypatch.setattr(EmulatorTransport, "send_messages", flaky)
    monkeypatch.setattr(EmulatorTransport, "send_messages_of_many", None)  # an engine without a sweep call
    report = services.drain_queues([broken.pk, fine.pk], "test")
    assert set(report.errors) == {broken.pk}
    assert list(OutgoingMessage.objects.filter(instance=broken).values_list("status", flat=True)) == ["queued"] * 2
    assert list(OutgoingMessage.objects.filter(instance=fine).values_list("status", flat=True)) == ["sent"] * 2


def test_more_than_a_batch_is_reported_as_ready_again(account: Any, settings: Any) -> None:
    settings.SEND_BATCH_SIZE = 3
    (instance,) = make_unpaced(account, 1)
    queue(instance, [str(n) for n in range(7)])
    report = services.drain_queues([instance.pk], "test", max_messages=3)
    assert report.waits[instance.pk] == 0.0
    assert OutgoingMessage.objects.filter(instance=instance, status="sent").count() == 3
    assert services.drain_queue(instance.pk, "test") is None  # the default budget takes the rest
    assert OutgoingMessage.objects.filter(instance=instance, status="sent").count() == 7


def test_a_paced_instance_never_holds_a_sweep_for_long(account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Short delays are slept inline; a sweep sends at most a few paced messages per
    instance (one per round) and leaves the rest to the next sweep, so the other
    instances of the sweep are not kept waiting behind a long paced backlog."""
    from tests.factories import make_instance

    ensure_phone(RECIPIENT, "Recipient")
    paced = make_instance(account, authorized=True)
    instance_services.update_settings(paced, {"delaySendMessagesMilliseconds": 100})
    queue(paced, [str(n) for n in range(20)])
    slept: list[float] = []
    monkeypatch.setattr(services.time, "sleep", slept.append)
    report = services.drain_queues([paced.pk], "test")
    sent = OutgoingMessage.objects.filter(instance=paced, status="sent").count()
    assert 1 <= sent <= 5
    assert report.waits[paced.pk] == 0.0  # more is ready: the task wakes a new sweep
    assert all(0 < s <= services.MAX_INLINE_WAIT_SECONDS for s in slept)


def test_a_sweep_puts_every_instance_s_batch_on_the_network_with_one_insert(authorized_instance: Instance) -> None:
    senders = make_unpaced(authorized_instance.account, 3)
    queued = {s.id: queue(s, [f"{s.id} a", f"{s.id} b"]) for s in senders}
    queue(senders[1], ["nobody"], chat_id=NOBODY)
    with CaptureQueriesContext(connection) as captured:
        report = services.drain_queues([s.id for s in senders], "test")
    assert all(wait is None for wait in report.waits.values()) and not report.errors
    # SQLite spells an insert that ignores conflicts "INSERT OR IGNORE INTO".
    inserts = [
        q["sql"] for q in captured.captured_queries
        if q["sql"].startswith("INSERT") and 'INTO "emulator_emumessage"' in q["sql"]
    ]
    assert len(inserts) == 1
    for sender in senders:
        on_network = list(
            EmuMessage.objects.filter(sender=sender.phone).order_by("id").values_list("id_message", flat=True)
        )
        assert on_network == [m.id_message for m in queued[sender.id]]  # each sender's order kept
    assert OutgoingMessage.objects.get(chat_id=NOBODY).status == OutgoingStatus.NO_ACCOUNT


def test_receipts_stamp_the_network_rows_of_every_sender_and_only_theirs(account: Any) -> None:
    from instances.runner import Runner

    a, b = make_unpaced(account, 2)
    Runner().tick()  # a runner leases both
    sent = {s.pk: queue(s, [f"{s.pk} one", f"{s.pk} two"]) for s in (a, b)}
    services.drain_queues([a.pk, b.pk], "test")
    bystander = EmuMessage.objects.create(  # same id, other sender: not one of ours
        sender="79005550000", chat_id=CHAT, recipient=RECIPIENT, id_message=sent[a.pk][0].id_message,
        type_message="textMessage",
    )
    runner_id = Instance.objects.get(pk=a.pk).lease.runner_id
    assert emulate_receipts(runner_id, delivered_after=0, read_after=3600) == 4
    for sender in (a, b):
        rows = EmuMessage.objects.filter(sender=sender.phone)
        assert rows.count() == 2 and all(row.delivered_at is not None and row.read_at is None for row in rows)
    bystander.refresh_from_db()
    assert bystander.delivered_at is None


def test_a_receipt_that_overtakes_the_hand_over_waits_for_it_and_then_applies(unpaced: Instance) -> None:
    """The engine took the batch and the peer acknowledged it before the worker
    recorded the hand-over (the worker died, or was merely slower than the network):
    the receipts are held, not dropped, and apply in the transaction that records the
    hand-over, after ``sent``, with one attempt logged per message."""
    from engines.registry import get_transport
    from instances.runner import Runner
    from messaging.models import HeldReceipt, SendAttempt

    runner = Runner()
    runner.tick()  # lease the instance: the emulator acknowledges leased senders
    messages = queue(unpaced, ["1", "2"])
    get_transport(unpaced).send_messages(
        [OutgoingPayload(m.id_message, m.chat_id, m.type_message, {"message": m.payload["message"]}) for m in messages]
    )
    emulate_receipts(runner.runner_id, delivered_after=0, read_after=3600)  # the peer acknowledged both
    assert HeldReceipt.objects.count() == 2
    assert {OutgoingMessage.objects.get(pk=m.pk).status for m in messages} == {"queued"}

    services.drain_queue(unpaced.id, "test")  # recovery hands them over again
    assert {OutgoingMessage.objects.get(pk=m.pk).status for m in messages} == {"delivered"}
    assert not HeldReceipt.objects.exists()
    assert EmuMessage.objects.filter(sender=unpaced.phone).count() == 2  # nothing sent twice
    assert sorted(SendAttempt.objects.values_list("id_message", flat=True)) == sorted(m.id_message for m in messages)
    for m in messages:
        statuses = list(
            Notification.objects.filter(instance=unpaced, type_webhook="outgoingMessageStatus", body__idMessage=m.id_message)
            .order_by("receipt_id").values_list("body__status", flat=True)
        )
        assert statuses == ["sent", "delivered"]


def test_the_beat_releases_held_receipts_of_handed_messages_and_forgets_stale_ones(unpaced: Instance) -> None:
    from datetime import timedelta

    from messaging.models import HeldReceipt

    handed, never = queue(unpaced, ["1", "2"])
    HeldReceipt.objects.create(message_id=handed.pk, status=OutgoingStatus.READ)
    HeldReceipt.objects.create(
        message_id=never.pk, status=OutgoingStatus.DELIVERED, created_at=timezone.now() - timedelta(hours=25)
    )
    # The hand-over recorded by a path that does not release (e.g. an older worker).
    OutgoingMessage.objects.filter(pk=handed.pk).update(status=OutgoingStatus.SENT)
    assert services.recover_queues()["released"] == 1
    assert OutgoingMessage.objects.get(pk=handed.pk).status == "read"
    # The stale receipt was forgotten, not applied (recovery may have woken the queue
    # and sent the message since: it is "sent", never "delivered" by that receipt).
    assert OutgoingMessage.objects.get(pk=never.pk).status in ("queued", "sent")
    assert not HeldReceipt.objects.exists()


def test_a_paced_sweep_costs_the_same_statements_whatever_its_size(account: Any) -> None:
    """The paced drain's fixed cost: a sweep of six due instances runs the statements
    of a sweep of two (locks, reads, claim, one status transaction), and each
    instance's notifications still number on from its own last receiptId."""
    from tests.factories import make_instance

    ensure_phone(RECIPIENT, "Recipient")
    instances = []
    for _ in range(6):
        instance = make_instance(account, authorized=True)
        instance_services.update_settings(
            instance, {"delaySendMessagesMilliseconds": 500, "outgoingWebhook": True}
        )
        instances.append(instance)
        queue(instance, ["first"])
    services.drain_queues([i.pk for i in instances], "test")  # creates the cursor rows

    def cost(group: list[Instance]) -> int:
        for instance in group:
            queue(instance, ["next"])
        # Their last message left long enough ago: every head is due now.
        SendCursor.objects.update(last_sent_at=timezone.now() - timezone.timedelta(seconds=5))
        with CaptureQueriesContext(connection) as captured:
            services.drain_queues([i.pk for i in group], "test")
        return len(captured.captured_queries)

    small, large = cost(instances[:2]), cost(instances)
    # SQLite (the embedded default) has no arrays to join: there journals.chats.touch_chats
    # moves each instance's chat in getChats with an UPDATE of its own. On PostgreSQL
    # every statement is shared by the whole sweep.
    per_instance = 1 if connection.vendor == "sqlite" else 0
    assert large - small == per_instance * (len(instances) - 2)
    for instance in instances:
        receipts = list(
            Notification.objects.filter(instance=instance)
            .order_by("receipt_id")
            .values_list("receipt_id", flat=True)
        )
        assert receipts == list(range(1, len(receipts) + 1)) and len(receipts) >= 2
