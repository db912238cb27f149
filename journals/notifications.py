"""The GREEN-API notification bodies built from events (API.md §10).

Engine events (``engines.events``) reach ``journals.services.ingest_event`` through
the sink; so do the product's own (an API send left the engine, its status, a
quota), defined beside them in ``engines.events`` so the send path need not import
journals. Body builders are pure functions: same input,
same JSON, so tests can compare them with the documented examples.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from engines.events import (
    ApiMessageEvent,
    BlockEvent,
    CallEvent,
    GroupEvent,
    MessageEvent,
    QuotaEvent,
    StateEvent,
    StatusEvent,
)
from instances.models import Instance, State

__all__ = ["ApiMessageEvent", "QuotaEvent", "StatusEvent"]  # defined in engines.events

# What journals ingest: engine events plus the product's own (API sends, their
# statuses, quota).
IngestEvent = (
    MessageEvent | ApiMessageEvent | StatusEvent | StateEvent | CallEvent | BlockEvent | QuotaEvent | GroupEvent
)


def instance_data(instance: Instance) -> dict[str, Any]:
    wid = instance.wid if instance.state == State.AUTHORIZED else ""
    return {"idInstance": instance.id, "wid": wid, "typeInstance": "whatsapp"}


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def type_webhook(event: IngestEvent) -> str:
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


def is_enabled(instance: Instance, event: IngestEvent) -> bool:
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


def build_body(instance: Instance, event: IngestEvent) -> dict[str, Any]:
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
