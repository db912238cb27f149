"""sendPoll (API.md §9.2, limits §5): question ≤ 255, 2–12 unique options ≤ 100 chars."""

from __future__ import annotations

import re
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
CHAT_ID_FORMATS = (
    "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'"
)
# instances.http.joi_message drops the field (and writes "a.1.b" for "a[1].b") once it
# descends into an array, so nested errors reach the wire in DRF's words.
OPTIONS = [{"optionName": "Red"}, {"optionName": "Blue"}]


@pytest.fixture
def recipient(db: None) -> str:
    ensure_phone(RECIPIENT, "Recipient")
    return CHAT


def send(client: APIClient, instance: Instance, body: Any, **headers: str) -> Any:
    return client.post(method_url(instance, "sendPoll"), body, format="json", headers=headers)


def test_it_queues_and_delivers(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    body = {"chatId": recipient, "message": "Colour?", "options": OPTIONS, "multipleAnswers": True}
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, body)
    assert r.status_code == 200, r.content
    assert list(r.json()) == ["idMessage"]
    id_message = r.json()["idMessage"]
    assert re.fullmatch(r"[0-9A-F]{16}", id_message)
    message = OutgoingMessage.objects.get(instance=authorized_instance, id_message=id_message)
    assert message.status == OutgoingStatus.SENT
    assert (message.method, message.type_message, message.chat_id) == ("sendPoll", "pollMessage", recipient)
    assert message.request == {
        "chatId": recipient,
        "message": "Colour?",
        "options": OPTIONS,
        "multipleAnswers": True,
        "quotedMessageId": None,
        "typingTime": None,
    }
    network = EmuMessage.objects.get(sender=authorized_instance.phone, id_message=id_message)
    assert (network.chat_id, network.recipient, network.type_message) == (recipient, RECIPIENT, "pollMessage")
    assert network.payload == {"message": "Colour?", "options": OPTIONS, "multipleAnswers": True}


def test_multiple_answers_defaults_to_false(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(
            api_client,
            authorized_instance,
            {"chatId": recipient, "message": "Q", "options": OPTIONS, "typingTime": 1000},
        )
    network = EmuMessage.objects.get(id_message=r.json()["idMessage"])
    assert network.payload == {
        "message": "Q",
        "options": OPTIONS,
        "multipleAnswers": False,
        "typingTime": 1000,
    }


def test_it_accepts_the_limits(api_client: APIClient, authorized_instance: Instance, recipient: str) -> None:
    options = [{"optionName": f"{i:02d}" + "x" * 98} for i in range(12)]
    r = send(api_client, authorized_instance, {"chatId": recipient, "message": "q" * 255, "options": options})
    assert r.status_code == 200, r.content
    assert OutgoingMessage.objects.get().request["options"] == options


def test_unknown_number_gets_no_account(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(
            api_client,
            authorized_instance,
            {"chatId": "79000000009@c.us", "message": "Q", "options": OPTIONS},
        )
    assert r.status_code == 200
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert message.status == OutgoingStatus.NO_ACCOUNT
    assert message.description == "The number has no WhatsApp account"
    assert not EmuMessage.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"message": "Q", "options": OPTIONS}, "'chatId' is required"),
        ({"chatId": "", "message": "Q", "options": OPTIONS}, "'chatId' is not allowed to be empty"),
        ({"chatId": "79001112233@s.whatsapp.net", "message": "Q", "options": OPTIONS}, CHAT_ID_FORMATS),
        ({"chatId": CHAT, "options": OPTIONS}, "'message' is required"),
        ({"chatId": CHAT, "message": "", "options": OPTIONS}, "'message' is not allowed to be empty"),
        ({"chatId": CHAT, "message": 5, "options": OPTIONS}, "'message' must be a string"),
        (
            {"chatId": CHAT, "message": "q" * 256, "options": OPTIONS},
            "'message' length must be less than or equal to 255 characters long",
        ),
        ({"chatId": CHAT, "message": "Q"}, "'options' is required"),
        ({"chatId": CHAT, "message": "Q", "options": "Red"}, "'options' must be an array"),
        ({"chatId": CHAT, "message": "Q", "options": []}, "'options' must contain at least 2 items"),
        ({"chatId": CHAT, "message": "Q", "options": OPTIONS[:1]}, "'options' must contain at least 2 items"),
        (
            {"chatId": CHAT, "message": "Q", "options": [{"optionName": str(i)} for i in range(13)]},
            "'options' must contain less than or equal to 12 items",
        ),
        (
            {
                "chatId": CHAT,
                "message": "Q",
                "options": [{"optionName": "Red"}, {"optionName": "Blue"}, {"optionName": "Red"}],
            },
            "'options[2]' contains a duplicate value",
        ),
        (
            {"chatId": CHAT, "message": "Q", "options": [*OPTIONS, {"optionName": "Green", "x": 1}]},
            "'options[2].x' is not allowed",
        ),
        pytest.param(
            {"chatId": CHAT, "message": "Q", "options": [{"optionName": "Red"}, {"optionName": "b" * 101}]},
            "'options[1].optionName' length must be less than or equal to 100 characters long",
        ),
        pytest.param(
            {"chatId": CHAT, "message": "Q", "options": [{"optionName": "Red"}, {"optionName": ""}]},
            "'options[1].optionName' is not allowed to be empty",
        ),
        pytest.param(
            {"chatId": CHAT, "message": "Q", "options": [{"optionName": "Red"}, {}]},
            "'options[1].optionName' is required",
        ),
        pytest.param(
            {"chatId": CHAT, "message": "Q", "options": [{"optionName": "Red"}, "Blue"]},
            "'options[1]' must be of type object",
        ),
        pytest.param({"chatId": CHAT, "message": "Q", "options": None}, "'options' must be an array"),
        (
            {"chatId": CHAT, "message": "Q", "options": OPTIONS, "multipleAnswers": "yes"},
            "'multipleAnswers' must be a boolean",
        ),
        (
            {"chatId": CHAT, "message": "Q", "options": OPTIONS, "typingTime": 999},
            "'typingTime' must be larger than or equal to 1000",
        ),
        (
            {"chatId": CHAT, "message": "Q", "options": OPTIONS, "typingTime": 20_001},
            "'typingTime' must be less than or equal to 20000",
        ),
        (
            {"chatId": CHAT, "message": "Q", "options": OPTIONS, "quotedMessageId": ""},
            "'quotedMessageId' is not allowed to be empty",
        ),
        (
            {"chatId": CHAT, "message": "Q", "options": OPTIONS, "archiveChat": True},
            "'archiveChat' is not allowed",
        ),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = send(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.exists()


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(method_url(authorized_instance, "sendPoll", token="f" * 50), {}, format="json")
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.post("/waInstance1234567890/sendPoll/" + "a" * 50, {}, format="json")
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "sendPoll"))
    assert (r.status_code, r.content) == (404, b"Not Found")
    assert not OutgoingMessage.objects.exists()
