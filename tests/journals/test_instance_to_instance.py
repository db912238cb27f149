"""Instances on one server message each other over the emulated network; scripted
contacts answer."""

from __future__ import annotations

from typing import Any

import pytest

from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import LiveServer
from tests.journals.emulated import Control, notifying_instance, queued_types, take, tick


@pytest.fixture(autouse=True)
def _no_simulated_receipts(settings: Any) -> None:
    # Only B's session may acknowledge what A sent B.
    settings.EMULATOR_DELIVERED_AFTER_SECONDS = 3600
    settings.EMULATOR_READ_AFTER_SECONDS = 3600


def test_a_message_between_instances(live_asgi: LiveServer) -> None:
    a = notifying_instance(phone="79220000001")
    b = notifying_instance(phone="79220000002")
    id_message = Control(live_asgi, a).api("sendMessage", {"chatId": b.wid, "message": "hello B"})[
        "idMessage"
    ]
    assert (
        OutgoingMessage.objects.get(instance=a, id_message=id_message).status == OutgoingStatus.SENT
    )  # not yet delivered
    assert [take(live_asgi, a)["typeWebhook"], take(live_asgi, a)["status"]] == [
        "outgoingAPIMessageReceived",
        "sent",
    ]
    assert queued_types(b) == []  # nothing until B's session takes it in

    tick()

    got = take(live_asgi, b)
    assert got["typeWebhook"] == "incomingMessageReceived"
    assert got["idMessage"] == id_message
    assert got["senderData"]["chatId"] == a.wid and got["senderData"]["sender"] == a.wid
    assert got["senderData"]["senderName"] == a.profile_name
    assert got["messageData"] == {"typeMessage": "textMessage", "textMessageData": {"textMessage": "hello B"}}
    delivered = take(live_asgi, a)
    assert (delivered["typeWebhook"], delivered["status"], delivered["idMessage"]) == (
        "outgoingMessageStatus",
        "delivered",
        id_message,
    )
    assert delivered["chatId"] == b.wid and delivered["sendByApi"] is True

    # B answers; A receives it in its chat with B.
    reply = Control(live_asgi, b).api("sendMessage", {"chatId": a.wid, "message": "hi A"})["idMessage"]
    tick()
    got = take(live_asgi, a)
    assert (got["typeWebhook"], got["idMessage"], got["senderData"]["chatId"]) == (
        "incomingMessageReceived",
        reply,
        b.wid,
    )


def test_a_message_typed_on_the_phone_reaches_the_other_instance(live_asgi: LiveServer) -> None:
    a = notifying_instance(phone="79220000011")
    b = notifying_instance(phone="79220000012")
    id_message = Control(live_asgi, a).phone_sent("textMessage", phone=b.phone, message="typed on A's phone")
    tick()
    mine = take(live_asgi, a)
    theirs = take(live_asgi, b)
    assert (mine["typeWebhook"], mine["idMessage"], mine["senderData"]["chatId"]) == (
        "outgoingMessageReceived",
        id_message,
        b.wid,
    )
    assert (theirs["typeWebhook"], theirs["idMessage"], theirs["senderData"]["sender"]) == (
        "incomingMessageReceived",
        id_message,
        a.wid,
    )


def test_the_echo_contact_answers(live_asgi: LiveServer) -> None:
    a = notifying_instance(phone="79220000021", outgoingAPIMessageWebhook=False, outgoingWebhook=False)
    control = Control(live_asgi, a)
    control.post("contacts", {"phoneNumber": "79220000099", "name": "Echo", "script": "echo"}, status=201)
    control.api("sendMessage", {"chatId": "79220000099@c.us", "message": "ping"})
    control.phone_sent("locationMessage", phone="79220000099", latitude=1.0, longitude=2.0)
    tick()
    bodies = [take(live_asgi, a) for _ in range(3)]
    assert [b["typeWebhook"] for b in bodies] == [
        "incomingMessageReceived",
        "outgoingMessageReceived",
        "incomingMessageReceived",
    ]
    assert bodies[0]["senderData"]["chatId"] == "79220000099@c.us"
    assert bodies[0]["messageData"]["textMessageData"]["textMessage"] == "ping"
    assert bodies[2]["messageData"]["textMessageData"]["textMessage"] == "echo: locationMessage"
