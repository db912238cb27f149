"""Engine events and the GREEN-API notification bodies built from them (API.md §10).

Events are plain dataclasses an engine session (or a service acting for one) hands to
``journals.services.ingest_event``. Body builders are pure functions: same input,
same JSON, so tests can compare them with the documented examples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from instances.models import Instance, State

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


@dataclass(frozen=True)
class MessageEvent:
    """A message the engine saw: received (``incoming``) or sent from the phone
    or another linked device (``outgoing``)."""

    direction: str
    chat_id: str
    id_message: str
    sender: str
    message_data: dict[str, Any]
    timestamp: datetime
    sender_name: str = ""
    chat_name: str = ""
    sender_contact_name: str = ""

    @property
    def type_message(self) -> str:
        return str(self.message_data["typeMessage"])


@dataclass(frozen=True)
class ApiMessageEvent:
    """A message we sent through the API left the engine (outgoingAPIMessageReceived)."""

    chat_id: str
    id_message: str
    message_data: dict[str, Any]
    timestamp: datetime
    chat_name: str = ""


@dataclass(frozen=True)
class StatusEvent:
    """An outgoing message's status changed (outgoingMessageStatus)."""

    chat_id: str
    id_message: str
    status: str
    timestamp: datetime
    send_by_api: bool = True
    description: str = ""


@dataclass(frozen=True)
class StateEvent:
    state: str
    timestamp: datetime


@dataclass(frozen=True)
class CallEvent:
    """A call offer, then its outcome: pickUp, hungUp or declined.

    ``direction`` ``outgoing`` is a call this account made (journal only: GREEN-API
    has no notification for it). ``ended`` marks the hang-up of an answered call,
    which only sets the journal's ``duration``: the two notifications of a call are
    the offer and its outcome."""

    id_call: str
    chat_id: str
    status: str
    timestamp: datetime
    direction: str = "incoming"
    duration: int | None = None
    ended: bool = False


@dataclass(frozen=True)
class BlockEvent:
    chat_id: str
    timestamp: datetime
    chat_state: str = "blocked"


@dataclass(frozen=True)
class QuotaEvent:
    quota_data: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = None


@dataclass(frozen=True)
class GroupEvent:
    """The account joined a group or its subject changed: the group chat is in the
    account's chat list under ``subject``. GREEN-API sends no notification for it
    (API.md §10.2 has no group type); the journals record it."""

    chat_id: str
    subject: str
    timestamp: datetime


EngineEvent = (
    MessageEvent | ApiMessageEvent | StatusEvent | StateEvent | CallEvent | BlockEvent | QuotaEvent | GroupEvent
)


def instance_data(instance: Instance) -> dict[str, Any]:
    wid = instance.wid if instance.state == State.AUTHORIZED else ""
    return {"idInstance": instance.id, "wid": wid, "typeInstance": "whatsapp"}


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def type_webhook(event: EngineEvent) -> str:
    if isinstance(event, MessageEvent):
        return "incomingMessageReceived" if event.direction == "incoming" else "outgoingMessageReceived"
    return {
        ApiMessageEvent: "outgoingAPIMessageReceived",
        StatusEvent: "outgoingMessageStatus",
        StateEvent: "stateInstanceChanged",
        CallEvent: "incomingCall",
        BlockEvent: "incomingBlock",
        QuotaEvent: "quotaExceeded",
    }[type(event)]


def is_enabled(instance: Instance, event: EngineEvent) -> bool:
    """Whether the instance's settings (API.md §7, §10.2) let this notification through."""
    on = instance.setting
    if isinstance(event, MessageEvent):
        if event.direction == "outgoing":
            return bool(on("outgoingMessageWebhook"))
        if not on("incomingWebhook"):
            return False
        kind = event.type_message
        if kind in ("pollMessage", "pollUpdateMessage"):
            return bool(on("pollMessageWebhook"))
        if kind == "editedMessage":
            return bool(on("editedMessageWebhook"))
        if kind == "deletedMessage":
            return bool(on("deletedMessageWebhook"))
        return True
    if isinstance(event, ApiMessageEvent):
        return bool(on("outgoingAPIMessageWebhook"))
    if isinstance(event, StatusEvent):
        # failed and noAccount are always reported (API.md §10.1).
        return event.status in ("failed", "noAccount") or bool(on("outgoingWebhook"))
    if isinstance(event, StateEvent):
        return bool(on("stateWebhook"))
    if isinstance(event, CallEvent):
        if event.direction != "incoming" or event.ended:
            return False
        return bool(on("incomingWebhook")) and bool(on("incomingCallWebhook"))
    if isinstance(event, BlockEvent):
        return bool(on("incomingBlockWebhook"))
    if isinstance(event, GroupEvent):
        return False
    return bool(on("incomingBlockWebhook")) and bool(on("incomingWebhook"))


def build_body(instance: Instance, event: EngineEvent) -> dict[str, Any]:
    """The notification body exactly as GREEN-API sends it."""
    kind = type_webhook(event)
    head: dict[str, Any] = {"typeWebhook": kind, "instanceData": instance_data(instance)}
    if isinstance(event, MessageEvent):
        own = instance.wid
        sender_data = {
            "chatId": event.chat_id,
            "chatName": event.chat_name,
            "sender": event.sender if event.direction == "incoming" else own,
            "senderName": event.sender_name if event.direction == "incoming" else (instance.profile_name or "Me"),
            "senderContactName": event.sender_contact_name if event.direction == "incoming" else "",
        }
        return {
            **head,
            "timestamp": _ts(event.timestamp),
            "idMessage": event.id_message,
            "senderData": sender_data,
            "messageData": event.message_data,
        }
    if isinstance(event, ApiMessageEvent):
        return {
            **head,
            "timestamp": _ts(event.timestamp),
            "idMessage": event.id_message,
            "senderData": {
                "chatId": event.chat_id,
                "chatName": event.chat_name,
                "sender": instance.wid,
                "senderName": instance.profile_name or "Me",
                "senderContactName": "",
            },
            "messageData": event.message_data,
        }
    if isinstance(event, StatusEvent):
        body = {
            "typeWebhook": kind,
            "chatId": event.chat_id,
            "instanceData": head["instanceData"],
            "timestamp": _ts(event.timestamp),
            "idMessage": event.id_message,
            "status": event.status,
        }
        if event.description:
            body["description"] = event.description
        body["sendByApi"] = event.send_by_api
        return body
    if isinstance(event, StateEvent):
        return {**head, "timestamp": _ts(event.timestamp), "stateInstance": event.state}
    if isinstance(event, CallEvent):
        return {
            "from": event.chat_id,
            "typeWebhook": kind,
            "instanceData": head["instanceData"],
            "status": event.status,
            "timestamp": _ts(event.timestamp),
            "idMessage": event.id_call,
        }
    if isinstance(event, BlockEvent):
        return {**head, "timestamp": _ts(event.timestamp), "chatId": event.chat_id, "chatState": event.chat_state}
    if isinstance(event, GroupEvent):
        raise ValueError("group events produce no notification")
    body = {**head, "quotaData": event.quota_data}
    if event.timestamp is not None:
        body["timestamp"] = _ts(event.timestamp)
    return body


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
