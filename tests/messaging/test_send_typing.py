"""sendTyping (API.md §9.2, §14): a presence indicator, HTTP 200 with an empty body;
nothing is queued and nothing is sent as a message."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from instances.models import EmuMessage, Instance
from instances.transport import TransportError
from instances.transport.emulator import EmulatorTransport
from messaging.models import OutgoingMessage
from tests.conftest import method_url

CHAT = "79001112233@c.us"


@pytest.fixture
def presences(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record what reaches the transport (the only place we mock)."""
    calls: list[dict[str, Any]] = []

    def send_presence(self: EmulatorTransport, **kwargs: Any) -> None:
        calls.append({"instance": self.instance.id, **kwargs})

    monkeypatch.setattr(EmulatorTransport, "send_presence", send_presence)
    return calls


def send(client: APIClient, instance: Instance, body: Any) -> Any:
    return client.post(method_url(instance, "sendTyping"), body, format="json")


def test_it_shows_typing_with_an_empty_body(
    api_client: APIClient, authorized_instance: Instance, presences: list[dict[str, Any]]
) -> None:
    r = send(api_client, authorized_instance, {"chatId": CHAT})
    assert r.status_code == 200
    assert r.content == b""
    assert presences == [
        {"instance": authorized_instance.id, "chat_id": CHAT, "milliseconds": 1000, "recording": False}
    ]
    assert not OutgoingMessage.objects.exists()
    assert not EmuMessage.objects.exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"chatId": CHAT, "typingTime": 5000}, {"milliseconds": 5000, "recording": False}),
        (
            {"chatId": CHAT, "typingTime": 20_000, "typingType": "recording"},
            {"milliseconds": 20_000, "recording": True},
        ),
        (
            {"chatId": "120363043968066561@g.us", "typingType": "typing"},
            {"milliseconds": 1000, "recording": False},
        ),
    ],
)
def test_it_passes_time_and_type(
    api_client: APIClient,
    authorized_instance: Instance,
    presences: list[dict[str, Any]],
    body: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    r = send(api_client, authorized_instance, body)
    assert (r.status_code, r.content) == (200, b"")
    assert presences == [{"instance": authorized_instance.id, "chat_id": body["chatId"], **expected}]


def test_an_unauthorized_instance_shows_nothing(
    api_client: APIClient, instance: Instance, presences: list[dict[str, Any]]
) -> None:
    r = send(api_client, instance, {"chatId": CHAT})
    assert (r.status_code, r.content) == (200, b"")
    assert presences == []


def test_a_transport_error_is_not_reported(
    api_client: APIClient, authorized_instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: EmulatorTransport, **kwargs: Any) -> None:
        raise TransportError("socket closed")

    monkeypatch.setattr(EmulatorTransport, "send_presence", broken)
    r = send(api_client, authorized_instance, {"chatId": CHAT})
    assert (r.status_code, r.content) == (200, b"")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'chatId' is required"),
        ({"chatId": ""}, "'chatId' is not allowed to be empty"),
        (
            {"chatId": "79001112233"},
            "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'",
        ),
        ({"chatId": CHAT, "typingTime": 999}, "'typingTime' must be larger than or equal to 1000"),
        ({"chatId": CHAT, "typingTime": 20_001}, "'typingTime' must be less than or equal to 20000"),
        ({"chatId": CHAT, "typingTime": "1000ms"}, "'typingTime' must be a number"),
        ({"chatId": CHAT, "typingTime": True}, "'typingTime' must be a number"),
        ({"chatId": CHAT, "typingType": "paused"}, "'typingType' must be one of [typing, recording]"),
        ({"chatId": CHAT, "message": "hi"}, "'message' is not allowed"),
    ],
)
def test_it_validates(
    api_client: APIClient,
    authorized_instance: Instance,
    presences: list[dict[str, Any]],
    body: Any,
    detail: str,
) -> None:
    r = send(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert presences == []


def test_it_rejects_wrong_token(
    api_client: APIClient, authorized_instance: Instance, presences: list[dict[str, Any]]
) -> None:
    r = api_client.post(
        method_url(authorized_instance, "sendTyping", token="f" * 50), {"chatId": CHAT}, format="json"
    )
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert presences == []


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.post("/waInstance1234567890/sendTyping/" + "a" * 50, {"chatId": CHAT}, format="json")
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "sendTyping"))
    assert (r.status_code, r.content) == (404, b"Not Found")
