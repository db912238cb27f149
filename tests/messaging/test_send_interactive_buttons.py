"""sendInteractiveButtons (API.md §9.2, §5): ≤ 3 copy/call/url buttons, text ≤ 25."""

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
COPY = {"type": "copy", "buttonId": "1", "buttonText": "Copy code", "copyCode": "3333"}
CALL = {"type": "call", "buttonId": "2", "buttonText": "Call us", "phoneNumber": "79001234567"}
URL = {"type": "url", "buttonId": "3", "buttonText": "Open site", "url": "https://green-api.com"}


@pytest.fixture
def recipient(db: None) -> str:
    ensure_phone(RECIPIENT, "Recipient")
    return CHAT


def send(client: APIClient, instance: Instance, body: Any) -> Any:
    return client.post(method_url(instance, "sendInteractiveButtons"), body, format="json")


def test_it_queues_and_delivers(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    body = {
        "chatId": recipient,
        "header": "Header",
        "body": "Pick one",
        "footer": "Footer",
        "buttons": [COPY, CALL, URL],
    }
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, body)
    assert r.status_code == 200, r.content
    assert list(r.json()) == ["idMessage"]
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert message.status == OutgoingStatus.SENT
    assert (message.method, message.type_message) == ("sendInteractiveButtons", "interactiveButtons")
    assert message.request == body
    network = EmuMessage.objects.get(sender=authorized_instance.phone, id_message=message.id_message)
    assert (network.chat_id, network.type_message) == (recipient, "interactiveButtons")
    assert network.payload == {
        "header": "Header",
        "body": "Pick one",
        "footer": "Footer",
        "buttons": [COPY, CALL, URL],
    }


def test_header_and_footer_are_optional(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(
            api_client, authorized_instance, {"chatId": recipient, "body": "b" * 20_000, "buttons": [URL]}
        )
    assert r.status_code == 200, r.content
    assert EmuMessage.objects.get(id_message=r.json()["idMessage"]).payload == {
        "body": "b" * 20_000,
        "buttons": [URL],
    }


def test_unknown_number_gets_no_account(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(
            api_client, authorized_instance, {"chatId": "79000000009@c.us", "body": "b", "buttons": [COPY]}
        )
    assert OutgoingMessage.objects.get(id_message=r.json()["idMessage"]).status == OutgoingStatus.NO_ACCOUNT
    assert not EmuMessage.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"body": "b", "buttons": [COPY]}, "'chatId' is required"),
        ({"chatId": CHAT, "buttons": [COPY]}, "'body' is required"),
        ({"chatId": CHAT, "body": "", "buttons": [COPY]}, "'body' is not allowed to be empty"),
        (
            {"chatId": CHAT, "body": "b" * 20_001, "buttons": [COPY]},
            "'body' length must be less than or equal to 20000 characters long",
        ),
        ({"chatId": CHAT, "body": "b"}, "'buttons' is required"),
        ({"chatId": CHAT, "body": "b", "buttons": COPY}, "'buttons' must be an array"),
        ({"chatId": CHAT, "body": "b", "buttons": []}, "'buttons' must contain at least 1 items"),
        (
            {"chatId": CHAT, "body": "b", "buttons": [COPY, CALL, URL, COPY]},
            "'buttons' must contain less than or equal to 3 items",
        ),
        pytest.param(
            {"chatId": CHAT, "body": "b", "buttons": [CALL, {**COPY, "copyCode": ""}]},
            "'buttons[1].copyCode' is not allowed to be empty",
        ),
        (
            {"chatId": CHAT, "body": "b", "buttons": [{k: v for k, v in COPY.items() if k != "copyCode"}]},
            "'buttons[0].copyCode' is required",
        ),
        (
            {"chatId": CHAT, "body": "b", "buttons": [{k: v for k, v in CALL.items() if k != "phoneNumber"}]},
            "'buttons[0].phoneNumber' is required",
        ),
        (
            {"chatId": CHAT, "body": "b", "buttons": [COPY, {k: v for k, v in URL.items() if k != "url"}]},
            "'buttons[1].url' is required",
        ),
        (
            {"chatId": CHAT, "body": "b", "buttons": [{**COPY, "style": "red"}]},
            "'buttons[0].style' is not allowed",
        ),
        pytest.param(
            {"chatId": CHAT, "body": "b", "buttons": [{**COPY, "buttonText": "x" * 26}]},
            "'buttons[0].buttonText' length must be less than or equal to 25 characters long",
        ),
        pytest.param(
            {"chatId": CHAT, "body": "b", "buttons": [{**COPY, "type": "reply"}]},
            "'buttons[0].type' must be one of [copy, call, url]",
        ),
        ({"chatId": CHAT, "body": "b", "buttons": [COPY], "header": 1}, "'header' must be a string"),
        (
            {"chatId": CHAT, "body": "b", "buttons": [COPY], "typingTime": 20_001},
            "'typingTime' must be less than or equal to 20000",
        ),
        ({"chatId": CHAT, "body": "b", "buttons": [COPY], "message": "m"}, "'message' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = send(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.exists()


def test_it_accepts_a_25_character_button(
    api_client: APIClient, authorized_instance: Instance, recipient: str
) -> None:
    r = send(
        api_client,
        authorized_instance,
        {"chatId": recipient, "body": "b", "buttons": [{**COPY, "buttonText": "x" * 25}]},
    )
    assert r.status_code == 200, r.content


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(
        method_url(authorized_instance, "sendInteractiveButtons", token="f" * 50), {}, format="json"
    )
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.post("/waInstance1234567890/sendInteractiveButtons/" + "a" * 50, {}, format="json")
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "sendInteractiveButtons"))
    assert (r.status_code, r.content) == (404, b"Not Found")
