"""Send-queue semantics (API.md §6): FIFO per instance, paced by
delaySendMessagesMilliseconds, waits while not authorized, never stalls, survives
crashes (recover_queues), statuses only move forward, idempotent sends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator import pairing
from engines.emulator.models import EmuMessage
from engines.emulator.transport import ensure_phone
from instances import services as instance_services
from instances.models import Instance, State
from messaging import services
from messaging.models import MessageStatusChange, OutgoingMessage, OutgoingStatus, SendCursor
from tests.conftest import method_url

RECIPIENT = "79001112233"
CHAT = f"{RECIPIENT}@c.us"


@pytest.fixture
def recipient(db: None) -> str:
    ensure_phone(RECIPIENT, "Recipient")
    return CHAT


def send(client: APIClient, instance: Instance, text: str, chat_id: str = CHAT) -> str:
    r = client.post(method_url(instance, "sendMessage"), {"chatId": chat_id, "message": text}, format="json")
    assert r.status_code == 200, r.content
    return str(r.json()["idMessage"])


def last_sent(instance: Instance, ago: float) -> None:
    SendCursor.objects.filter(instance=instance).update(last_sent_at=timezone.now() - timedelta(seconds=ago))


def statuses(*ids: str) -> list[str]:
    by_id = dict(OutgoingMessage.objects.filter(id_message__in=ids).values_list("id_message", "status"))
    return [by_id[i] for i in ids]


def on_network(instance: Instance) -> list[str]:
    return [e.payload["message"] for e in EmuMessage.objects.filter(sender=instance.phone).order_by("id")]


def test_messages_leave_in_fifo_order_paced_by_the_delay(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        ids = [send(api_client, authorized_instance, text) for text in ("1", "2", "3")]
    # The first goes at once; the default delay is 3000 ms.
    assert statuses(*ids) == ["sent", "queued", "queued"]
    last_sent(authorized_instance, 2.0)
    wait = services.drain_queue(authorized_instance.id, "test")
    assert wait is not None and 0.7 < wait <= 1.0
    assert statuses(*ids) == ["sent", "queued", "queued"]
    last_sent(authorized_instance, 3.1)
    services.drain_queue(authorized_instance.id, "test")
    assert statuses(*ids) == ["sent", "sent", "queued"]
    last_sent(authorized_instance, 3.1)
    assert services.drain_queue(authorized_instance.id, "test") is None  # queue empty
    assert statuses(*ids) == ["sent", "sent", "sent"]
    assert on_network(authorized_instance) == ["1", "2", "3"]


def test_the_delay_setting_paces_the_queue(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    instance_services.update_settings(authorized_instance, {"delaySendMessagesMilliseconds": 10_000})
    with django_capture_on_commit_callbacks(execute=True):
        first, second = send(api_client, authorized_instance, "a"), send(api_client, authorized_instance, "b")
    last_sent(authorized_instance, 9.0)
    wait = services.drain_queue(authorized_instance.id, "test")
    assert wait is not None and 0.7 < wait <= 1.0
    assert statuses(first, second) == ["sent", "queued"]
    last_sent(authorized_instance, 10.1)
    services.drain_queue(authorized_instance.id, "test")
    assert statuses(first, second) == ["sent", "sent"]


def test_messages_wait_while_not_authorized_and_go_out_in_order(
    api_client: APIClient, instance: Instance, recipient: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        ids = [send(api_client, instance, text) for text in ("first", "second")]
    assert statuses(*ids) == ["queued", "queued"]
    assert services.drain_queue(instance.id, "test") is None
    with django_capture_on_commit_callbacks(execute=True):
        pairing.link_phone(instance, phone="79005550000")
        instance_services.change_state(instance, State.AUTHORIZED)
    assert statuses(*ids) == ["sent", "queued"]
    last_sent(instance, 10)
    services.drain_queue(instance.id, "test")
    assert on_network(instance) == ["first", "second"]


@pytest.mark.parametrize("state", [State.NOT_AUTHORIZED, State.BLOCKED, State.STARTING, State.YELLOW_CARD])
def test_nothing_leaves_an_instance_that_is_not_authorized(
    api_client: APIClient, authorized_instance: Instance, recipient: str, state: str
) -> None:
    message = send(api_client, authorized_instance, "held")
    instance_services.change_state(authorized_instance, state)
    assert services.drain_queue(authorized_instance.id, "test") is None
    assert statuses(message) == ["queued"]
    assert not EmuMessage.objects.exists()


def test_no_account_never_stalls_the_queue(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        bad = send(api_client, authorized_instance, "x", chat_id="79000000009@c.us")
        good = send(api_client, authorized_instance, "y")
    last_sent(authorized_instance, 10)
    services.drain_queue(authorized_instance.id, "test")
    assert statuses(bad, good) == ["noAccount", "sent"]
    assert list(
        MessageStatusChange.objects.filter(message__id_message=bad).values_list("status", "description")
    ) == [("noAccount", "The number has no WhatsApp account")]
    assert on_network(authorized_instance) == ["y"]


def test_cleared_messages_are_never_sent(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first, second = send(api_client, authorized_instance, "1"), send(api_client, authorized_instance, "2")
    assert api_client.get(method_url(authorized_instance, "clearMessagesQueue")).json() == {"isCleared": True}
    last_sent(authorized_instance, 10)
    assert services.drain_queue(authorized_instance.id, "test") is None
    assert on_network(authorized_instance) == ["1"]
    assert list(OutgoingMessage.objects.values_list("id_message", flat=True)) == [first]
    assert second != first


def test_recover_queues_requeues_stuck_rows_and_sends_them(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    stuck = send(api_client, authorized_instance, "stuck")
    fresh = send(api_client, authorized_instance, "in flight")
    now = timezone.now()
    OutgoingMessage.objects.filter(id_message=stuck).update(
        status=OutgoingStatus.SENDING, claimed_at=now - timedelta(minutes=3)
    )
    OutgoingMessage.objects.filter(id_message=fresh).update(
        status=OutgoingStatus.SENDING, claimed_at=now - timedelta(seconds=30)
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = services.recover_queues()
    assert result["requeued"] == 1
    assert result["expired"] == 0
    # Woken at once (eager tasks), the re-queued row goes out; the live claim is left alone.
    assert statuses(stuck, fresh) == ["sent", "sending"]
    assert on_network(authorized_instance) == ["stuck"]


def test_recover_queues_expires_rows_older_than_24_hours(api_client: APIClient, instance: Instance) -> None:
    old = send(api_client, instance, "old")
    young = send(api_client, instance, "young")
    now = timezone.now()
    OutgoingMessage.objects.filter(id_message=old).update(created_at=now - timedelta(hours=24, minutes=1))
    OutgoingMessage.objects.filter(id_message=young).update(created_at=now - timedelta(hours=23, minutes=59))
    result = services.recover_queues()
    assert result["expired"] == 1
    expired = OutgoingMessage.objects.get(id_message=old)
    assert expired.status == OutgoingStatus.FAILED
    assert expired.description == "Message expired: the instance was not authorized for 24 hours"
    assert list(MessageStatusChange.objects.filter(message=expired).values_list("status", "description")) == [
        ("failed", "Message expired: the instance was not authorized for 24 hours")
    ]
    assert statuses(young) == ["queued"]
    assert api_client.get(method_url(instance, "getMessagesCount")).json() == {"count": 1}


def test_record_status_never_moves_backwards(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        id_message = send(api_client, authorized_instance, "hi")
    message = OutgoingMessage.objects.get(id_message=id_message)
    assert services.record_status(message.pk, OutgoingStatus.READ) is True
    assert services.record_status(message.pk, OutgoingStatus.DELIVERED) is False
    assert services.record_status(message.pk, OutgoingStatus.SENT) is False
    assert services.record_status(message.pk, OutgoingStatus.READ) is False
    message.refresh_from_db()
    assert message.status == OutgoingStatus.READ
    assert message.sent_at is not None and message.read_at is not None and message.delivered_at is not None
    assert list(
        MessageStatusChange.objects.filter(message=message).order_by("id").values_list("status", flat=True)
    ) == ["sent", "read"]


def test_a_failed_message_stays_failed(api_client: APIClient, instance: Instance) -> None:
    message = OutgoingMessage.objects.get(id_message=send(api_client, instance, "x"))
    assert services.record_status(message.pk, OutgoingStatus.FAILED, "boom") is True
    assert services.record_status(message.pk, OutgoingStatus.SENT) is False
    assert services.record_status(message.pk, OutgoingStatus.READ) is False
    message.refresh_from_db()
    assert (message.status, message.description) == (OutgoingStatus.FAILED, "boom")


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("sendMessage", {"chatId": CHAT, "message": "once"}),
        ("sendPoll", {"chatId": CHAT, "message": "Q", "options": [{"optionName": "a"}, {"optionName": "b"}]}),
        ("sendLocation", {"chatId": CHAT, "latitude": 1, "longitude": 2}),
        ("sendContact", {"chatId": CHAT, "contact": {"phoneContact": 79005554433, "firstName": "A"}}),
        (
            "sendInteractiveButtonsReply",
            {"chatId": CHAT, "body": "b", "buttons": [{"buttonId": "1", "buttonText": "Y"}]},
        ),
        ("sendLink", {"chatId": CHAT, "urlLink": "https://example.com"}),
    ],
)
def test_idempotency_key_returns_the_first_id_message(
    api_client: APIClient, instance: Instance, method: str, body: dict[str, Any]
) -> None:
    url = method_url(instance, method)
    first = api_client.post(url, body, format="json", headers={"Idempotency-Key": "order-42"})
    again = api_client.post(url, body, format="json", headers={"Idempotency-Key": "order-42"})
    other = api_client.post(url, body, format="json", headers={"Idempotency-Key": "order-43"})
    assert first.status_code == again.status_code == other.status_code == 200
    assert again.json() == first.json()
    assert other.json() != first.json()
    assert OutgoingMessage.objects.filter(instance=instance).count() == 2


def test_an_idempotency_key_over_200_characters_is_rejected(
    api_client: APIClient, instance: Instance
) -> None:
    r = api_client.post(
        method_url(instance, "sendPoll"),
        {"chatId": CHAT, "message": "Q", "options": [{"optionName": "a"}, {"optionName": "b"}]},
        format="json",
        headers={"Idempotency-Key": "k" * 201},
    )
    assert r.status_code == 400
    assert (
        r.json()["message"]
        == "Validation failed. Details: 'Idempotency-Key' length must be less than or equal to 200 characters long"
    )
    assert not OutgoingMessage.objects.exists()


def test_delivered_reported_before_sent_still_announces_the_message(authorized_instance: Any) -> None:
    """A fast peer can acknowledge before the sender records ``sent``: the client still
    gets outgoingAPIMessageReceived, then sent, then delivered, and nothing is lost."""
    from journals.models import Notification
    from messaging.models import OutgoingStatus
    from messaging.services import record_status, send

    authorized_instance.settings.update({"outgoingWebhook": True, "outgoingAPIMessageWebhook": True})
    authorized_instance.save(update_fields=["settings"])
    message = send(
        instance=authorized_instance, method="sendMessage", chat_id="79000000001@c.us",
        type_message="textMessage", request={}, payload={"message": "hi"},
    )
    assert record_status(message.pk, OutgoingStatus.DELIVERED)
    assert not record_status(message.pk, OutgoingStatus.SENT)  # late: never backwards
    bodies = list(
        Notification.objects.filter(instance=authorized_instance).exclude(type_webhook="stateInstanceChanged")
        .order_by("receipt_id").values_list("body", flat=True)
    )
    assert [b["typeWebhook"] for b in bodies] == [
        "outgoingAPIMessageReceived", "outgoingMessageStatus", "outgoingMessageStatus",
    ]
    assert [b.get("status") for b in bodies[1:]] == ["sent", "delivered"]


def test_a_backlog_waiting_to_be_read_never_starves_delivery_receipts(authorized_instance: Any) -> None:
    """Found by bench/send_throughput.py: with more than a page of delivered messages
    waiting for their read receipt, new sent messages were never marked delivered."""
    from django.utils import timezone

    from engines.emulator.models import EmuMessage
    from engines.emulator.receipts import emulate_receipts
    from engines.emulator.transport import ensure_phone
    from instances.runner import Runner
    from messaging.models import OutgoingMessage, OutgoingStatus

    ensure_phone("79000000002", "Contact")
    runner = Runner()
    runner.tick()  # lease the instance
    now = timezone.now()

    def on_network(id_message: str, delivered: bool) -> EmuMessage:
        return EmuMessage(
            sender=authorized_instance.phone, chat_id="79000000002@c.us", recipient="79000000002",
            id_message=id_message, type_message="textMessage", via_instance=authorized_instance.pk,
            created_at=now, delivered_at=now if delivered else None,
        )

    EmuMessage.objects.bulk_create(on_network(f"OLD{n:05d}", True) for n in range(1100))
    OutgoingMessage.objects.bulk_create(
        OutgoingMessage(
            instance=authorized_instance, id_message=f"OLD{n:05d}", chat_id="79000000002@c.us",
            method="sendMessage", type_message="textMessage", status=OutgoingStatus.DELIVERED,
            sent_at=now, delivered_at=now,
        )
        for n in range(1100)
    )
    on_network("NEW00001", False).save()
    fresh = OutgoingMessage.objects.create(
        instance=authorized_instance, id_message="NEW00001", chat_id="79000000002@c.us",
        method="sendMessage", type_message="textMessage", status=OutgoingStatus.SENT, sent_at=now,
    )
    emulate_receipts(runner.runner_id, delivered_after=0, read_after=3600)
    fresh.refresh_from_db()
    assert fresh.status == OutgoingStatus.DELIVERED
