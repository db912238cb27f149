"""instances.bulk.insert_rows: the same rows as bulk_create, one statement, in the
caller's transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from engines.emulator.models import EmuMessage
from instances.bulk import insert_rows
from journals.models import Notification
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


def notification(instance_id: int, receipt_id: int, body: dict[str, object]) -> Notification:
    return Notification(
        instance_id=instance_id, receipt_id=receipt_id, type_webhook="outgoingMessageStatus", body=body,
        created_at=timezone.now() - timedelta(seconds=receipt_id),
    )


def test_rows_match_bulk_create_and_get_their_keys() -> None:
    instance = make_instance(authorized=True)
    body = {"typeWebhook": "outgoingMessageStatus", "nested": {"ünïcode": "😀", "n": [1, None, True]}, "q": "it's"}
    ours = [notification(instance.pk, n, body) for n in (1, 2, 3)]
    theirs = [notification(instance.pk, n, body) for n in (4, 5, 6)]
    with CaptureQueriesContext(connection) as captured:
        insert_rows(Notification, ours)
    assert len(captured.captured_queries) == 1  # one statement, and Django saw it
    Notification.objects.bulk_create(theirs)
    assert all(n.pk is not None and not n._state.adding for n in ours)
    stored = {n.receipt_id: n for n in Notification.objects.filter(instance=instance)}
    for mine, reference in zip(ours, theirs, strict=True):
        a, b = stored[mine.receipt_id], stored[reference.receipt_id]
        assert a.pk == mine.pk
        assert a.body == b.body == body
        assert a.type_webhook == b.type_webhook and a.created_at == mine.created_at


def test_conflicts_can_be_ignored() -> None:
    row = {"sender": "79001110000", "chat_id": "79001110001@c.us", "recipient": "79001110001",
           "type_message": "textMessage", "payload": {"message": "hi"}, "message_data": {}}
    EmuMessage.objects.create(id_message="DUP1", **row)
    insert_rows(EmuMessage, [EmuMessage(id_message="DUP1", **row), EmuMessage(id_message="NEW1", **row)],
                ignore_conflicts=True)
    assert sorted(EmuMessage.objects.filter(sender="79001110000").values_list("id_message", flat=True)) == [
        "DUP1", "NEW1"
    ]


def test_a_rolled_back_transaction_takes_the_rows_with_it() -> None:
    instance = make_instance(authorized=True)
    with pytest.raises(RuntimeError), transaction.atomic():
        insert_rows(Notification, [notification(instance.pk, 1, {})])
        raise RuntimeError("abort")
    assert not Notification.objects.filter(instance=instance).exists()


def test_insert_values_writes_plain_rows_with_defaults() -> None:
    from messaging.models import MessageStatusChange, OutgoingMessage

    instance = make_instance(authorized=True)
    message = OutgoingMessage.objects.create(
        instance=instance, id_message="BULK1", chat_id="79001110001@c.us", method="sendMessage",
        type_message="textMessage", request={}, payload={},
    )
    moment = timezone.now()
    from instances.bulk import insert_values

    insert_values(
        MessageStatusChange,
        [{"message_id": message.pk, "status": "sent", "created_at": moment},
         {"message_id": message.pk, "status": "failed", "description": "it's ünïcode", "created_at": moment}],
    )
    rows = list(MessageStatusChange.objects.filter(message=message).order_by("id").values_list("status", "description"))
    assert rows == [("sent", ""), ("failed", "it's ünïcode")]
