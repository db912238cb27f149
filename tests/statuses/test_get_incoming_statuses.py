"""getIncomingStatuses: statuses of simulated contacts and of other instances reach
the instance as GREEN-API delivers them (chat status@broadcast, gated by the
settings) and are listed with their text, colour and font."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from rest_framework.test import APIClient

from instances.models import Instance
from tests.conftest import LiveServer, method_url
from tests.journals.emulated import (
    CONTACT,
    CONTACT_WID,
    Control,
    notifying_instance,
    queued_types,
    take,
    tick,
)


def incoming(live: LiveServer, instance: Instance, **query: Any) -> Any:
    r = httpx.get(f"{live.url}{method_url(instance, 'getIncomingStatuses')}", params=query, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_contacts_text_status_arrives_and_is_listed(live_asgi: LiveServer) -> None:
    me = notifying_instance(phone="79230000001")
    posted = Control(live_asgi, me).post(
        "statuses", {"phoneNumber": CONTACT, "message": "Holiday!", "backgroundColor": "#228B22", "font": "SERIF"}
    )
    assert posted["chatId"] == CONTACT_WID and posted["typeMessage"] == "extendedTextMessage"
    assert queued_types(me) == []  # nothing until the session takes it in
    tick()
    body = take(live_asgi, me)
    assert body["typeWebhook"] == "incomingMessageReceived"
    assert body["idMessage"] == posted["idMessage"]
    assert body["senderData"] == {
        "chatId": "status@broadcast",
        "chatName": "John Doe",
        "sender": CONTACT_WID,
        "senderName": "John",
        "senderContactName": "John Doe",
    }
    assert body["messageData"] == {
        "typeMessage": "extendedTextMessage",
        "extendedTextMessageData": {"text": "Holiday!", "backgroundColor": "#228B22", "font": "SERIF"},
    }
    [item] = incoming(live_asgi, me)
    assert item == {
        "type": "incoming",
        "idMessage": posted["idMessage"],
        "timestamp": body["timestamp"],
        "typeMessage": "extendedTextMessage",
        "chatId": CONTACT_WID,
        "senderId": CONTACT_WID,
        "senderName": "John",
        "senderContactName": "John Doe",
        "textMessage": "Holiday!",
        "extendedTextMessage": {"text": "Holiday!", "backgroundColor": "#228B22", "font": "SERIF"},
    }
    tick()  # taken in once
    assert queued_types(me) == []
    # Statuses are not a chat of the chat list.
    chats = httpx.get(f"{live_asgi.url}{method_url(me, 'getChats')}", timeout=30).json()
    assert "status@broadcast" not in [c.get("id") for c in chats]


def test_a_picture_status_and_the_minutes_window(live_asgi: LiveServer) -> None:
    me = notifying_instance(phone="79230000002")
    posted = Control(live_asgi, me).post("statuses", {"phoneNumber": CONTACT, "kind": "imageMessage", "caption": "view"})
    tick()
    [item] = incoming(live_asgi, me, minutes=5)
    assert item["typeMessage"] == "imageMessage" and item["idMessage"] == posted["idMessage"]
    assert item["caption"] == "view" and item["mimeType"] == "image/jpeg"
    link = urlsplit(item["downloadUrl"])
    picture = httpx.get(f"{live_asgi.url}{link.path}?{link.query}", timeout=30)
    assert (picture.status_code, picture.headers["content-type"]) == (200, "image/jpeg")
    r = httpx.get(f"{live_asgi.url}{method_url(me, 'getIncomingStatuses')}", params={"minutes": 0})
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'minutes' must be larger than or equal to 1"


def test_incoming_webhook_off_gates_the_notification_not_the_journal(live_asgi: LiveServer) -> None:
    me = notifying_instance(phone="79230000003", incomingWebhook=False)
    Control(live_asgi, me).post("statuses", {"phoneNumber": CONTACT, "message": "quiet"})
    tick()
    assert queued_types(me) == []
    assert [s["textMessage"] for s in incoming(live_asgi, me)] == ["quiet"]


def test_an_unpaired_instance_cannot_be_shown_a_status(live_asgi: LiveServer, instance: Instance) -> None:
    r = httpx.post(
        f"{live_asgi.url}/api/v1/emulator/instances/{instance.id}/statuses",
        json={"phoneNumber": CONTACT, "message": "x"},
        headers={"Authorization": f"Bearer {instance.api_token}"},
    )
    assert r.status_code == 400


@pytest.mark.django_db
def test_it_rejects_a_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "getIncomingStatuses", token="f" * 50))
    assert r.status_code == 401


def test_the_control_api_checks_colour_and_font(live_asgi: LiveServer) -> None:
    me = notifying_instance(phone="79230000004")
    control = Control(live_asgi, me)
    assert "#RRGGBB" in str(control.post("statuses", {"phoneNumber": CONTACT, "message": "x", "backgroundColor": "red;x"}, status=400))
    control.post("statuses", {"phoneNumber": CONTACT, "message": "x", "font": "COMIC"}, status=400)
