"""sendLocation (API.md §9.2): latitude −90…90, longitude −180…180."""

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


@pytest.fixture
def recipient(db: None) -> str:
    ensure_phone(RECIPIENT, "Recipient")
    return CHAT


def send(client: APIClient, instance: Instance, body: Any) -> Any:
    return client.post(method_url(instance, "sendLocation"), body, format="json")


def test_it_queues_and_delivers(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    body = {
        "chatId": recipient,
        "nameLocation": "Office",
        "address": "1 Main St",
        "latitude": 55.7558,
        "longitude": 37.6173,
    }
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, body)
    assert r.status_code == 200, r.content
    assert list(r.json()) == ["idMessage"]
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert message.status == OutgoingStatus.SENT
    assert (message.method, message.type_message) == ("sendLocation", "locationMessage")
    assert message.request == {**body, "quotedMessageId": None, "typingTime": None}
    network = EmuMessage.objects.get(sender=authorized_instance.phone, id_message=message.id_message)
    assert (network.chat_id, network.type_message) == (recipient, "locationMessage")
    assert network.payload == {
        "nameLocation": "Office",
        "address": "1 Main St",
        "latitude": 55.7558,
        "longitude": 37.6173,
    }


def test_name_and_address_default_to_empty(
    api_client: APIClient,
    authorized_instance: Instance,
    recipient: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, {"chatId": recipient, "latitude": 0, "longitude": 0})
    network = EmuMessage.objects.get(id_message=r.json()["idMessage"])
    assert network.payload == {"nameLocation": "", "address": "", "latitude": 0.0, "longitude": 0.0}


@pytest.mark.parametrize(("latitude", "longitude"), [(-90, -180), (90, 180), ("12.5", "-7.25")])
def test_it_accepts_the_bounds_and_numeric_strings(
    api_client: APIClient, authorized_instance: Instance, recipient: str, latitude: Any, longitude: Any
) -> None:
    r = send(
        api_client, authorized_instance, {"chatId": recipient, "latitude": latitude, "longitude": longitude}
    )
    assert r.status_code == 200, r.content
    request = OutgoingMessage.objects.get().request
    assert (request["latitude"], request["longitude"]) == (float(latitude), float(longitude))


def test_unknown_number_gets_no_account(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = send(
            api_client, authorized_instance, {"chatId": "79000000009@c.us", "latitude": 1, "longitude": 2}
        )
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert (message.status, message.description) == (
        OutgoingStatus.NO_ACCOUNT,
        "The number has no WhatsApp account",
    )
    assert not EmuMessage.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"latitude": 1, "longitude": 2}, "'chatId' is required"),
        (
            {"chatId": "79001112233@newsletter", "latitude": 1, "longitude": 2},
            "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'",
        ),
        ({"chatId": CHAT, "longitude": 2}, "'latitude' is required"),
        ({"chatId": CHAT, "latitude": 1}, "'longitude' is required"),
        (
            {"chatId": CHAT, "latitude": 90.0001, "longitude": 2},
            "'latitude' must be less than or equal to 90",
        ),
        (
            {"chatId": CHAT, "latitude": -90.5, "longitude": 2},
            "'latitude' must be larger than or equal to -90",
        ),
        (
            {"chatId": CHAT, "latitude": 1, "longitude": 180.5},
            "'longitude' must be less than or equal to 180",
        ),
        (
            {"chatId": CHAT, "latitude": 1, "longitude": -181},
            "'longitude' must be larger than or equal to -180",
        ),
        ({"chatId": CHAT, "latitude": True, "longitude": 2}, "'latitude' must be a number"),
        ({"chatId": CHAT, "latitude": 1, "longitude": False}, "'longitude' must be a number"),
        ({"chatId": CHAT, "latitude": "north", "longitude": 2}, "'latitude' must be a number"),
        ({"chatId": CHAT, "latitude": "NaN", "longitude": 2}, "'latitude' must be a number"),
        ({"chatId": CHAT, "latitude": None, "longitude": 2}, "'latitude' must be a number"),
        ({"chatId": CHAT, "latitude": [1], "longitude": 2}, "'latitude' must be a number"),
        (
            {"chatId": CHAT, "latitude": 1, "longitude": 2, "nameLocation": 5},
            "'nameLocation' must be a string",
        ),
        ({"chatId": CHAT, "latitude": 1, "longitude": 2, "address": None}, "'address' must be a string"),
        (
            {"chatId": CHAT, "latitude": 1, "longitude": 2, "typingTime": 999},
            "'typingTime' must be larger than or equal to 1000",
        ),
        (
            {"chatId": CHAT, "latitude": 1, "longitude": 2, "typingTime": 1500.5},
            "'typingTime' must be a number",
        ),
        ({"chatId": CHAT, "latitude": 1, "longitude": 2, "zoom": 3}, "'zoom' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = send(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.exists()


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(method_url(authorized_instance, "sendLocation", token="f" * 50), {}, format="json")
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.post("/waInstance1234567890/sendLocation/" + "a" * 50, {}, format="json")
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "sendLocation"))
    assert (r.status_code, r.content) == (404, b"Not Found")
