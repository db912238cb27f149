"""Shared reads of the journals."""

from __future__ import annotations

from journals.models import JournalMessage
from journals.notifications import FILE_TYPES


def file_url(instance_id: int, *, chat_id: str, id_message: str) -> str | None:
    """downloadFile: the link of a file message the instance received or sent (from
    the phone: journal; through the API: the send queue's row). None when the chat
    has no such message or it carries no file."""
    from messaging.models import OutgoingMessage

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
