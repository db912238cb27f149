"""Every incoming event the emulator can produce, made through the control API and
taken in by one runner tick, arrives from receiveNotification with GREEN-API's body
shape (API.md §10.3–10.4): same keys, same nesting, same types."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from engines.emulator.models import EmuPhone
from tests.conftest import LiveServer
from tests.journals.emulated import (
    CONTACT,
    CONTACT_WID,
    Control,
    forget_notifications,
    notifying_instance,
    take,
    tick,
)

ENVELOPE = {"typeWebhook", "instanceData", "timestamp", "idMessage", "senderData", "messageData"}
SENDER_DATA = {"chatId", "chatName", "sender", "senderName", "senderContactName"}
FILE_DATA = {
    "downloadUrl",
    "caption",
    "fileName",
    "jpegThumbnail",
    "mimeType",
    "isAnimated",
    "forwardingScore",
    "isForwarded",
}
FORWARDED = {"forwardingScore", "isForwarded"}

# typeMessage -> (data key, its keys, quotedMessage keys or None), as in §10.4.
SHAPES: dict[str, tuple[str, set[str], set[str] | None]] = {
    "textMessage": ("textMessageData", {"textMessage"}, None),
    "extendedTextMessage": (
        "extendedTextMessageData",
        {"text", "description", "title", "previewType", "jpegThumbnail", *FORWARDED},
        None,
    ),
    "quotedMessage": (
        "extendedTextMessageData",
        {"text", "stanzaId", "participant"},
        {"stanzaId", "participant", "typeMessage", "textMessage"},
    ),
    "imageMessage": ("fileMessageData", FILE_DATA, None),
    "videoMessage": ("fileMessageData", FILE_DATA, None),
    "audioMessage": ("fileMessageData", FILE_DATA, None),
    "documentMessage": ("fileMessageData", FILE_DATA, None),
    "stickerMessage": (
        "fileMessageData",
        {"downloadUrl", "jpegThumbnail", "isAnimated", "mimeType", *FORWARDED},
        None,
    ),
    "locationMessage": (
        "locationMessageData",
        {"nameLocation", "address", "latitude", "longitude", "jpegThumbnail", *FORWARDED},
        None,
    ),
    "contactMessage": ("contactMessageData", {"displayName", "vcard", *FORWARDED}, None),
    "contactsArrayMessage": ("messageData", {"contacts", *FORWARDED}, None),
    "reactionMessage": ("extendedTextMessageData", {"text"}, {"stanzaId", "participant"}),
    "groupInviteMessage": (
        "groupInviteMessageData",
        {"groupJid", "inviteCode", "inviteExpiration", "groupName", "caption", "name", "jpegThumbnail"},
        None,
    ),
    "pollMessage": ("pollMessageData", {"name", "options", "multipleAnswers"}, None),
    "pollUpdateMessage": ("pollMessageData", {"stanzaId", "name", "votes", "multipleAnswers"}, None),
    "editedMessage": ("editedMessageData", {"textMessage", "stanzaId"}, None),
    "deletedMessage": ("deletedMessageData", {"stanzaId"}, None),
    "buttonsResponseMessage": (
        "buttonsResponseMessage",
        {"stanzaId", "selectedButtonId", "selectedButtonText"},
        None,
    ),
    "listResponseMessage": (
        "listResponseMessage",
        {"stanzaId", "title", "listType", "singleSelectReply"},
        None,
    ),
    "templateButtonsReplyMessage": (
        "templateButtonReplyMessage",
        {"stanzaId", "selectedIndex", "selectedId", "selectedDisplayText"},
        None,
    ),
    "interactiveButtonsReply": ("interactiveButtonsReply", {"header", "body", "footer", "buttons"}, None),
}


@pytest.fixture(autouse=True)
def _no_simulated_receipts(settings: Any) -> None:
    # Contacts acknowledge the instance's messages on a timer; keep those statuses
    # out of the queue under test.
    settings.EMULATOR_DELIVERED_AFTER_SECONDS = 3600
    settings.EMULATOR_READ_AFTER_SECONDS = 3600


def check_envelope(body: dict[str, Any], instance: Any, type_webhook: str) -> None:
    assert set(body) == ENVELOPE
    assert body["typeWebhook"] == type_webhook
    assert body["instanceData"] == {
        "idInstance": instance.id,
        "wid": instance.wid,
        "typeInstance": "whatsapp",
    }
    assert type(body["instanceData"]["idInstance"]) is int
    assert type(body["timestamp"]) is int
    assert abs(body["timestamp"] - time.time()) < 120  # seconds, not milliseconds
    assert isinstance(body["idMessage"], str) and body["idMessage"]
    assert set(body["senderData"]) == SENDER_DATA
    assert all(isinstance(v, str) for v in body["senderData"].values())


def check_message_data(message_data: dict[str, Any], kind: str) -> dict[str, Any]:
    key, keys, quoted_keys = SHAPES[kind]
    expected_top = {"typeMessage", key} | ({"quotedMessage"} if quoted_keys else set())
    assert set(message_data) == expected_top
    assert message_data["typeMessage"] == kind
    assert set(message_data[key]) == keys
    if quoted_keys:
        assert set(message_data["quotedMessage"]) == quoted_keys
    data: dict[str, Any] = message_data[key]
    return data


# One request body per kind; ``{text}``, ``{api}`` and ``{poll}`` name earlier messages:
# one from the contact, one the instance sent through the API, a poll it sent.
REQUESTS: dict[str, dict[str, Any]] = {
    "textMessage": {"message": "Hello"},
    "extendedTextMessage": {
        "message": "https://example.org/docs",
        "title": "Docs",
        "description": "How to",
        "isForwarded": True,
        "forwardingScore": 4,
    },
    "quotedMessage": {"message": "This is my answer", "quotedMessageId": "{text}"},
    "imageMessage": {"caption": "Image"},
    "videoMessage": {"caption": "Video"},
    "audioMessage": {},
    "documentMessage": {"fileName": "report.pdf", "caption": "Report"},
    "stickerMessage": {"isAnimated": True},
    "locationMessage": {
        "nameLocation": "Restaurant",
        "address": "123456, Perm",
        "latitude": 12.34,
        "longitude": 14.15,
    },
    "contactMessage": {"displayName": "Victor Andreevich", "phoneContact": "79001234569"},
    "contactsArrayMessage": {
        "contacts": [
            {"displayName": "Victor Andreevich", "phoneContact": "79001234569"},
            {"displayName": "Oleg", "phoneContact": "79001234560"},
        ]
    },
    "reactionMessage": {"reaction": "👍", "quotedMessageId": "{api}"},
    "groupInviteMessage": {"groupName": "Drawing club", "caption": "Invitation to my WhatsApp group"},
    "pollMessage": {"message": "Poll Name", "options": ["Variant 1", "Variant 2"]},
    "pollUpdateMessage": {"stanzaId": "{poll}", "votes": ["Variant 2"]},
    "editedMessage": {"stanzaId": "{text}", "message": "Edited message"},
    "deletedMessage": {"stanzaId": "{text}"},
    "buttonsResponseMessage": {"stanzaId": "{api}", "selectedButtonId": "1", "selectedButtonText": "Green"},
    "listResponseMessage": {"stanzaId": "{api}", "title": "Option 2", "singleSelectReply": "option2"},
    "templateButtonsReplyMessage": {
        "stanzaId": "{api}",
        "selectedIndex": 2,
        "selectedId": "id1",
        "selectedDisplayText": "red",
    },
    "interactiveButtonsReply": {
        "header": "Header",
        "body": "Body",
        "footer": "Footer",
        "buttons": [{"buttonId": "1", "buttonText": "Yes"}, {"buttonId": "2", "buttonText": "No"}],
    },
}


def _prepare(control: Control, kind: str) -> dict[str, str]:
    """The earlier messages the request refers to, taken in by a tick."""
    refs: dict[str, str] = {}
    wanted = str(REQUESTS[kind])
    if "{text}" in wanted:
        refs["{text}"] = control.incoming("textMessage", message="Hello", name="John")
    if "{api}" in wanted:
        refs["{api}"] = control.api("sendMessage", {"chatId": CONTACT_WID, "message": "Pick a colour"})[
            "idMessage"
        ]
    if "{poll}" in wanted:
        refs["{poll}"] = control.api(
            "sendPoll",
            {
                "chatId": CONTACT_WID,
                "message": "Poll Name",
                "options": [{"optionName": "Variant 1"}, {"optionName": "Variant 2"}],
            },
        )["idMessage"]
    tick()
    forget_notifications(control.instance)
    return refs


def _fill(value: Any, refs: dict[str, str]) -> Any:
    if isinstance(value, str):
        return refs.get(value, value)
    if isinstance(value, list):
        return [_fill(v, refs) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, refs) for k, v in value.items()}
    return value


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_incoming_message_body_matches_green_api(live_asgi: LiveServer, kind: str) -> None:
    instance = notifying_instance()
    control = Control(live_asgi, instance)
    refs = _prepare(control, kind)
    id_message = control.incoming(kind, name="John", **_fill(REQUESTS[kind], refs))
    tick()
    body = take(live_asgi, instance)
    check_envelope(body, instance, "incomingMessageReceived")
    assert body["idMessage"] == id_message
    assert body["senderData"] == {
        "chatId": CONTACT_WID,
        "chatName": "John Doe",
        "sender": CONTACT_WID,
        "senderName": "John",
        "senderContactName": "John Doe",
    }
    data = check_message_data(body["messageData"], kind)
    check_values(kind, body["messageData"], data, refs)


def check_values(kind: str, message_data: dict[str, Any], data: dict[str, Any], refs: dict[str, str]) -> None:
    if kind == "quotedMessage":
        assert data == {"text": "This is my answer", "stanzaId": refs["{text}"], "participant": CONTACT_WID}
        assert message_data["quotedMessage"]["textMessage"] == "Hello"
        assert message_data["quotedMessage"]["typeMessage"] == "textMessage"
    elif kind in ("imageMessage", "videoMessage", "audioMessage", "documentMessage", "stickerMessage"):
        assert data["downloadUrl"].startswith("http")
        assert "/media/f/" in data["downloadUrl"]
        assert (
            data["mimeType"]
            == {
                "imageMessage": "image/jpeg",
                "videoMessage": "video/mp4",
                "audioMessage": "audio/ogg",
                "documentMessage": "application/pdf",
                "stickerMessage": "image/webp",
            }[kind]
        )
        assert type(data["isAnimated"]) is bool and type(data["isForwarded"]) is bool
        if kind == "imageMessage":
            assert base64.b64decode(data["jpegThumbnail"])[:2] == b"\xff\xd8"
        if kind == "documentMessage":
            assert data["fileName"] == "report.pdf"
    elif kind == "locationMessage":
        assert isinstance(data["latitude"], float) and isinstance(data["longitude"], float)
    elif kind == "contactMessage":
        assert data["vcard"].startswith("BEGIN:VCARD") and "waid=79001234569" in data["vcard"]
    elif kind == "contactsArrayMessage":
        assert [c["displayName"] for c in data["contacts"]] == ["Victor Andreevich", "Oleg"]
        assert all(set(c) == {"displayName", "vcard"} for c in data["contacts"])
    elif kind == "reactionMessage":
        assert data == {"text": "👍"}
        assert message_data["quotedMessage"]["stanzaId"] == refs["{api}"]
    elif kind == "pollMessage":
        assert data["options"] == [{"optionName": "Variant 1"}, {"optionName": "Variant 2"}]
        assert data["multipleAnswers"] is False
    elif kind == "pollUpdateMessage":
        assert data["stanzaId"] == refs["{poll}"]
        assert data["votes"] == [
            {"optionName": "Variant 1", "optionVoters": []},
            {"optionName": "Variant 2", "optionVoters": [CONTACT_WID]},
        ]
    elif kind in ("editedMessage", "deletedMessage"):
        assert data["stanzaId"] == refs["{text}"]
    elif kind in ("buttonsResponseMessage", "listResponseMessage", "templateButtonsReplyMessage"):
        assert data["stanzaId"] == refs["{api}"]
        if kind == "listResponseMessage":
            assert data["listType"] == 1
        if kind == "templateButtonsReplyMessage":
            assert type(data["selectedIndex"]) is int
    elif kind == "interactiveButtonsReply":
        assert data["buttons"] == [
            {"buttonId": "1", "buttonText": "Yes"},
            {"buttonId": "2", "buttonText": "No"},
        ]


def test_a_reply_to_a_file_carries_its_link(live_asgi: LiveServer) -> None:
    instance = notifying_instance()
    control = Control(live_asgi, instance)
    image = control.incoming("imageMessage", caption="look")
    id_message = control.incoming("locationMessage", latitude=1.5, longitude=2.5, quotedMessageId=image)
    tick()
    take(live_asgi, instance)
    body = take(live_asgi, instance)
    assert body["idMessage"] == id_message
    quoted = body["messageData"]["quotedMessage"]
    assert quoted["stanzaId"] == image and quoted["typeMessage"] == "imageMessage"
    assert quoted["caption"] == "look" and "/media/f/" in quoted["downloadUrl"]


def test_references_must_be_known(live_asgi: LiveServer) -> None:
    instance = notifying_instance()
    control = Control(live_asgi, instance)
    body = {"phoneNumber": CONTACT, "message": "?", "quotedMessageId": "NOPE"}
    r = control.post("incoming/quotedMessage", body, status=400)
    assert "NOPE" in r["message"]
    # Only the sender can edit or delete, and only polls take votes.
    mine = control.api("sendMessage", {"chatId": CONTACT_WID, "message": "x"})["idMessage"]
    control.post(
        "incoming/editedMessage", {"phoneNumber": CONTACT, "stanzaId": mine, "message": "y"}, status=400
    )
    control.post(
        "incoming/pollUpdateMessage", {"phoneNumber": CONTACT, "stanzaId": mine, "votes": []}, status=400
    )
    control.post("incoming/textMessage", {"phoneNumber": CONTACT, "message": 5}, status=400)


def test_control_api_needs_the_instance_token(live_asgi: LiveServer) -> None:
    instance = notifying_instance()
    control = Control(live_asgi, instance)
    control.headers = {"Authorization": "Bearer wrong"}
    control.post("incoming/textMessage", {"phoneNumber": CONTACT, "message": "hi"}, status=403)
    control.headers = {}
    control.post("incoming/textMessage", {"phoneNumber": CONTACT, "message": "hi"}, status=401)


def test_an_unpaired_instance_cannot_receive(live_asgi: LiveServer) -> None:
    from tests.factories import make_instance

    instance = make_instance()
    Control(live_asgi, instance).post(
        "incoming/textMessage", {"phoneNumber": CONTACT, "message": "hi"}, status=400
    )


def test_phone_sent_message_is_outgoing_message_received(live_asgi: LiveServer) -> None:
    instance = notifying_instance()
    id_message = Control(live_asgi, instance).phone_sent("textMessage", message="sent from phone")
    tick()
    body = take(live_asgi, instance)
    check_envelope(body, instance, "outgoingMessageReceived")
    assert body["idMessage"] == id_message
    assert body["senderData"] == {
        "chatId": CONTACT_WID,
        "chatName": "John Doe",
        "sender": instance.wid,
        "senderName": instance.profile_name,
        "senderContactName": "",
    }
    check_message_data(body["messageData"], "textMessage")
    assert body["messageData"]["textMessageData"] == {"textMessage": "sent from phone"}


def test_phone_sent_file_is_outgoing_message_received(live_asgi: LiveServer) -> None:
    instance = notifying_instance()
    Control(live_asgi, instance).phone_sent("documentMessage", fileName="a.pdf")
    tick()
    body = take(live_asgi, instance)
    assert body["typeWebhook"] == "outgoingMessageReceived"
    check_message_data(body["messageData"], "documentMessage")


@pytest.mark.parametrize("outcome", ["pickUp", "hungUp", "declined"])
def test_incoming_call_is_an_offer_then_its_outcome(live_asgi: LiveServer, outcome: str) -> None:
    instance = notifying_instance()
    control = Control(live_asgi, instance)
    id_call = control.post("calls", {"phoneNumber": CONTACT})["idCall"]
    tick()
    offer = take(live_asgi, instance)
    control.post(f"calls/{id_call}", {"outcome": outcome})
    control.post(f"calls/{id_call}", {"outcome": outcome}, status=400)  # already over
    tick()
    end = take(live_asgi, instance)
    for body, status in ((offer, "offer"), (end, outcome)):
        assert set(body) == {"from", "typeWebhook", "instanceData", "status", "timestamp", "idMessage"}
        assert body["typeWebhook"] == "incomingCall"
        assert body["from"] == CONTACT_WID
        assert body["status"] == status
        assert body["idMessage"] == id_call
        assert body["instanceData"]["idInstance"] == instance.id
        assert type(body["timestamp"]) is int


def test_a_call_with_its_outcome_comes_in_network_order(live_asgi: LiveServer) -> None:
    instance = notifying_instance()
    control = Control(live_asgi, instance)
    first = control.incoming("textMessage", message="calling you")
    id_call = control.post("calls", {"phoneNumber": CONTACT, "outcome": "declined"})["idCall"]
    last = control.incoming("textMessage", message="why not?")
    tick()
    got = [take(live_asgi, instance) for _ in range(4)]
    assert [(b["typeWebhook"], b["idMessage"]) for b in got] == [
        ("incomingMessageReceived", first),
        ("incomingCall", id_call),
        ("incomingCall", id_call),
        ("incomingMessageReceived", last),
    ]
    assert [b.get("status") for b in got[1:3]] == ["offer", "declined"]


def test_block_is_incoming_block(live_asgi: LiveServer) -> None:
    instance = notifying_instance()
    Control(live_asgi, instance).post("block", {"phoneNumber": CONTACT})
    tick()
    body = take(live_asgi, instance)
    assert set(body) == {"typeWebhook", "instanceData", "timestamp", "chatId", "chatState"}
    assert body["typeWebhook"] == "incomingBlock"
    assert body["chatId"] == CONTACT_WID
    assert body["chatState"] == "blocked"


def test_outgoing_api_message_and_status_bodies(live_asgi: LiveServer) -> None:
    instance = notifying_instance()
    control = Control(live_asgi, instance)
    id_message = control.api("sendMessage", {"chatId": CONTACT_WID, "message": "sent via API"})["idMessage"]
    echo = take(live_asgi, instance)
    check_envelope(echo, instance, "outgoingAPIMessageReceived")
    assert echo["idMessage"] == id_message
    assert echo["senderData"]["sender"] == instance.wid and echo["senderData"]["chatId"] == CONTACT_WID
    assert echo["messageData"] == {
        "typeMessage": "textMessage",
        "textMessageData": {"textMessage": "sent via API"},
    }
    sent = take(live_asgi, instance)
    assert set(sent) == {
        "typeWebhook",
        "chatId",
        "instanceData",
        "timestamp",
        "idMessage",
        "status",
        "sendByApi",
    }
    assert sent["typeWebhook"] == "outgoingMessageStatus"
    assert (sent["chatId"], sent["idMessage"], sent["status"], sent["sendByApi"]) == (
        CONTACT_WID,
        id_message,
        "sent",
        True,
    )


def test_failed_status_carries_a_description(live_asgi: LiveServer) -> None:
    instance = notifying_instance()
    EmuPhone.objects.create(phone="79009999999", registered=False)
    control = Control(live_asgi, instance)
    id_message = control.api("sendMessage", {"chatId": "79009999999@c.us", "message": "anyone?"})["idMessage"]
    body = take(live_asgi, instance)
    assert set(body) == {
        "typeWebhook",
        "chatId",
        "instanceData",
        "timestamp",
        "idMessage",
        "status",
        "description",
        "sendByApi",
    }
    assert body["status"] == "noAccount" and body["idMessage"] == id_message
    assert body["description"]
    assert body["sendByApi"] is True
