"""sendInteractiveButtonsReply (API.md §9.2, §5): ≤ 3 quick-reply buttons, text ≤ 25."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuMessage
from engines.emulator.transport import ensure_phone
from instances.models import Instance
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import method_url

RECIPIENT = "79001112233"
CHAT = f"{RECIPIENT}@c.us"
YES = {"buttonId": "1", "buttonText": "Yes"}
NO = {"buttonId": "2", "buttonText": "No"}
LATER = {"buttonId": "3", "buttonText": "Later"}


@pytest.fixture
def recipient(db: None) -> str:
    ensure_phone(RECIPIENT, "Recipient")
    return CHAT


def send(client: APIClient, instance: Instance, body: Any) -> Any:
    return client.post(method_url(instance, "sendInteractiveButtonsReply"), body, format="json")


def test_it_queues_and_delivers(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    body = {
        "chatId": recipient,
        "header": "H",
        "body": "Coming?",
        "footer": "F",
        "buttons": [YES, NO, LATER],
        "typingTime": 1000,
    }
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, body)
    assert r.status_code == 200, r.content
    assert list(r.json()) == ["idMessage"]
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert message.status == OutgoingStatus.SENT
    assert (message.method, message.type_message) == (
        "sendInteractiveButtonsReply",
        "interactiveButtonsReply",
    )
    assert message.request == body
    network = EmuMessage.objects.get(sender=authorized_instance.phone, id_message=message.id_message)
    assert (network.chat_id, network.type_message) == (recipient, "interactiveButtonsReply")
    assert network.payload == {
        "header": "H",
        "body": "Coming?",
        "footer": "F",
        "buttons": [YES, NO, LATER],
        "typingTime": 1000,
    }


def test_unknown_number_gets_no_account(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(
            api_client, authorized_instance, {"chatId": "79000000009@c.us", "body": "b", "buttons": [YES]}
        )
    assert OutgoingMessage.objects.get(id_message=r.json()["idMessage"]).status == OutgoingStatus.NO_ACCOUNT


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"body": "b", "buttons": [YES]}, "'chatId' is required"),
        ({"chatId": CHAT, "buttons": [YES]}, "'body' is required"),
        ({"chatId": CHAT, "body": "", "buttons": [YES]}, "'body' is not allowed to be empty"),
        ({"chatId": CHAT, "body": "b"}, "'buttons' is required"),
        ({"chatId": CHAT, "body": "b", "buttons": []}, "'buttons' must contain at least 1 items"),
        (
            {"chatId": CHAT, "body": "b", "buttons": [YES, NO, LATER, YES]},
            "'buttons' must contain less than or equal to 3 items",
        ),
        (
            {"chatId": CHAT, "body": "b", "buttons": [YES, {**NO, "type": "copy"}]},
            "'buttons[1].type' is not allowed",
        ),
        pytest.param(
            {"chatId": CHAT, "body": "b", "buttons": [{**YES, "buttonText": "y" * 26}]},
            "'buttons[0].buttonText' length must be less than or equal to 25 characters long",
        ),
        pytest.param(
            {"chatId": CHAT, "body": "b", "buttons": [YES, {"buttonText": "No"}]},
            "'buttons[1].buttonId' is required",
        ),
        (
            {"chatId": CHAT, "body": "b", "buttons": [YES], "typingTime": 500},
            "'typingTime' must be larger than or equal to 1000",
        ),
        (
            {"chatId": CHAT, "body": "b", "buttons": [YES], "quotedMessageId": "X"},
            "'quotedMessageId' is not allowed",
        ),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = send(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.exists()


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(
        method_url(authorized_instance, "sendInteractiveButtonsReply", token="f" * 50), {}, format="json"
    )
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.post("/waInstance1234567890/sendInteractiveButtonsReply/" + "a" * 50, {}, format="json")
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.delete(method_url(authorized_instance, "sendInteractiveButtonsReply"))
    assert (r.status_code, r.content) == (404, b"Not Found")
