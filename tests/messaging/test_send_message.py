import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator import pairing
from engines.emulator.models import EmuMessage
from engines.emulator.transport import ensure_phone
from instances.models import Instance
from messaging import services
from messaging.models import MessageStatusChange, OutgoingMessage, OutgoingStatus, SendCursor
from tests.conftest import method_url
from tests.factories import make_instance

RECIPIENT = "79001112233"


@pytest.fixture
def recipient(db: None) -> str:
    ensure_phone(RECIPIENT, "Recipient")
    return f"{RECIPIENT}@c.us"


def send(client: APIClient, instance: Instance, body: Any, **headers: str) -> Any:
    return client.post(method_url(instance, "sendMessage"), body, format="json", headers=headers)


def test_it_queues_and_delivers(
    api_client: APIClient, authorized_instance: Instance, recipient: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, {"chatId": recipient, "message": "hi"})
    assert r.status_code == 200
    id_message = r.json()["idMessage"]
    assert re.fullmatch(r"[0-9A-F]{16}", id_message)
    message = OutgoingMessage.objects.get(id_message=id_message)
    assert message.status == OutgoingStatus.SENT
    network = EmuMessage.objects.get(sender=authorized_instance.phone, id_message=id_message)
    assert network.chat_id == recipient
    assert network.payload["message"] == "hi"
    assert list(MessageStatusChange.objects.filter(message=message).values_list("status", flat=True)) == ["sent"]


def test_unknown_number_gets_no_account(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, {"chatId": "79000000009@c.us", "message": "hi"})
    assert r.status_code == 200
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert message.status == OutgoingStatus.NO_ACCOUNT
    assert message.description


def test_no_account_does_not_stall_the_queue(
    api_client: APIClient, authorized_instance: Instance, recipient: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = send(api_client, authorized_instance, {"chatId": "79000000009@c.us", "message": "a"}).json()
        second = send(api_client, authorized_instance, {"chatId": recipient, "message": "b"}).json()
    assert OutgoingMessage.objects.get(id_message=first["idMessage"]).status == OutgoingStatus.NO_ACCOUNT
    # The second waits for the pacing delay, then goes out.
    SendCursor.objects.update(last_sent_at=timezone.now() - timedelta(seconds=10))
    services.drain_queue(authorized_instance.id, "test")
    assert OutgoingMessage.objects.get(id_message=second["idMessage"]).status == OutgoingStatus.SENT


def test_messages_wait_until_authorized(
    api_client: APIClient, instance: Instance, recipient: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, instance, {"chatId": recipient, "message": "later"})
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert message.status == OutgoingStatus.QUEUED
    from instances import services as instance_services
    from instances.models import State

    with django_capture_on_commit_callbacks(execute=True):
        pairing.link_phone(instance, phone="79005550000")
        instance_services.change_state(instance, State.AUTHORIZED)
    message.refresh_from_db()
    assert message.status == OutgoingStatus.SENT


def test_idempotency_key_returns_the_first_message(
    api_client: APIClient, authorized_instance: Instance, recipient: str
) -> None:
    body = {"chatId": recipient, "message": "once"}
    a = send(api_client, authorized_instance, body, **{"Idempotency-Key": "k-1"}).json()
    b = send(api_client, authorized_instance, body, **{"Idempotency-Key": "k-1"}).json()
    c = send(api_client, authorized_instance, body, **{"Idempotency-Key": "k-2"}).json()
    assert a == b
    assert c != a
    assert OutgoingMessage.objects.filter(instance=authorized_instance).count() == 2


def test_idempotency_keys_are_per_instance(api_client: APIClient, authorized_instance: Instance, recipient: str) -> None:
    other = make_instance(authorized=True)
    body = {"chatId": recipient, "message": "x"}
    a = send(api_client, authorized_instance, body, **{"Idempotency-Key": "same"}).json()
    b = send(api_client, other, body, **{"Idempotency-Key": "same"}).json()
    assert a != b


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"message": "x"}, "'chatId' is required"),
        ({"chatId": "", "message": "x"}, "'chatId' is not allowed to be empty"),
        ({"chatId": "123@s.whatsapp.net", "message": "x"}, "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'"),
        ({"chatId": "120363000000000000@newsletter", "message": "x"}, "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'"),
        ({"chatId": 79001112233, "message": "x"}, "'chatId' must be a string"),
        ({"chatId": "79001112233@c.us"}, "'message' is required"),
        ({"chatId": "79001112233@c.us", "message": ""}, "'message' is not allowed to be empty"),
        ({"chatId": "79001112233@c.us", "message": "x" * 20_001}, "'message' length must be less than or equal to 20000 characters long"),
        ({"chatId": "79001112233@c.us", "message": "x", "typingTime": 999}, "'typingTime' must be larger than or equal to 1000"),
        ({"chatId": "79001112233@c.us", "message": "x", "typingTime": 20_001}, "'typingTime' must be less than or equal to 20000"),
        ({"chatId": "79001112233@c.us", "message": "x", "typingTime": "soon"}, "'typingTime' must be a number"),
        ({"chatId": "79001112233@c.us", "message": "x", "typePreview": "huge"}, "'typePreview' must be one of [large, small]"),
        ({"chatId": "79001112233@c.us", "message": "x", "bogus": 1}, "'bogus' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = send(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.exists()


@pytest.mark.parametrize(
    "chat_id",
    ["79001112233@c.us", "11001234567-1581234048@g.us", "120363043968066561@g.us", "120650379300963@lid"],
)
def test_it_accepts_every_chat_id_format(api_client: APIClient, authorized_instance: Instance, chat_id: str) -> None:
    assert send(api_client, authorized_instance, {"chatId": chat_id, "message": "x"}).status_code == 200


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(method_url(authorized_instance, "sendMessage", token="f" * 50), {}, format="json")
    assert r.status_code == 401


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.post("/waInstance1234567890/sendMessage/" + "a" * 50, {}, format="json")
    assert r.status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    assert api_client.get(method_url(authorized_instance, "sendMessage")).status_code == 404
