"""Shared reads of the journals."""

from __future__ import annotations

from typing import Any

from engines.shapes import FILE_TYPES, payload_from_message_data
from journals.models import JournalMessage, Notification, NotificationState
from messaging.models import OutgoingMessage


def chat_has_messages(instance_id: int, chat_id: str) -> bool:
    """Whether the journal holds any message of the chat, either way (received, or
    sent from the phone, history included): messaging.pacing's test for a first
    contact, provided to it in JournalsConfig.ready."""
    return JournalMessage.objects.filter(instance_id=instance_id, chat_id=chat_id).exists()


def file_url(instance_id: int, *, chat_id: str, id_message: str) -> str | None:
    """downloadFile: the link of a file message the instance received or sent (from
    the phone: journal; through the API: the send queue's row). None when the chat
    has no such message or it carries no file."""
    journalled = (
        JournalMessage.objects.filter(instance_id=instance_id, chat_id=chat_id, id_message=id_message)
        .values_list("message_data", flat=True)
        .first()
    )
    if isinstance(journalled, dict):
        data = journalled.get("fileMessageData")
        if journalled.get("typeMessage") in FILE_TYPES and isinstance(data, dict) and data.get("downloadUrl"):
            return str(data["downloadUrl"])
        return None
    sent = (
        OutgoingMessage.objects.filter(
            instance_id=instance_id, chat_id=chat_id, id_message=id_message, is_file=True
        )
        .values_list("payload", flat=True)
        .first()
    )
    if isinstance(sent, dict) and sent.get("urlFile"):
        return str(sent["urlFile"])
    return None


def forward_sources(instance_id: int, chat_id: str, id_messages: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """forwardMessages: (typeMessage, send payload) of journalled messages of the
    chat (received, or sent from the phone), rebuilt from their messageData."""
    rows = JournalMessage.objects.filter(
        instance_id=instance_id, chat_id=chat_id, id_message__in=id_messages
    ).values_list("id_message", "message_data")
    return {id_message: payload_from_message_data(data) for id_message, data in rows if isinstance(data, dict)}


def notification_queue_depth() -> int:
    """Notifications waiting for receiveNotification or webhook delivery."""
    return Notification.objects.filter(state=NotificationState.QUEUED).count()
