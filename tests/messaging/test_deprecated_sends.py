"""Deprecated sends still routed (API.md §9.2): sendButtons, sendTemplateButtons,
sendListMessage and sendLink are queued and delivered like any message."""

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
BUTTONS = [{"buttonId": "1", "buttonText": "Yes"}, {"buttonId": "2", "buttonText": "No"}]
TEMPLATE_BUTTONS = [
    {"index": 1, "urlButton": {"displayText": "Site", "url": "https://green-api.com"}},
    {"index": 2, "callButton": {"displayText": "Call", "phoneNumber": "+79001234567"}},
    {"index": 3, "quickReplyButton": {"displayText": "OK", "id": "ok"}},
]
SECTIONS = [
    {
        "title": "Menu",
        "rows": [{"title": "Tea", "rowId": "tea", "description": "Hot"}, {"title": "Cake", "rowId": "cake"}],
    }
]


@pytest.fixture
def recipient(db: None) -> str:
    ensure_phone(RECIPIENT, "Recipient")
    return CHAT


def send(client: APIClient, instance: Instance, method: str, body: Any) -> Any:
    return client.post(method_url(instance, method), body, format="json")


@pytest.mark.parametrize(
    ("method", "body", "type_message", "payload"),
    [
        (
            "sendButtons",
            {"chatId": CHAT, "message": "Coming?", "footer": "RSVP", "buttons": BUTTONS},
            "buttonsMessage",
            {"message": "Coming?", "footer": "RSVP", "buttons": BUTTONS},
        ),
        (
            "sendTemplateButtons",
            {"chatId": CHAT, "message": "Links", "templateButtons": TEMPLATE_BUTTONS},
            "templateMessage",
            {"message": "Links", "templateButtons": TEMPLATE_BUTTONS},
        ),
        (
            "sendListMessage",
            {"chatId": CHAT, "message": "Order", "title": "Cafe", "buttonText": "Menu", "sections": SECTIONS},
            "listMessage",
            {"message": "Order", "title": "Cafe", "buttonText": "Menu", "sections": SECTIONS},
        ),
        (
            "sendLink",
            {"chatId": CHAT, "urlLink": "https://green-api.com/en/docs/"},
            "extendedTextMessage",
            {"message": "https://green-api.com/en/docs/", "linkPreview": True},
        ),
    ],
)
def test_it_queues_and_delivers(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
    method: str,
    body: dict[str, Any],
    type_message: str,
    payload: dict[str, Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, method, body)
    assert r.status_code == 200, r.content
    assert list(r.json()) == ["idMessage"]
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert message.status == OutgoingStatus.SENT
    assert (message.method, message.type_message, message.request) == (method, type_message, body)
    network = EmuMessage.objects.get(sender=authorized_instance.phone, id_message=message.id_message)
    assert (network.chat_id, network.recipient, network.type_message) == (recipient, RECIPIENT, type_message)
    assert network.payload == payload


def test_send_link_keeps_the_quoted_message(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    body = {"chatId": recipient, "urlLink": "http://example.com", "quotedMessageId": "BAE5F4886F3E2E63"}
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, "sendLink", body)
    assert EmuMessage.objects.get(id_message=r.json()["idMessage"]).payload == {
        "message": "http://example.com",
        "linkPreview": True,
        "quotedMessageId": "BAE5F4886F3E2E63",
    }


@pytest.mark.parametrize("method", ["sendButtons", "sendTemplateButtons", "sendListMessage", "sendLink"])
def test_unknown_number_gets_no_account(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any, method: str
) -> None:
    bodies = {
        "sendButtons": {"message": "m", "buttons": BUTTONS},
        "sendTemplateButtons": {"message": "m", "templateButtons": TEMPLATE_BUTTONS},
        "sendListMessage": {"message": "m", "buttonText": "b", "sections": SECTIONS},
        "sendLink": {"urlLink": "https://example.com"},
    }
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, method, {"chatId": "79000000009@c.us", **bodies[method]})
    assert r.status_code == 200, r.content
    assert OutgoingMessage.objects.get(id_message=r.json()["idMessage"]).status == OutgoingStatus.NO_ACCOUNT
    assert not EmuMessage.objects.exists()


@pytest.mark.parametrize(
    ("method", "body", "detail"),
    [
        ("sendButtons", {"chatId": CHAT, "buttons": BUTTONS}, "'message' is required"),
        ("sendButtons", {"chatId": CHAT, "message": "m"}, "'buttons' is required"),
        (
            "sendButtons",
            {"chatId": CHAT, "message": "m", "buttons": []},
            "'buttons' must contain at least 1 items",
        ),
        (
            "sendButtons",
            {"chatId": CHAT, "message": "m", "buttons": BUTTONS * 2},
            "'buttons' must contain less than or equal to 3 items",
        ),
        (
            "sendButtons",
            {"chatId": CHAT, "message": "m", "buttons": [{**BUTTONS[0], "type": "url"}]},
            "'buttons[0].type' is not allowed",
        ),
        pytest.param(
            "sendButtons",
            {"chatId": CHAT, "message": "m", "buttons": [{"buttonId": "1", "buttonText": "x" * 26}]},
            "'buttons[0].buttonText' length must be less than or equal to 25 characters long",
        ),
        (
            "sendButtons",
            {"chatId": CHAT, "message": "m", "buttons": BUTTONS, "archiveChat": "no"},
            "'archiveChat' must be a boolean",
        ),
        (
            "sendButtons",
            {"chatId": CHAT, "message": "m", "buttons": BUTTONS, "typingTime": 1000},
            "'typingTime' is not allowed",
        ),
        ("sendTemplateButtons", {"chatId": CHAT, "message": "m"}, "'templateButtons' is required"),
        (
            "sendTemplateButtons",
            {"chatId": CHAT, "message": "m", "templateButtons": []},
            "'templateButtons' must contain at least 1 items",
        ),
        (
            "sendTemplateButtons",
            {"chatId": CHAT, "message": "m", "templateButtons": [*TEMPLATE_BUTTONS, TEMPLATE_BUTTONS[0]]},
            "'templateButtons' must contain less than or equal to 3 items",
        ),
        (
            "sendTemplateButtons",
            {"chatId": CHAT, "message": "", "templateButtons": TEMPLATE_BUTTONS},
            "'message' is not allowed to be empty",
        ),
        (
            "sendListMessage",
            {"chatId": CHAT, "message": "m", "sections": SECTIONS},
            "'buttonText' is required",
        ),
        (
            "sendListMessage",
            {"chatId": CHAT, "message": "m", "buttonText": "b" * 25, "sections": SECTIONS},
            "'buttonText' length must be less than or equal to 24 characters long",
        ),
        ("sendListMessage", {"chatId": CHAT, "message": "m", "buttonText": "b"}, "'sections' is required"),
        (
            "sendListMessage",
            {"chatId": CHAT, "message": "m", "buttonText": "b", "sections": []},
            "'sections' must contain at least 1 items",
        ),
        pytest.param(
            "sendListMessage",
            {"chatId": CHAT, "message": "m", "buttonText": "b", "sections": [{"title": "t", "rows": []}]},
            "'sections[0].rows' must contain at least 1 items",
        ),
        pytest.param(
            "sendListMessage",
            {"chatId": CHAT, "message": "m", "buttonText": "b", "sections": [{"rows": [{"title": "t"}]}]},
            "'sections[0].rows[0].rowId' is required",
        ),
        (
            "sendListMessage",
            {
                "chatId": CHAT,
                "message": "m",
                "buttonText": "b",
                "sections": [{"rows": [{"title": "t", "rowId": "r", "x": 1}]}],
            },
            "'sections[0].rows[0].x' is not allowed",
        ),
        ("sendLink", {"chatId": CHAT}, "'urlLink' is required"),
        ("sendLink", {"chatId": CHAT, "urlLink": ""}, "'urlLink' is not allowed to be empty"),
        ("sendLink", {"chatId": CHAT, "urlLink": "green-api.com"}, "'urlLink' must be a valid uri"),
        ("sendLink", {"chatId": CHAT, "urlLink": "ftp://green-api.com"}, "'urlLink' must be a valid uri"),
        (
            "sendLink",
            {"chatId": CHAT, "urlLink": "https://green-api.com/a b"},
            "'urlLink' must be a valid uri",
        ),
        (
            "sendLink",
            {"chatId": CHAT, "urlLink": "https://green-api.com", "linkPreview": False},
            "'linkPreview' is not allowed",
        ),
        ("sendLink", {"urlLink": "https://green-api.com"}, "'chatId' is required"),
    ],
)
def test_it_validates(
    api_client: APIClient, authorized_instance: Instance, method: str, body: Any, detail: str
) -> None:
    r = send(api_client, authorized_instance, method, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.exists()


@pytest.mark.parametrize("method", ["sendButtons", "sendTemplateButtons", "sendListMessage", "sendLink"])
def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance, method: str) -> None:
    r = api_client.post(method_url(authorized_instance, method, token="f" * 50), {}, format="json")
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


@pytest.mark.parametrize("method", ["sendButtons", "sendTemplateButtons", "sendListMessage", "sendLink"])
def test_it_rejects_unknown_instance(api_client: APIClient, db: None, method: str) -> None:
    r = api_client.post(f"/waInstance1234567890/{method}/" + "a" * 50, {}, format="json")
    assert (r.status_code, r.content) == (403, b"Forbidden")


@pytest.mark.parametrize("method", ["sendButtons", "sendTemplateButtons", "sendListMessage", "sendLink"])
def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance, method: str) -> None:
    r = api_client.get(method_url(authorized_instance, method))
    assert (r.status_code, r.content) == (404, b"Not Found")
