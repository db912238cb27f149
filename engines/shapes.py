"""GREEN-API message shapes shared by engines and journals: the ``messageData`` a
send payload becomes on the other side, and back (forwarding). Pure functions."""

from __future__ import annotations

import re
from typing import Any

# autoTyping (API.md §3): texts without their own typingTime are typed first for a
# time their length gives. One formula for every engine: the emulator types while it
# sends, other engines are typed for by the send queue (messaging.pacing).
TEXT_TYPES = ("textMessage", "extendedTextMessage")
AUTO_TYPING_MS_PER_CHAR = 60
TYPING_MIN_MS, TYPING_MAX_MS = 1000, 20_000  # sendMessage's typingTime bounds


def auto_typing_ms(text: str, level: int) -> int:
    """autoTyping's typing time for a text: 60 ms a character times the level
    (1 = brisk ... 4 = slow), within sendMessage's typingTime bounds (1-20 s)."""
    return max(TYPING_MIN_MS, min(TYPING_MAX_MS, len(text) * AUTO_TYPING_MS_PER_CHAR * level))


def typing_ms(type_message: str, data: dict[str, Any], auto_typing: int) -> int:
    """How long to type before a queued message: its own typingTime, else for a
    text under autoTyping (level 1-4) the time its length gives; 0 for none."""
    explicit = data.get("typingTime")
    if explicit:
        return int(explicit)
    if auto_typing > 0 and type_message in TEXT_TYPES:
        return auto_typing_ms(str(data.get("message", "")), auto_typing)
    return 0


# messageData key per typeMessage (API.md §10.2).
DATA_KEYS: dict[str, str] = {
    "textMessage": "textMessageData",
    "extendedTextMessage": "extendedTextMessageData",
    "quotedMessage": "extendedTextMessageData",
    "reactionMessage": "extendedTextMessageData",
    "imageMessage": "fileMessageData",
    "videoMessage": "fileMessageData",
    "documentMessage": "fileMessageData",
    "audioMessage": "fileMessageData",
    "stickerMessage": "fileMessageData",
    "locationMessage": "locationMessageData",
    "contactMessage": "contactMessageData",
    "contactsArrayMessage": "messageData",
    "pollMessage": "pollMessageData",
    "pollUpdateMessage": "pollMessageData",
    "editedMessage": "editedMessageData",
    "deletedMessage": "deletedMessageData",
    "groupInviteMessage": "groupInviteMessageData",
    "buttonsMessage": "buttonsMessage",
    "listMessage": "listMessage",
    "templateMessage": "templateMessage",
    "buttonsResponseMessage": "buttonsResponseMessage",
    "listResponseMessage": "listResponseMessage",
    "templateButtonsReplyMessage": "templateButtonReplyMessage",
    "interactiveButtons": "interactiveButtons",
    "interactiveButtonsReply": "interactiveButtonsReply",
}
FILE_TYPES = {"imageMessage", "videoMessage", "documentMessage", "audioMessage", "stickerMessage"}


def message_data_from_payload(type_message: str, payload: dict[str, Any]) -> dict[str, Any]:
    """messageData for a message we sent (or the emulated network carried), built
    from the transport payload (the send request's fields)."""
    forwarded = {"isForwarded": bool(payload.get("isForwarded")), "forwardingScore": int(payload.get("forwardingScore", 0))}
    data: dict[str, Any] = {"typeMessage": type_message}
    if type_message == "textMessage":
        data["textMessageData"] = {"textMessage": payload.get("message", "")}
    elif type_message == "extendedTextMessage" and "backgroundColor" in payload:
        # A text status (sendTextStatus): its text with its colour and font.
        data["extendedTextMessageData"] = {
            "text": payload.get("message", ""),
            "backgroundColor": payload.get("backgroundColor", ""),
            "font": payload.get("font", ""),
        }
    elif type_message == "extendedTextMessage":
        preview = payload.get("customPreview") or {}
        data["extendedTextMessageData"] = {
            "text": payload.get("message", ""),
            "description": preview.get("description", ""),
            "title": preview.get("title", ""),
            "previewType": "None" if not payload.get("linkPreview", True) else payload.get("typePreview", "small").capitalize(),
            "jpegThumbnail": preview.get("jpegThumbnail", ""),
            **forwarded,
        }
    elif type_message == "pollMessage":
        data["pollMessageData"] = {
            "name": payload.get("message", ""),
            "options": payload.get("options", []),
            "multipleAnswers": bool(payload.get("multipleAnswers", False)),
        }
    elif type_message == "locationMessage":
        data["locationMessageData"] = {
            "nameLocation": payload.get("nameLocation", ""),
            "address": payload.get("address", ""),
            "latitude": payload.get("latitude"),
            "longitude": payload.get("longitude"),
            "jpegThumbnail": "",
            **forwarded,
        }
    elif type_message == "contactMessage":
        contact = payload.get("contact", {})
        name = " ".join(p for p in (contact.get("firstName"), contact.get("middleName"), contact.get("lastName")) if p) or contact.get("company", "")
        phone = contact.get("phoneContact", "")
        data["contactMessageData"] = {
            "displayName": name,
            "vcard": f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nitem1.TEL;waid={phone}:+{phone}\nEND:VCARD",
            **forwarded,
        }
    elif type_message in FILE_TYPES:
        data["fileMessageData"] = {
            "downloadUrl": payload.get("urlFile", ""),
            "caption": payload.get("caption", ""),
            "fileName": payload.get("fileName", ""),
            "jpegThumbnail": "",
            "mimeType": payload.get("mimeType", ""),
            "isAnimated": False,
            **forwarded,
        }
    else:
        key = DATA_KEYS.get(type_message, type_message)
        inner = {k: v for k, v in payload.items() if k not in ("quotedMessageId", "typingTime", "archiveChat")}
        data[key] = inner
    return data


VCARD_WAID = re.compile(r"waid=(\d+)")


def payload_from_message_data(message_data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The inverse of ``message_data_from_payload``: (typeMessage, send payload) that
    sends a message again as it was received (forwardMessages). A reply forwards as
    its text, as WhatsApp does; a vCard keeps its name and number."""
    kind = str(message_data.get("typeMessage", ""))
    if kind == "textMessage":
        return kind, {"message": str((message_data.get("textMessageData") or {}).get("textMessage", ""))}
    if kind in ("extendedTextMessage", "quotedMessage"):
        text = str((message_data.get("extendedTextMessageData") or {}).get("text", ""))
        return ("extendedTextMessage" if kind == "extendedTextMessage" else "textMessage"), {"message": text}
    if kind == "pollMessage":
        poll = message_data.get("pollMessageData") or {}
        return kind, {
            "message": poll.get("name", ""),
            "options": [{"optionName": o.get("optionName", "")} for o in poll.get("options", []) if isinstance(o, dict)],
            "multipleAnswers": bool(poll.get("multipleAnswers", False)),
        }
    if kind == "locationMessage":
        place = message_data.get("locationMessageData") or {}
        return kind, {k: place.get(k) for k in ("nameLocation", "address", "latitude", "longitude")}
    if kind == "contactMessage":
        card = message_data.get("contactMessageData") or {}
        found = VCARD_WAID.search(str(card.get("vcard", "")))
        return kind, {"contact": {"phoneContact": int(found.group(1)) if found else 0, "firstName": card.get("displayName", "")}}
    if kind in FILE_TYPES:
        file = message_data.get("fileMessageData") or {}
        payload = {
            "urlFile": file.get("downloadUrl", ""),
            "fileName": file.get("fileName", ""),
            "caption": file.get("caption", ""),
        }
        if file.get("mimeType"):
            payload["mimeType"] = file["mimeType"]
        return kind, payload
    inner = message_data.get(DATA_KEYS.get(kind, kind))
    return kind, dict(inner) if isinstance(inner, dict) else {}
