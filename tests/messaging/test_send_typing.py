"""sendTyping (API.md §9.2, §14): a presence indicator, HTTP 200 with an empty body;
nothing is queued and nothing is sent as a message. The other side of the emulated
network sees it (the control API's presence list)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuMessage, EmuPresence
from instances.models import Instance
from messaging.models import OutgoingMessage
from tests.conftest import method_url
from tests.factories import make_instance

CHAT = "79001112233@c.us"


def send(client: APIClient, instance: Instance, body: Any) -> Any:
    return client.post(method_url(instance, "sendTyping"), body, format="json")


def seen_by(client: APIClient, instance: Instance) -> list[dict[str, Any]]:
    """What the instance's phone sees its peers show now (the emulator control API)."""
    r = client.get(
        f"/api/v1/emulator/instances/{instance.id}/presence", headers={"Authorization": f"Bearer {instance.api_token}"}
    )
    assert r.status_code == 200, r.content
    return list(r.json())


@pytest.mark.parametrize(
    ("body", "presence", "seconds"),
    [
        ({}, "composing", 1),
        ({"typingTime": 5000}, "composing", 5),
        ({"typingTime": 20_000, "typingType": "recording"}, "recording", 20),
        ({"typingType": "typing"}, "composing", 1),
    ],
)
def test_the_other_instance_sees_it(
    api_client: APIClient, authorized_instance: Instance, body: dict[str, Any], presence: str, seconds: int
) -> None:
    peer = make_instance(authorized=True)
    assert seen_by(api_client, peer) == []
    r = send(api_client, authorized_instance, {"chatId": peer.wid, **body})
    assert (r.status_code, r.content) == (200, b"")
    [seen] = seen_by(api_client, peer)
    assert (seen["chatId"], seen["presence"], seen["inChat"]) == (authorized_instance.wid, presence, peer.wid)
    assert seen["until"] - seen["since"] == seconds
    assert seen_by(api_client, authorized_instance) == []  # only the other side sees it
    assert not OutgoingMessage.objects.exists()
    assert not EmuMessage.objects.exists()


def test_a_group_gets_the_presence_on_the_network(api_client: APIClient, authorized_instance: Instance) -> None:
    group = "120363043968066561@g.us"
    assert send(api_client, authorized_instance, {"chatId": group}).status_code == 200
    row = EmuPresence.objects.get()
    assert (row.phone, row.chat_id, row.kind) == (authorized_instance.phone, group, "composing")


def test_an_unauthorized_instance_is_refused(api_client: APIClient, instance: Instance) -> None:
    r = send(api_client, instance, {"chatId": CHAT})
    assert r.status_code == 400
    assert r.json()["message"] == "instance is starting or not authorized"
    assert not EmuPresence.objects.exists()


def test_an_engine_that_cannot_is_refused(api_client: APIClient, db: None) -> None:
    instance = make_instance(authorized=True)
    Instance.objects.filter(pk=instance.pk).update(engine="cloud")  # an engine that cannot do it
    r = send(api_client, instance, {"chatId": CHAT})
    assert r.status_code == 400
    assert "cloud" in r.json()["message"]
    assert not EmuPresence.objects.exists()


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
    body: Any,
    detail: str,
) -> None:
    r = send(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not EmuPresence.objects.exists()


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(
        method_url(authorized_instance, "sendTyping", token="f" * 50), {"chatId": CHAT}, format="json"
    )
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert not EmuPresence.objects.exists()


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.post("/waInstance1234567890/sendTyping/" + "a" * 50, {"chatId": CHAT}, format="json")
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "sendTyping"))
    assert (r.status_code, r.content) == (404, b"Not Found")
