"""The journal objects of API.md §12 (flattened messages) and their wire encoding.

A journal row's object depends only on columns that never change once the row is
written: edits, deletes and poll votes live in ``MessageChange`` and are applied when
the journals are read (``journals.history``). So the object is rendered once, when
the row is written (``fill_journal_json``, connected in ``JournalsConfig.ready``),
and stored encoded in ``JournalMessage.journal_json``. Listing a day of incoming
messages then costs a string join per row instead of decoding messageData,
flattening it and encoding the result again (bench/history.py).

``encode`` writes JSON byte for byte as DRF's ``JSONRenderer`` does with our
settings, so a list assembled from stored objects is the body the renderer would
have produced from the same dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rest_framework.utils.encoders import JSONEncoder

from engines.shapes import DATA_KEYS, FILE_TYPES
from journals.models import Direction, JournalMessage
from messaging.models import OutgoingStatus

# Bump when journal_object's output changes: rows stored by an older renderer are
# then rendered again when read (their stored object is ignored).
JOURNAL_JSON_VERSION = 1

FILE_FIELDS = ("downloadUrl", "caption", "fileName", "mimeType", "jpegThumbnail")
LOCATION_FIELDS = ("nameLocation", "address", "latitude", "longitude", "jpegThumbnail")
EXTENDED_FIELDS = ("text", "description", "title", "previewType", "jpegThumbnail")


def encode(value: Any) -> str:
    """JSON as ``rest_framework.renderers.JSONRenderer`` writes it here (COMPACT_JSON,
    UNICODE_JSON, STRICT_JSON): compact, UTF-8, no NaN, U+2028/U+2029 escaped."""
    text = json.dumps(value, cls=JSONEncoder, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def encode_array(items: Iterable[str]) -> bytes:
    """A JSON array of already encoded values: the bytes ``encode`` gives the list."""
    return ("[" + ",".join(items) + "]").encode()


def wire_status(status: str) -> str:
    """statusMessage of an API-sent message: still in the queue reads ``pending``."""
    if status in (OutgoingStatus.QUEUED, OutgoingStatus.SENDING):
        return "pending"
    return status


def timestamp(moment: datetime) -> int:
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


def forwarded(data: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    inner = data.get(DATA_KEYS.get(str(data.get("typeMessage", "")), ""))
    source = extra if extra is not None else (inner if isinstance(inner, dict) else {})
    return {
        "isForwarded": bool(source.get("isForwarded", False)),
        "forwardingScore": int(source.get("forwardingScore", 0) or 0),
    }


# --- A journal row's object ---------------------------------------------------------------


def journal_object(
    *,
    direction: str,
    moment: datetime,
    id_message: str,
    type_message: str,
    chat_id: str,
    sender: str,
    sender_name: str,
    sender_contact_name: str,
    message_data: Any,
) -> dict[str, Any]:
    """The object of a message an engine reported, received or sent from the phone,
    before changes (edits, deletes, votes) are applied. ``type`` comes first."""
    data = message_data if isinstance(message_data, dict) else {}
    incoming = direction == Direction.INCOMING
    body: dict[str, Any] = {"type": str(direction), "timestamp": timestamp(moment), "idMessage": id_message}
    if not incoming:
        # Receipts of phone-sent messages are not tracked: they are at least sent.
        body.update(statusMessage="sent", sendByApi=False)
    body.update(typeMessage=type_message, chatId=chat_id)
    if incoming:
        body.update(senderId=sender, senderName=sender_name, senderContactName=sender_contact_name)
    body.update(forwarded(data))
    body.update(flatten(data))
    return body


def untyped(body: dict[str, Any]) -> dict[str, Any]:
    """The object without ``type`` (lastIncomingMessages, lastOutgoingMessages),
    other keys in their order."""
    return {k: v for k, v in body.items() if k != "type"}


_TYPE_PREFIX = {str(d): '{"type":' + encode(str(d)) + "," for d in Direction}


def type_prefix(direction: str) -> str:
    """What ``with_type`` puts in place of a stored object's opening brace."""
    return _TYPE_PREFIX.get(direction) or '{"type":' + encode(str(direction)) + ","


def with_type(direction: str, stored: str) -> str:
    """A stored object (encoded without ``type``) with ``type`` put first, as
    ``encode(journal_object(...))`` would write it. (The prefix is looked up here
    rather than through ``type_prefix``: this runs once per row of a window on
    SQLite.)"""
    prefix = _TYPE_PREFIX.get(direction) or '{"type":' + encode(str(direction)) + ","
    return prefix + stored[1:]


# Separators of the windows PostgreSQL aggregates (journals.history_sql.window_json):
# control characters that ``encode`` never writes raw (JSON escapes every character
# below U+0020), so they cannot occur inside a stored object. ITEM_SEP separates the
# pieces; MARK starts a piece that is a row's key instead of its object.
ITEM_SEP = "\x01"
MARK = "\x02"


def decode(direction: str, stored: str) -> dict[str, Any]:
    """A stored object as a dict with ``type`` first, for applying changes."""
    body: dict[str, Any] = {"type": str(direction)}
    body.update(json.loads(stored))
    return body


def stored_form(
    *,
    direction: str,
    moment: Any,
    id_message: str,
    type_message: str,
    chat_id: str,
    sender: str,
    sender_name: str,
    sender_contact_name: str,
    message_data: Any,
) -> str | None:
    """What ``journal_json`` holds for a row of these column values: its object
    encoded without ``type``. None when the values are not yet what the database
    will hand back (a naive or missing timestamp) or are not JSON the renderer
    accepts; such a row is rendered when read, as before."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        return None
    body = journal_object(
        direction=direction,
        moment=moment,
        id_message=id_message,
        type_message=type_message,
        chat_id=chat_id,
        sender=sender,
        sender_name=sender_name,
        sender_contact_name=sender_contact_name,
        message_data=message_data,
    )
    try:
        return encode(untyped(body))
    except (TypeError, ValueError):
        return None


def render_journal_json(message: JournalMessage) -> str | None:
    """``stored_form`` of an unsaved (or fully saved) row. Values go through str()
    as the database hands them back (a TextChoices member reads as its value)."""
    return stored_form(
        direction=str(message.direction),
        moment=message.timestamp,
        id_message=str(message.id_message),
        type_message=str(message.type_message),
        chat_id=str(message.chat_id),
        sender=str(message.sender),
        sender_name=str(message.sender_name),
        sender_contact_name=str(message.sender_contact_name),
        message_data=message.message_data,
    )


def fill_journal_json(sender: type[JournalMessage], instance: JournalMessage, **kwargs: Any) -> None:
    """``pre_save`` of ``JournalMessage``: store the row's object with the row.

    Connected as a cache fill (STYLE: signals for caches only) so that every writer
    that saves rows one by one (``journals.services.ingest_event``, admin, tests)
    stores it without knowing about it. ``bulk_create`` and raw SQL writers skip
    signals; their rows are rendered when read. A save limited to other columns
    (``update_fields``) leaves the stored object alone: its columns never change."""
    if kwargs.get("raw"):
        return  # loaddata: fixtures carry their own columns
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and "journal_json" not in update_fields:
        return
    stored = render_journal_json(instance)
    instance.journal_json = stored or ""
    instance.journal_json_version = JOURNAL_JSON_VERSION if stored is not None else 0
