"""Reads of the status methods: getOutgoingStatuses, getIncomingStatuses and
getStatusStatistic (API.md §9.7 shapes, newest first)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from engines.contract import STATUS_BROADCAST
from engines.shapes import message_data_from_payload
from instances.models import Instance
from journals.chats import CHANGE_TYPES
from journals.models import ChangeKind, Direction, JournalMessage, MessageChange
from journals.rendering import flatten, timestamp, wire_status
from messaging.models import OutgoingMessage
from statuses.models import StatusReceipt
from statuses.services import STATUS_METHODS

DEFAULT_MINUTES = 1440
FILE_FIELDS = ("downloadUrl", "caption", "fileName", "mimeType")


def _deleted(instance_id: int) -> set[str]:
    return set(
        MessageChange.objects.filter(
            instance_id=instance_id, chat_id=STATUS_BROADCAST, kind=ChangeKind.DELETED
        ).values_list("id_message", flat=True)
    )


def status_content(type_message: str, message_data: dict[str, Any]) -> dict[str, Any]:
    """The payload fields of a status: a text status's text, colour and font; a
    file's link, caption, name and type."""
    if type_message == "extendedTextMessage":
        inner = message_data.get("extendedTextMessageData") or {}
        text = str(inner.get("text", ""))
        return {
            "textMessage": text,
            "extendedTextMessage": {
                "text": text,
                "backgroundColor": inner.get("backgroundColor", ""),
                "font": inner.get("font", ""),
            },
        }
    flat = flatten(message_data)
    return {k: flat[k] for k in FILE_FIELDS if k in flat}


def outgoing_statuses(instance: Instance, *, minutes: int = DEFAULT_MINUTES) -> list[dict[str, Any]]:
    """getOutgoingStatuses: our statuses of the last ``minutes``. A deleted one
    stays in the journal with ``isDeleted: true`` (a Relay addition)."""
    since = timezone.now() - timedelta(minutes=minutes)
    rows = OutgoingMessage.objects.filter(
        instance=instance, chat_id=STATUS_BROADCAST, method__in=STATUS_METHODS, created_at__gte=since
    ).order_by("-created_at", "-id")
    deleted = _deleted(instance.pk)
    out = []
    for row in rows:
        payload = dict(row.payload)
        if "storageName" not in payload and row.is_file:
            payload["urlFile"] = ""  # not fetched yet: no link of ours to give
        item: dict[str, Any] = {
            "type": "outgoing",
            "idMessage": row.id_message,
            "timestamp": timestamp(row.created_at),
            "typeMessage": row.type_message,
            "chatId": instance.wid,
            "statusMessage": wire_status(row.status),
            "sendByApi": True,
            "participants": list(row.request.get("participants") or []),
        }
        item.update(status_content(row.type_message, message_data_from_payload(row.type_message, payload)))
        if row.id_message in deleted:
            item["isDeleted"] = True
        out.append(item)
    return out


def incoming_statuses(instance: Instance, *, minutes: int = DEFAULT_MINUTES) -> list[dict[str, Any]]:
    """getIncomingStatuses: statuses received in the last ``minutes`` that their
    posters have not deleted. ``chatId`` is the poster, as GREEN-API shows it."""
    since = timezone.now() - timedelta(minutes=minutes)
    rows = (
        JournalMessage.objects.filter(
            instance_id=instance.pk, chat_id=STATUS_BROADCAST, direction=Direction.INCOMING, timestamp__gte=since
        )
        .exclude(type_message__in=CHANGE_TYPES)
        .order_by("-timestamp", "-id")
    )
    deleted = _deleted(instance.pk)
    out = []
    for row in rows:
        if row.id_message in deleted:
            continue
        item: dict[str, Any] = {
            "type": "incoming",
            "idMessage": row.id_message,
            "timestamp": timestamp(row.timestamp),
            "typeMessage": row.type_message,
            "chatId": row.sender,
            "senderId": row.sender,
            "senderName": row.sender_name,
            "senderContactName": row.sender_contact_name,
        }
        item.update(status_content(row.type_message, row.message_data))
        out.append(item)
    return out


def status_statistic(instance: Instance, *, id_message: str) -> list[dict[str, Any]] | None:
    """getStatusStatistic: each viewer's state of one of our statuses; None when the
    status is not ours (or its statistics are older than 30 days)."""
    if not OutgoingMessage.objects.filter(
        instance=instance, chat_id=STATUS_BROADCAST, id_message=id_message, method__in=STATUS_METHODS
    ).exists():
        return None
    rows = StatusReceipt.objects.filter(instance=instance, id_message=id_message).order_by("id")
    return [
        {"timestamp": timestamp(row.timestamp), "participant": row.participant, "status": row.status} for row in rows
    ]


def statistics_of(instance: Instance, id_messages: list[str]) -> dict[str, list[dict[str, Any]]]:
    """getStatusStatistic's rows for several of our statuses, with one query (the
    cabinet lists a day of statuses with their viewers)."""
    found: dict[str, list[dict[str, Any]]] = {id_message: [] for id_message in id_messages}
    rows = StatusReceipt.objects.filter(instance=instance, id_message__in=id_messages).order_by("id")
    for row in rows:
        found[row.id_message].append(
            {"timestamp": timestamp(row.timestamp), "participant": row.participant, "status": row.status}
        )
    return found
