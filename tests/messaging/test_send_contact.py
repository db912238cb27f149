"""sendContact (API.md §9.2): a card with phoneContact and at least one name field."""

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
NAME_RULE = "'contact' must contain at least one of [firstName, lastName, company]"


@pytest.fixture
def recipient(db: None) -> str:
    ensure_phone(RECIPIENT, "Recipient")
    return CHAT


def send(client: APIClient, instance: Instance, body: Any) -> Any:
    return client.post(method_url(instance, "sendContact"), body, format="json")


def test_it_queues_and_delivers(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    contact = {
        "phoneContact": 79005554433,
        "firstName": "Ivan",
        "middleName": "I.",
        "lastName": "Petrov",
        "company": "ACME",
    }
    with django_capture_on_commit_callbacks(execute=True):
        r = send(
            api_client, authorized_instance, {"chatId": recipient, "contact": contact, "typingTime": 2000}
        )
    assert r.status_code == 200, r.content
    assert list(r.json()) == ["idMessage"]
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert message.status == OutgoingStatus.SENT
    assert (message.method, message.type_message) == ("sendContact", "contactMessage")
    assert message.request == {
        "chatId": recipient,
        "contact": contact,
        "quotedMessageId": None,
        "typingTime": 2000,
    }
    network = EmuMessage.objects.get(sender=authorized_instance.phone, id_message=message.id_message)
    assert (network.chat_id, network.type_message) == (recipient, "contactMessage")
    assert network.payload == {"contact": contact, "typingTime": 2000}


@pytest.mark.parametrize("name", [{"firstName": "Ivan"}, {"lastName": "Petrov"}, {"company": "ACME"}])
def test_one_name_field_is_enough(
    api_client: APIClient, authorized_instance: Instance, recipient: str, name: dict[str, str]
) -> None:
    r = send(
        api_client,
        authorized_instance,
        {"chatId": recipient, "contact": {"phoneContact": 79005554433, **name}},
    )
    assert r.status_code == 200, r.content
    assert OutgoingMessage.objects.get().request["contact"] == {"phoneContact": 79005554433, **name}


def test_a_numeric_string_phone_is_stored_as_a_number(
    api_client: APIClient, authorized_instance: Instance, recipient: str
) -> None:
    r = send(
        api_client,
        authorized_instance,
        {"chatId": recipient, "contact": {"phoneContact": "79005554433", "firstName": "A"}},
    )
    assert r.status_code == 200, r.content
    assert OutgoingMessage.objects.get().payload["contact"] == {"phoneContact": 79005554433, "firstName": "A"}


def test_unknown_number_gets_no_account(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    body = {"chatId": "79000000009@c.us", "contact": {"phoneContact": 79005554433, "firstName": "A"}}
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, body)
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert (message.status, message.description) == (
        OutgoingStatus.NO_ACCOUNT,
        "The number has no WhatsApp account",
    )
    assert not EmuMessage.objects.exists()


def card(**fields: Any) -> dict[str, Any]:
    return {"chatId": CHAT, "contact": {"phoneContact": 79005554433, "firstName": "A", **fields}}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"contact": {"phoneContact": 79005554433, "firstName": "A"}}, "'chatId' is required"),
        (
            {"chatId": "", "contact": {"phoneContact": 79005554433, "firstName": "A"}},
            "'chatId' is not allowed to be empty",
        ),
        ({"chatId": CHAT}, "'contact' is required"),
        ({"chatId": CHAT, "contact": None}, "'contact' must be of type object"),
        pytest.param({"chatId": CHAT, "contact": "Ivan"}, "'contact' must be of type object"),
        ({"chatId": CHAT, "contact": {"firstName": "A"}}, "'contact.phoneContact' is required"),
        ({"chatId": CHAT, "contact": {"phoneContact": 79005554433}}, NAME_RULE),
        (
            {"chatId": CHAT, "contact": {"phoneContact": 79005554433, "firstName": "", "lastName": ""}},
            NAME_RULE,
        ),
        (card(phoneContact="abc"), "'contact.phoneContact' must be a number"),
        (card(phoneContact=True), "'contact.phoneContact' must be a number"),
        (card(phoneContact=79005554433.5), "'contact.phoneContact' must be a number"),
        (card(phoneContact=None), "'contact.phoneContact' must be a number"),
        (card(firstName=5), "'contact.firstName' must be a string"),
        (
            card(lastName="x" * 201),
            "'contact.lastName' length must be less than or equal to 200 characters long",
        ),
        (card(email="a@b.c"), "'contact.email' is not allowed"),
        ({**card(), "typingTime": 20_001}, "'typingTime' must be less than or equal to 20000"),
        ({**card(), "vcard": "BEGIN:VCARD"}, "'vcard' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = send(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.exists()


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(method_url(authorized_instance, "sendContact", token="f" * 50), card(), format="json")
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert not OutgoingMessage.objects.exists()


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.post("/waInstance1234567890/sendContact/" + "a" * 50, card(), format="json")
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.put(method_url(authorized_instance, "sendContact"), card(), format="json")
    assert (r.status_code, r.content) == (404, b"Not Found")
