"""Journal reads (API.md §9.4, §12): chat history, one message, the last incoming
and outgoing messages and calls, as GREEN-API's flattened message objects.

The journal is two tables: ``messaging.OutgoingMessage`` (sent through the API) and
``journals.JournalMessage`` (what an engine reported: received, or sent from the
phone). Every method reads each table once, newest first on an index, merges them
in Python and applies ``MessageChange`` rows (edits, deletes, poll votes) with one
more query: a fixed number of queries whatever the page size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from instances.models import Instance
from journals.chats import CHANGE_TYPES
from journals.models import Call, ChangeKind, Direction, JournalMessage, MessageChange
from journals.notifications import DATA_KEYS, FILE_TYPES, message_data_from_payload
from messaging.models import OutgoingMessage, OutgoingStatus

DEFAULT_COUNT = 100
DEFAULT_MINUTES = 1440
CALLS_LIMIT = 10_000
TEXT_TYPES = ("textMessage", "extendedTextMessage")
FILE_FIELDS = ("downloadUrl", "caption", "fileName", "mimeType", "jpegThumbnail")
LOCATION_FIELDS = ("nameLocation", "address", "latitude", "longitude", "jpegThumbnail")
EXTENDED_FIELDS = ("text", "description", "title", "previewType", "jpegThumbnail")


def wire_status(status: str) -> str:
    """statusMessage of an API-sent message: still in the queue reads ``pending``."""
    if status in (OutgoingStatus.QUEUED, OutgoingStatus.SENDING):
        return "pending"
    return status


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


# --- Flattening a messageData object ------------------------------------------------------


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """The payload fields of a journal object for a webhook ``messageData``: text as
    ``textMessage``, file fields at the top level, ``location``, ``contact``…"""
    kind = str(data.get("typeMessage", ""))
    key = DATA_KEYS.get(kind, kind)
    inner = data.get(key)
    inner = inner if isinstance(inner, dict) else {}
    out: dict[str, Any] = {}
    if kind == "textMessage":
        out["textMessage"] = inner.get("textMessage", "")
    elif key == "extendedTextMessageData":
        out["textMessage"] = inner.get("text", "")
        if kind == "extendedTextMessage":
            out["extendedTextMessage"] = {k: inner.get(k, "") for k in EXTENDED_FIELDS}
        else:
            out["extendedTextMessage"] = {
                k: v for k, v in inner.items() if k not in ("isForwarded", "forwardingScore")
            }
    elif kind in FILE_TYPES:
        out.update({k: inner[k] for k in FILE_FIELDS if k in inner})
        if kind == "stickerMessage":
            out["isAnimated"] = bool(inner.get("isAnimated", False))
    elif kind == "locationMessage":
        out["location"] = {k: inner.get(k) for k in LOCATION_FIELDS}
    elif kind == "contactMessage":
        out["contact"] = {"displayName": inner.get("displayName", ""), "vcard": inner.get("vcard", "")}
    elif kind == "contactsArrayMessage":
        out["contacts"] = inner.get("contacts", [])
    elif kind == "pollMessage":
        out["pollMessageData"] = {
            "name": inner.get("name", ""),
            "options": inner.get("options", []),
            "multipleAnswers": bool(inner.get("multipleAnswers", False)),
        }
    elif inner:
        out[key] = inner
    if isinstance(data.get("quotedMessage"), dict):
        out["quotedMessage"] = data["quotedMessage"]
    return out


def _forwarded(data: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    inner = data.get(DATA_KEYS.get(str(data.get("typeMessage", "")), ""))
    source = extra if extra is not None else (inner if isinstance(inner, dict) else {})
    return {
        "isForwarded": bool(source.get("isForwarded", False)),
        "forwardingScore": int(source.get("forwardingScore", 0) or 0),
    }


# --- Entries ------------------------------------------------------------------------------


@dataclass
class Entry:
    """One message on its way to the wire; ``body`` is the journal object."""

    chat_id: str
    id_message: str
    moment: datetime
    rank: int  # tie-break between the two tables at equal timestamps (newest row first)
    body: dict[str, Any]
    sender: str = ""
    quoted_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)


# Rows are read as dicts of these columns: no model instances on the hot path.
JOURNAL_FIELDS = (
    "id",
    "direction",
    "chat_id",
    "id_message",
    "sender",
    "sender_name",
    "sender_contact_name",
    "type_message",
    "message_data",
    "timestamp",
)
OUTGOING_FIELDS = ("id", "chat_id", "id_message", "type_message", "payload", "status", "created_at")
Row = dict[str, Any]


def journal_entry(row: Row, *, own_wid: str) -> Entry:
    """A message an engine reported, received or sent from the phone."""
    data = row["message_data"] if isinstance(row["message_data"], dict) else {}
    incoming = row["direction"] == Direction.INCOMING
    body: dict[str, Any] = {
        "type": row["direction"],
        "timestamp": _ts(row["timestamp"]),
        "idMessage": row["id_message"],
    }
    if not incoming:
        # Receipts of phone-sent messages are not tracked: they are at least sent.
        body.update(statusMessage="sent", sendByApi=False)
    body.update(typeMessage=row["type_message"], chatId=row["chat_id"])
    if incoming:
        body.update(senderId=row["sender"], senderName=row["sender_name"], senderContactName=row["sender_contact_name"])
    body.update(_forwarded(data))
    body.update(flatten(data))
    sender = row["sender"] if incoming else own_wid
    return Entry(row["chat_id"], row["id_message"], row["timestamp"], row["id"], body, sender=sender, data=data)


def outgoing_entry(row: Row, *, own_wid: str) -> Entry:
    """A message sent through the API (its send-queue row)."""
    payload = row["payload"] if isinstance(row["payload"], dict) else {}
    data = message_data_from_payload(row["type_message"], payload)
    quoted_id = str(payload.get("quotedMessageId") or "")
    type_message = row["type_message"]
    if quoted_id and type_message in TEXT_TYPES:
        type_message = "quotedMessage"  # a reply, as the other side receives it
    body: dict[str, Any] = {
        "type": "outgoing",
        "timestamp": _ts(row["created_at"]),
        "idMessage": row["id_message"],
        "statusMessage": wire_status(row["status"]),
        "sendByApi": True,
        "typeMessage": type_message,
        "chatId": row["chat_id"],
    }
    body.update(_forwarded(data, payload))
    body.update(flatten(data))
    return Entry(
        row["chat_id"], row["id_message"], row["created_at"], row["id"], body, sender=own_wid, quoted_id=quoted_id, data=data
    )


def _quoted_object(entry: Entry) -> dict[str, Any]:
    """The ``quotedMessage`` object of a reply to ``entry`` (API.md §10.4)."""
    body = entry.body
    kind = body["typeMessage"]
    quoted: dict[str, Any] = {"stanzaId": entry.id_message, "participant": entry.sender, "typeMessage": kind}
    if kind == "extendedTextMessage":
        quoted["extendedTextMessage"] = body.get("extendedTextMessage", {})
    elif "textMessage" in body:
        quoted["textMessage"] = body["textMessage"]
    elif kind in FILE_TYPES:
        quoted.update({k: body.get(k, "") for k in ("downloadUrl", "caption", "jpegThumbnail")})
    elif "contact" in body:
        quoted["contact"] = body["contact"]
    elif "location" in body:
        quoted["location"] = body["location"]
    return quoted


# --- Applying changes (edits, deletes, votes) and quotes ------------------------------


def _changes(
    instance_id: int, entries: list[Entry], since: datetime | None = None
) -> dict[tuple[str, str], list[MessageChange]]:
    """Changes of the entries' messages. For a time window (``since``) they are the
    instance's changes from then on (a change never predates its message), which
    spares a long IN list."""
    if not entries:
        return {}
    if since is not None:
        rows = MessageChange.objects.filter(instance_id=instance_id, timestamp__gte=since)
    else:
        rows = MessageChange.objects.filter(
            instance_id=instance_id,
            chat_id__in={e.chat_id for e in entries},
            id_message__in={e.id_message for e in entries},
        )
    rows = rows.order_by("timestamp", "id")
    found: dict[tuple[str, str], list[MessageChange]] = defaultdict(list)
    for change in rows:
        found[(change.chat_id, change.id_message)].append(change)
    return found


def _apply(entry: Entry, changes: list[MessageChange]) -> None:
    body = entry.body
    if body["typeMessage"] == "pollMessage" and "pollMessageData" in body:
        chosen: dict[str, list[str]] = defaultdict(list)
        for change in changes:
            if change.kind == ChangeKind.VOTE:
                for option in change.options or []:
                    chosen[str(option)].append(change.actor)
        options = body["pollMessageData"].get("options", [])
        body["pollMessageData"]["votes"] = [
            {"optionName": name, "optionVoters": chosen.get(name, [])}
            for name in (str(o.get("optionName", "")) for o in options if isinstance(o, dict))
        ]
    for change in changes:
        if change.kind == ChangeKind.EDITED:
            body["isEdited"] = True
            if body["typeMessage"] in FILE_TYPES:
                body["caption"] = change.text
            else:
                body["textMessage"] = change.text
                if isinstance(body.get("extendedTextMessage"), dict):
                    body["extendedTextMessage"]["text"] = change.text
        elif change.kind == ChangeKind.DELETED:
            body["isDeleted"] = True


def _hidden(changes: list[MessageChange]) -> bool:
    return any(c.kind == ChangeKind.HIDDEN for c in changes)


def _attach_quotes(instance: Instance, entries: list[Entry]) -> None:
    """Replies sent through the API carry the object of the message they quote,
    looked up in one query per table (only when the page has such replies)."""
    wanted = {(e.chat_id, e.quoted_id) for e in entries if e.quoted_id and "quotedMessage" not in e.body}
    if not wanted:
        return
    chats = {chat for chat, _ in wanted}
    ids = {id_message for _, id_message in wanted}
    known: dict[tuple[str, str], Entry] = {}
    rows = JournalMessage.objects.filter(instance_id=instance.pk, chat_id__in=chats, id_message__in=ids)
    for row in rows.values(*JOURNAL_FIELDS):
        known[(row["chat_id"], row["id_message"])] = journal_entry(row, own_wid=instance.wid)
    sent = OutgoingMessage.objects.filter(instance_id=instance.pk, chat_id__in=chats, id_message__in=ids)
    for row in sent.values(*OUTGOING_FIELDS):
        known.setdefault((row["chat_id"], row["id_message"]), outgoing_entry(row, own_wid=instance.wid))
    for entry in entries:
        quoted = known.get((entry.chat_id, entry.quoted_id))
        if not entry.quoted_id or "quotedMessage" in entry.body:
            continue
        participant = quoted.sender if quoted else ""
        if entry.body["typeMessage"] == "quotedMessage":
            entry.body["extendedTextMessage"] = {
                "text": entry.body.get("textMessage", ""),
                "stanzaId": entry.quoted_id,
                "participant": participant,
            }
        entry.body["quotedMessage"] = (
            _quoted_object(quoted) if quoted else {"stanzaId": entry.quoted_id, "participant": participant}
        )


def _finish(
    instance: Instance, entries: list[Entry], *, with_type: bool = True, since: datetime | None = None
) -> list[dict[str, Any]]:
    changes = _changes(instance.pk, entries, since)
    _attach_quotes(instance, entries)
    out = []
    for entry in entries:
        mine = changes.get((entry.chat_id, entry.id_message), [])
        if _hidden(mine):
            continue
        _apply(entry, mine)
        if not with_type:
            entry.body.pop("type", None)
        out.append(entry.body)
    return out


def _newest_first(*groups: Iterable[Entry]) -> list[Entry]:
    merged = [entry for group in groups for entry in group]
    merged.sort(key=lambda e: (e.moment, e.rank), reverse=True)
    return merged


def _not_hidden(rows: QuerySet[OutgoingMessage]) -> QuerySet[OutgoingMessage]:
    hidden = MessageChange.objects.filter(
        instance_id=OuterRef("instance_id"),
        chat_id=OuterRef("chat_id"),
        id_message=OuterRef("id_message"),
        kind=ChangeKind.HIDDEN,
    )
    return rows.filter(~Exists(hidden))


def _listed(rows: QuerySet[JournalMessage]) -> QuerySet[JournalMessage]:
    """Journal rows that are messages of their own (not edits, revokes, votes)."""
    return rows.exclude(type_message__in=CHANGE_TYPES)


# --- The methods -------------------------------------------------------------------------


def chat_history(instance: Instance, *, chat_id: str, count: int = DEFAULT_COUNT) -> list[dict[str, Any]]:
    """getChatHistory: the chat's last ``count`` messages, newest first."""
    received = _listed(JournalMessage.objects.filter(instance_id=instance.pk, chat_id=chat_id)).order_by(
        "-timestamp", "-id"
    )
    sent = _not_hidden(OutgoingMessage.objects.filter(instance_id=instance.pk, chat_id=chat_id)).order_by(
        "-created_at", "-id"
    )
    entries = _newest_first(
        (journal_entry(row, own_wid=instance.wid) for row in received.values(*JOURNAL_FIELDS)[:count]),
        (outgoing_entry(row, own_wid=instance.wid) for row in sent.values(*OUTGOING_FIELDS)[:count]),
    )[:count]
    return _finish(instance, entries)


def get_message(instance: Instance, *, chat_id: str, id_message: str) -> dict[str, Any] | None:
    """getMessage: one message of the chat, or None."""
    key = {"instance_id": instance.pk, "chat_id": chat_id, "id_message": id_message}
    row = JournalMessage.objects.filter(**key).values(*JOURNAL_FIELDS).first()
    if row is not None:
        entry = journal_entry(row, own_wid=instance.wid)
    else:
        sent = OutgoingMessage.objects.filter(**key).values(*OUTGOING_FIELDS).first()
        if sent is None:
            return None
        entry = outgoing_entry(sent, own_wid=instance.wid)
    found = _finish(instance, [entry])
    return found[0] if found else None


def _since(minutes: int) -> datetime:
    return timezone.now() - timedelta(minutes=minutes)


def last_incoming_messages(instance: Instance, *, minutes: int = DEFAULT_MINUTES) -> list[dict[str, Any]]:
    """lastIncomingMessages: messages received in the last ``minutes``, newest first."""
    since = _since(minutes)
    rows = _listed(
        JournalMessage.objects.filter(instance_id=instance.pk, direction=Direction.INCOMING, timestamp__gte=since)
    ).order_by("-timestamp", "-id")
    entries = [journal_entry(row, own_wid=instance.wid) for row in rows.values(*JOURNAL_FIELDS)]
    return _finish(instance, entries, with_type=False, since=since)


def last_outgoing_messages(instance: Instance, *, minutes: int = DEFAULT_MINUTES) -> list[dict[str, Any]]:
    """lastOutgoingMessages: messages sent (through the API or from the phone) in
    the last ``minutes``, newest first."""
    since = _since(minutes)
    sent = _not_hidden(OutgoingMessage.objects.filter(instance_id=instance.pk, created_at__gte=since)).order_by(
        "-created_at", "-id"
    )
    typed = _listed(
        JournalMessage.objects.filter(instance_id=instance.pk, direction=Direction.OUTGOING, timestamp__gte=since)
    ).order_by("-timestamp", "-id")
    entries = _newest_first(
        (outgoing_entry(row, own_wid=instance.wid) for row in sent.values(*OUTGOING_FIELDS)),
        (journal_entry(row, own_wid=instance.wid) for row in typed.values(*JOURNAL_FIELDS)),
    )
    return _finish(instance, entries, with_type=False, since=since)


def _call_entry(call: Call) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": call.direction,
        "idMessage": call.id_call,
        "timestamp": _ts(call.timestamp),
        "typeMessage": "incomingCall" if call.direction == Direction.INCOMING else "outgoingCall",
        "chatId": call.chat_id,
    }
    if call.direction == Direction.OUTGOING:
        answered = call.status not in ("offer", "declined")
        body["duration"] = max(0, int((call.updated_at - call.timestamp).total_seconds())) if answered else 0
    body.update(isVideo=False, status=call.status)
    if call.direction == Direction.OUTGOING:
        body["participants"] = [{"id": call.chat_id, "status": call.status}]
    return body


def last_calls(instance: Instance, *, direction: str, minutes: int = DEFAULT_MINUTES) -> list[dict[str, Any]]:
    """lastIncomingCalls / lastOutgoingCalls: the last 10 000 calls of the window."""
    calls = Call.objects.filter(
        Q(instance_id=instance.pk) & Q(direction=direction) & Q(timestamp__gte=_since(minutes))
    ).order_by("-timestamp", "-id")[:CALLS_LIMIT]
    return [_call_entry(call) for call in calls]
