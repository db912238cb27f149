"""forwardMessages (API.md §9.2): copies of known messages of chatIdFrom, in the
given order, each marked forwarded; one showMessagesQueue item per call."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines import sink
from engines.emulator.models import EmuMessage
from engines.emulator.transport import ensure_phone
from engines.events import MessageEvent
from engines.shapes import message_data_from_payload
from instances.models import Instance
from messaging import services
from messaging.models import OutgoingMessage, OutgoingStatus, SendCursor
from tests.conftest import method_url

SOURCE = "79001112233"
TARGET = "79004445566"


@pytest.fixture
def chats(db: None) -> tuple[str, str]:
    ensure_phone(SOURCE, "Source")
    ensure_phone(TARGET, "Target")
    return f"{SOURCE}@c.us", f"{TARGET}@c.us"


@pytest.fixture
def sent_text(authorized_instance: Instance, chats: tuple[str, str]) -> OutgoingMessage:
    """A message this instance already sent to the source chat."""
    return OutgoingMessage.objects.create(
        instance=authorized_instance,
        chat_id=chats[0],
        method="sendMessage",
        type_message="textMessage",
        request={"chatId": chats[0], "message": "hello"},
        payload={"message": "hello"},
        status=OutgoingStatus.SENT,
    )


@pytest.fixture
def received_location(authorized_instance: Instance, chats: tuple[str, str]) -> MessageEvent:
    """A message the source chat sent this instance, as its session took it in."""
    payload = {"latitude": 1.5, "longitude": 2.5, "nameLocation": "", "address": ""}
    event = MessageEvent(
        direction="incoming",
        chat_id=f"{SOURCE}@c.us",
        id_message="3EB0C767D097B7C7C030",
        sender=f"{SOURCE}@c.us",
        message_data=message_data_from_payload("locationMessage", payload),
        timestamp=timezone.now(),
    )
    sink.emit(authorized_instance, event)
    return event


def forward(client: APIClient, instance: Instance, body: Any, **headers: str) -> Any:
    return client.post(method_url(instance, "forwardMessages"), body, format="json", headers=headers)


def test_it_forwards_in_the_given_order(
    api_client: APIClient,
    authorized_instance: Instance,
    chats: tuple[str, str],
    sent_text: OutgoingMessage,
    received_location: MessageEvent,
    django_capture_on_commit_callbacks: Any,
) -> None:
    source, target = chats
    ids = [received_location.id_message, sent_text.id_message]
    body = {"chatId": target, "chatIdFrom": source, "messages": ids}
    with django_capture_on_commit_callbacks(execute=True):
        r = forward(api_client, authorized_instance, body)
    assert r.status_code == 200, r.content
    assert list(r.json()) == ["messages"]
    new_ids = r.json()["messages"]
    assert len(new_ids) == 2
    assert all(re.fullmatch(r"[0-9A-F]{16}", i) for i in new_ids)
    assert not set(new_ids) & set(ids)

    rows = list(OutgoingMessage.objects.filter(method="forwardMessages").order_by("id"))
    assert [m.id_message for m in rows] == new_ids
    assert [(m.chat_id, m.type_message, m.request) for m in rows] == [
        (target, "locationMessage", body),
        (target, "textMessage", body),
    ]
    assert rows[0].payload == {
        "latitude": 1.5,
        "longitude": 2.5,
        "nameLocation": "",
        "address": "",
        "isForwarded": True,
        "forwardingScore": 1,
        "forwardedFrom": received_location.id_message,
    }
    assert rows[1].payload == {
        "message": "hello",
        "isForwarded": True,
        "forwardingScore": 1,
        "forwardedFrom": sent_text.id_message,
    }

    # The first goes out at once, the second after the pacing delay.
    assert [m.status for m in rows] == [OutgoingStatus.SENT, OutgoingStatus.QUEUED]
    SendCursor.objects.update(last_sent_at=timezone.now() - timedelta(seconds=10))
    services.drain_queue(authorized_instance.id, "test")
    network = list(EmuMessage.objects.filter(sender=authorized_instance.phone).order_by("id"))
    assert [(e.id_message, e.chat_id, e.type_message) for e in network] == [
        (new_ids[0], target, "locationMessage"),
        (new_ids[1], target, "textMessage"),
    ]
    assert network[1].payload["isForwarded"] is True


def test_forwarding_to_an_unknown_number_gets_no_account(
    api_client: APIClient,
    authorized_instance: Instance,
    chats: tuple[str, str],
    sent_text: OutgoingMessage,
    django_capture_on_commit_callbacks: Any,
) -> None:
    body = {"chatId": "79000000009@c.us", "chatIdFrom": chats[0], "messages": [sent_text.id_message]}
    with django_capture_on_commit_callbacks(execute=True):
        r = forward(api_client, authorized_instance, body)
    message = OutgoingMessage.objects.get(id_message=r.json()["messages"][0])
    assert message.status == OutgoingStatus.NO_ACCOUNT


def test_a_message_of_another_chat_is_unknown(
    api_client: APIClient, authorized_instance: Instance, chats: tuple[str, str], sent_text: OutgoingMessage
) -> None:
    source, target = chats
    r = forward(
        api_client,
        authorized_instance,
        {"chatId": source, "chatIdFrom": target, "messages": [sent_text.id_message]},
    )
    assert r.status_code == 400
    assert (
        r.json()["message"]
        == f"Validation failed. Details: 'messages' contains an unknown message id: {sent_text.id_message}"
    )
    assert OutgoingMessage.objects.count() == 1


def test_one_unknown_id_forwards_nothing(
    api_client: APIClient, authorized_instance: Instance, chats: tuple[str, str], sent_text: OutgoingMessage
) -> None:
    source, target = chats
    r = forward(
        api_client,
        authorized_instance,
        {"chatId": target, "chatIdFrom": source, "messages": [sent_text.id_message, "BAE5000000000000"]},
    )
    assert r.status_code == 400
    assert (
        r.json()["message"]
        == "Validation failed. Details: 'messages' contains an unknown message id: BAE5000000000000"
    )
    assert list(OutgoingMessage.objects.values_list("id_message", flat=True)) == [sent_text.id_message]


def test_another_instances_message_is_unknown(
    api_client: APIClient,
    authorized_instance: Instance,
    instance: Instance,
    chats: tuple[str, str],
    sent_text: OutgoingMessage,
) -> None:
    source, target = chats
    r = forward(
        api_client, instance, {"chatId": target, "chatIdFrom": source, "messages": [sent_text.id_message]}
    )
    assert r.status_code == 400
    assert OutgoingMessage.objects.count() == 1


def test_idempotency_key_returns_the_first_ids(
    api_client: APIClient, authorized_instance: Instance, chats: tuple[str, str], sent_text: OutgoingMessage
) -> None:
    source, target = chats
    body = {"chatId": target, "chatIdFrom": source, "messages": [sent_text.id_message, sent_text.id_message]}
    first = forward(api_client, authorized_instance, body, **{"Idempotency-Key": "fw-1"}).json()
    again = forward(api_client, authorized_instance, body, **{"Idempotency-Key": "fw-1"}).json()
    assert len(first["messages"]) == 2
    assert again == first
    assert OutgoingMessage.objects.filter(method="forwardMessages").count() == 2


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"chatIdFrom": "79001112233@c.us", "messages": ["A"]}, "'chatId' is required"),
        ({"chatId": "79004445566@c.us", "messages": ["A"]}, "'chatIdFrom' is required"),
        (
            {"chatId": "79004445566@c.us", "chatIdFrom": "", "messages": ["A"]},
            "'chatIdFrom' is not allowed to be empty",
        ),
        (
            {"chatId": "79004445566@c.us", "chatIdFrom": "status@broadcast", "messages": ["A"]},
            "'chatIdFrom' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'",
        ),
        ({"chatId": "79004445566@c.us", "chatIdFrom": "79001112233@c.us"}, "'messages' is required"),
        (
            {"chatId": "79004445566@c.us", "chatIdFrom": "79001112233@c.us", "messages": "A"},
            "'messages' must be an array",
        ),
        (
            {"chatId": "79004445566@c.us", "chatIdFrom": "79001112233@c.us", "messages": []},
            "'messages' must contain at least 1 items",
        ),
        (
            {"chatId": "79004445566@c.us", "chatIdFrom": "79001112233@c.us", "messages": ["A"] * 101},
            "'messages' must contain less than or equal to 100 items",
        ),
        pytest.param(
            {"chatId": "79004445566@c.us", "chatIdFrom": "79001112233@c.us", "messages": [""]},
            "'messages[0]' is not allowed to be empty",
        ),
        pytest.param(
            {"chatId": "79004445566@c.us", "chatIdFrom": "79001112233@c.us", "messages": [5]},
            "'messages[0]' must be a string",
        ),
        (
            {
                "chatId": "79004445566@c.us",
                "chatIdFrom": "79001112233@c.us",
                "messages": ["A"],
                "typingTime": 999,
            },
            "'typingTime' must be larger than or equal to 1000",
        ),
        (
            {"chatId": "79004445566@c.us", "chatIdFrom": "79001112233@c.us", "messages": ["A"], "x": 1},
            "'x' is not allowed",
        ),
        (
            {"chatId": "79004445566@c.us", "chatIdFrom": "79001112233@c.us", "messages": ["A"]},
            "'messages' contains an unknown message id: A",
        ),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = forward(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.exists()


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(method_url(authorized_instance, "forwardMessages", token="f" * 50), {}, format="json")
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.post("/waInstance1234567890/forwardMessages/" + "a" * 50, {}, format="json")
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "forwardMessages"))
    assert (r.status_code, r.content) == (404, b"Not Found")
