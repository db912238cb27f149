"""Journal reads (API.md §9.4, §12): chat history, one message, the last incoming
and outgoing messages and calls, as GREEN-API's flattened message objects.

The journal is two tables: ``messaging.OutgoingMessage`` (sent through the API) and
``journals.JournalMessage`` (what an engine reported: received, or sent from the
phone). Every method reads each table once, newest first on an index, merges them
in Python and applies ``MessageChange`` rows (edits, deletes, poll votes) with at
most one more query (getChatHistory's rows say whether any change points at them,
so it runs only when one does): a fixed number of queries whatever the page size.
The two hot reads (getChatHistory, lastIncomingMessages) are hand-written SQL in
``journals.history_sql``; the others go through the ORM.

Journal rows carry their object already encoded (``journal_json``, see
``journals.rendering``), so a row nothing has changed goes to the wire as stored:
no messageData is decoded and no model or dict is built for it. Rows with changes,
polls (their tally is live) and rows stored without an object are rendered here, and
API-sent messages always are (their status moves). The methods return the encoded
JSON body, byte for byte what DRF's renderer writes for the same objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from engines.shapes import FILE_TYPES, message_data_from_payload
from instances.models import Instance
from journals import history_sql
from journals.chats import CHANGE_TYPES
from journals.models import Call, ChangeKind, Direction, JournalMessage, MessageChange
from journals.rendering import (
    ITEM_SEP,
    JOURNAL_JSON_VERSION,
    MARK,
    decode,
    encode,
    encode_array,
    flatten,
    forwarded,
    journal_object,
    timestamp,
    type_prefix,
    wire_status,
    with_type,
)
from messaging.models import OutgoingMessage

DEFAULT_COUNT = 100
DEFAULT_MINUTES = 1440
CALLS_LIMIT = 10_000
TEXT_TYPES = ("textMessage", "extendedTextMessage")


# --- Entries ------------------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """One message on its way to the wire: its object as a dict (``body``), or for a
    journal row that stores it, encoded without ``type`` (``stored``)."""

    chat_id: str
    id_message: str
    direction: str  # the object's "type"
    type_message: str
    moment: datetime | None  # for merging the two tables; None when nothing is merged
    rank: int  # tie-break between the two tables at equal timestamps (newest row first)
    body: dict[str, Any] | None = None
    stored: str = ""
    sender: str = ""
    quoted_id: str = ""
    changed: bool = True  # may have MessageChange rows (True when not known)

    def object(self) -> dict[str, Any]:
        """The object as a dict (decoded from its stored form on first use)."""
        if self.body is None:
            self.body = decode(self.direction, self.stored)
        return self.body


# Rows rendered here are read as dicts of these columns: no model instances.
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
# Rows that store their object need only these (no messageData, no timestamp to
# convert unless the rows are merged with the API-sent ones).
STORED_FIELDS = ("id", "direction", "chat_id", "id_message", "type_message", "journal_json", "journal_json_version")
OUTGOING_FIELDS = ("id", "chat_id", "id_message", "type_message", "payload", "status", "created_at")
Row = dict[str, Any]


def journal_entry(row: Row, *, own_wid: str) -> Entry:
    """A message an engine reported, received or sent from the phone, rendered here."""
    incoming = row["direction"] == Direction.INCOMING
    body = journal_object(
        direction=row["direction"],
        moment=row["timestamp"],
        id_message=row["id_message"],
        type_message=row["type_message"],
        chat_id=row["chat_id"],
        sender=row["sender"],
        sender_name=row["sender_name"],
        sender_contact_name=row["sender_contact_name"],
        message_data=row["message_data"],
    )
    return Entry(
        row["chat_id"],
        row["id_message"],
        row["direction"],
        row["type_message"],
        row["timestamp"],
        row["id"],
        body=body,
        sender=row["sender"] if incoming else own_wid,
    )


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
        "timestamp": timestamp(row["created_at"]),
        "idMessage": row["id_message"],
        "statusMessage": wire_status(row["status"]),
        "sendByApi": True,
        "typeMessage": type_message,
        "chatId": row["chat_id"],
    }
    body.update(forwarded(data, payload))
    body.update(flatten(data))
    return Entry(
        row["chat_id"],
        row["id_message"],
        "outgoing",
        type_message,
        row["created_at"],
        row["id"],
        body=body,
        sender=own_wid,
        quoted_id=quoted_id,
        changed=row.get("changed", True),
    )


def journal_entries(
    found: Iterable[Sequence[Any]],
    candidates: Callable[[], QuerySet[JournalMessage]],
    *,
    own_wid: str,
    merged: bool = False,
    flagged: bool = False,
) -> list[Entry]:
    """Entries of journal rows read as STORED_FIELDS tuples, followed by the
    timestamp if ``merged`` (the entries will be merged with API-sent ones) and by
    whether a change points at the row if ``flagged``. Rows stored without their
    object are rendered with one more query, over ``candidates()``: rows of the same
    filter that include them (a chat, a time window, one message), so that no list
    of ids is sent however many there are."""
    entries: list[Entry] = []
    unrendered: list[Entry] = []
    for row in found:
        pk, direction, chat_id, id_message, type_message, stored, version = row[:7]
        entry = Entry(chat_id, id_message, direction, type_message, row[7] if merged else None, pk)
        if flagged:
            entry.changed = bool(row[-1])
        if version == JOURNAL_JSON_VERSION and stored:
            entry.stored = stored
        else:
            unrendered.append(entry)
        entries.append(entry)
    if unrendered:
        _render(candidates(), unrendered, own_wid=own_wid)
    return entries


def _render(candidates: QuerySet[JournalMessage], unrendered: Sequence[Entry], *, own_wid: str) -> None:
    """Render the entries whose rows store no object from their full columns. A row
    deleted in the meantime keeps no body and is left out of the answer."""
    missing = candidates.exclude(journal_json_version=JOURNAL_JSON_VERSION)
    moments = [e.moment for e in unrendered if e.moment is not None]
    if moments:
        # Everything newer than the oldest of them is on the page already.
        missing = missing.filter(timestamp__gte=min(moments))
    wanted = {entry.rank: entry for entry in unrendered}
    for row in missing.values(*JOURNAL_FIELDS):
        entry = wanted.get(row["id"])
        if entry is not None:
            entry.body = journal_entry(row, own_wid=own_wid).body


def _quoted_object(entry: Entry) -> dict[str, Any]:
    """The ``quotedMessage`` object of a reply to ``entry`` (API.md §10.4)."""
    body = entry.object()
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


Changes = dict[tuple[str, str], list[MessageChange]]


def _grouped(rows: QuerySet[MessageChange]) -> Changes:
    found: Changes = {}
    for change in rows.order_by("timestamp", "id"):
        found.setdefault((change.chat_id, change.id_message), []).append(change)
    return found


def _changes_of(instance_id: int, entries: Sequence[Entry]) -> Changes:
    """Changes of the entries' messages that may have some (one query, none when
    no entry may have any)."""
    entries = [entry for entry in entries if entry.changed]
    if not entries:
        return {}
    return _grouped(
        MessageChange.objects.filter(
            instance_id=instance_id,
            chat_id__in={e.chat_id for e in entries},
            id_message__in={e.id_message for e in entries},
        )
    )


def _changes_since(instance_id: int, since: datetime) -> Changes:
    """Changes of the messages of a time window: the instance's changes from its
    start on (a change never predates its message), which spares a long IN list."""
    return _grouped(MessageChange.objects.filter(instance_id=instance_id, timestamp__gte=since))


def _apply(body: dict[str, Any], changes: Sequence[MessageChange]) -> None:
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


def _hidden(changes: Sequence[MessageChange]) -> bool:
    return any(c.kind == ChangeKind.HIDDEN for c in changes)


def _attach_quotes(instance: Instance, entries: list[Entry]) -> None:
    """Replies sent through the API carry the object of the message they quote,
    looked up in one query per table (only when the page has such replies)."""
    wanted = {(e.chat_id, e.quoted_id) for e in entries if e.quoted_id and "quotedMessage" not in e.object()}
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
        if not entry.quoted_id or "quotedMessage" in entry.object():
            continue
        quoted = known.get((entry.chat_id, entry.quoted_id))
        body = entry.object()
        participant = quoted.sender if quoted else ""
        if body["typeMessage"] == "quotedMessage":
            body["extendedTextMessage"] = {
                "text": body.get("textMessage", ""),
                "stanzaId": entry.quoted_id,
                "participant": participant,
            }
        body["quotedMessage"] = (
            _quoted_object(quoted) if quoted else {"stanzaId": entry.quoted_id, "participant": participant}
        )


def _encoded(entry: Entry, changes: Changes) -> str | None:
    """The entry's object, encoded with ``type`` first, with its changes applied;
    None when it is hidden (deleted for this instance only) or its row is gone."""
    if entry.body is None and not entry.stored:
        return None  # stored no object and was deleted before it could be rendered
    mine = changes.get((entry.chat_id, entry.id_message), [])
    if mine and _hidden(mine):
        return None
    if entry.body is None and not mine and entry.type_message != "pollMessage":
        # The common case, and the reason objects are stored: nothing to apply.
        return with_type(entry.direction, entry.stored)
    body = entry.object()
    _apply(body, mine)
    return encode(body)


def _finish(instance: Instance, entries: list[Entry], changes: Changes) -> list[str]:
    """The entries' objects, encoded, with changes applied and hidden ones left out."""
    _attach_quotes(instance, entries)
    found = (_encoded(entry, changes) for entry in entries)
    return [item for item in found if item is not None]


def _window(
    instance: Instance,
    found: Iterable[Sequence[Any]],
    candidates: Callable[[], QuerySet[JournalMessage]],
    changes: Changes,
) -> list[str]:
    """The objects of a time window's journal rows (STORED_FIELDS tuples), in their
    order, each with ``type`` first (GREEN-API's field tables for the last*Messages
    methods list it, and the SDKs read it).

    This loop is lastIncomingMessages' hot path: a busy instance receives thousands
    of messages a day, and GREEN-API returns them all. A row that stores its object
    and has nothing to apply costs a comparison and an append; the others become
    entries rendered as everywhere else, and take their places afterwards."""
    out: list[str] = []
    others: list[tuple[int, Entry]] = []
    for pk, direction, chat_id, id_message, type_message, stored, version in found:
        if (
            version == JOURNAL_JSON_VERSION
            and stored
            and type_message != "pollMessage"
            and (not changes or (chat_id, id_message) not in changes)
        ):
            out.append(with_type(direction, stored))
            continue
        entry = Entry(chat_id, id_message, direction, type_message, None, pk)
        if version == JOURNAL_JSON_VERSION and stored:
            entry.stored = stored
        others.append((len(out), entry))
        out.append("")
    if not others:
        return out
    unrendered = [entry for _, entry in others if not entry.stored]
    if unrendered:
        _render(candidates(), unrendered, own_wid=instance.wid)
    for place, entry in others:
        out[place] = _encoded(entry, changes) or ""
    return [item for item in out if item]


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


def chat_history(instance: Instance, *, chat_id: str, count: int = DEFAULT_COUNT) -> bytes:
    """getChatHistory: the chat's last ``count`` messages, newest first (a JSON array).
    Its two reads are history_sql's (the ORM costs more than the queries here)."""
    journal = journal_entries(
        history_sql.chat_journal_rows(instance.pk, chat_id, count),
        lambda: JournalMessage.objects.filter(instance_id=instance.pk, chat_id=chat_id),
        own_wid=instance.wid,
        merged=True,
        flagged=True,
    )
    # API-sent messages older than a full page of the journal cannot be on it.
    since = journal[-1].moment if len(journal) == count else None
    sent = history_sql.chat_sent_rows(instance.pk, chat_id, count, since)
    entries = _newest_first(journal, (outgoing_entry(row, own_wid=instance.wid) for row in sent))[:count]
    return encode_array(_finish(instance, entries, _changes_of(instance.pk, entries)))


def get_message(instance: Instance, *, chat_id: str, id_message: str) -> bytes | None:
    """getMessage: one message of the chat (a JSON object), or None."""
    key = {"instance_id": instance.pk, "chat_id": chat_id, "id_message": id_message}
    rows = JournalMessage.objects.filter(**key)
    entries = journal_entries(rows.values_list(*STORED_FIELDS)[:1], lambda: rows, own_wid=instance.wid)
    if not entries:
        sent = OutgoingMessage.objects.filter(**key).values(*OUTGOING_FIELDS).first()
        if sent is None:
            return None
        entries = [outgoing_entry(sent, own_wid=instance.wid)]
    found = _finish(instance, entries, _changes_of(instance.pk, entries))
    return found[0].encode() if found else None


# A window longer than this reaches back before any journal: "everything". Larger
# values would overflow timedelta and datetime (a 500 before).
MAX_WINDOW = timedelta(days=365 * 1000)


def _since(minutes: int) -> datetime:
    window = MAX_WINDOW if minutes > MAX_WINDOW.total_seconds() // 60 else timedelta(minutes=minutes)
    return timezone.now() - window


def last_incoming_messages(instance: Instance, *, minutes: int = DEFAULT_MINUTES) -> bytes:
    """lastIncomingMessages: every message received in the last ``minutes``, newest
    first (a JSON array). GREEN-API sets no limit on the count, nor do we. The
    window's read is history_sql's: aggregated by PostgreSQL (``_aggregated``),
    row by row elsewhere."""
    since = _since(minutes)
    if connection.vendor == "postgresql":
        return _aggregated(instance, Direction.INCOMING.value, since)
    return incoming_by_rows(instance, since)


def incoming_by_rows(instance: Instance, since: datetime) -> bytes:
    """lastIncomingMessages' answer read row by row (SQLite; on PostgreSQL the
    reference the aggregated read is tested against)."""
    changes = _changes_since(instance.pk, since)
    found = history_sql.window_rows(instance.pk, Direction.INCOMING.value, since)

    def candidates() -> QuerySet[JournalMessage]:
        return JournalMessage.objects.filter(instance_id=instance.pk, direction=Direction.INCOMING, timestamp__gte=since)

    return encode_array(_window(instance, found, candidates, changes))


def _sent_since(instance: Instance, since: datetime) -> QuerySet[OutgoingMessage]:
    return _not_hidden(OutgoingMessage.objects.filter(instance_id=instance.pk, created_at__gte=since)).order_by(
        "-created_at", "-id"
    )


def last_outgoing_messages(instance: Instance, *, minutes: int = DEFAULT_MINUTES) -> bytes:
    """lastOutgoingMessages: messages sent (through the API or from the phone) in
    the last ``minutes``, newest first (a JSON array)."""
    since = _since(minutes)
    if connection.vendor == "postgresql":
        return _aggregated(instance, Direction.OUTGOING.value, since)
    return outgoing_by_rows(instance, since)


def outgoing_by_rows(instance: Instance, since: datetime) -> bytes:
    """lastOutgoingMessages' answer read row by row (as ``incoming_by_rows``)."""
    typed = _listed(
        JournalMessage.objects.filter(instance_id=instance.pk, direction=Direction.OUTGOING, timestamp__gte=since)
    ).order_by("-timestamp", "-id")
    entries = _newest_first(
        (outgoing_entry(row, own_wid=instance.wid) for row in _sent_since(instance, since).values(*OUTGOING_FIELDS)),
        journal_entries(typed.values_list(*STORED_FIELDS, "timestamp"), lambda: typed, own_wid=instance.wid, merged=True),
    )
    changes = _changes_since(instance.pk, since) if entries else {}
    return encode_array(_finish(instance, entries, changes))


def _aggregated(instance: Instance, direction: str, since: datetime) -> bytes:
    """The last*Messages answer from the window PostgreSQL joins into one value
    (history_sql.window_json): the same bytes as the row-by-row path above.

    A window of stored objects only (the common case) becomes the answer with one
    split and join that put ``type`` first in every object; each marked piece is
    replaced by its row rendered here, or dropped if hidden or gone."""
    changes = _changes_since(instance.pk, since)
    text = history_sql.window_json(instance.pk, direction, since, changed=bool(changes))
    if not text:
        return b"[]"
    prefix = type_prefix(direction).encode()
    sep, mark = ITEM_SEP.encode(), MARK.encode()
    if mark not in text:
        # Every piece is a stored object "{...}", and ITEM_SEP occurs only between
        # them: splitting at ITEM_SEP + "{" drops every object's brace but the
        # first's, and joining with "," + prefix puts "type" first in each. (Split
        # and join cost less CPU than bytes.replace here: 2.0 against 3.3 ms on
        # bench/history.py's 8 500 objects; one join copies the megabytes once.)
        pieces = text.split(sep + b"{")
        pieces[0] = pieces[0][1:]
        return b"".join((b"[", prefix, (b"," + prefix).join(pieces), b"]"))
    rendered = _render_marked(instance, direction, since, changes)
    items = (
        prefix + piece[1:] if piece[:1] == b"{" else rendered.get(piece[1:].decode(), "").encode()
        for piece in text.split(sep)
    )
    return b"[" + b",".join(item for item in items if item) + b"]"


def _render_marked(instance: Instance, direction: str, since: datetime, changes: Changes) -> dict[str, str]:
    """The window's marked rows, encoded, by their key in the aggregate ("j" + id of
    a journal row, "o" + id of an API-sent message); "" for a hidden one."""
    rendered: dict[str, str] = {}
    for row in history_sql.marked_journal_rows(instance.pk, direction, since, changed=bool(changes)):
        pk, direction_, chat_id, id_message, type_message, stored, version = row[:7]
        entry = Entry(chat_id, id_message, direction_, type_message, None, pk)
        if version == JOURNAL_JSON_VERSION and stored:
            entry.stored = stored
        else:
            names = ("sender", "sender_name", "sender_contact_name", "message_data", "timestamp")
            full = dict(zip(STORED_FIELDS, row[:7], strict=True)) | dict(zip(names, row[7:], strict=True))
            entry.body = journal_entry(full, own_wid=instance.wid).body
        rendered[f"j{pk}"] = _encoded(entry, changes) or ""
    if direction == Direction.OUTGOING:
        sent = [outgoing_entry(row, own_wid=instance.wid) for row in _sent_since(instance, since).values(*OUTGOING_FIELDS)]
        _attach_quotes(instance, sent)
        for entry in sent:
            rendered[f"o{entry.rank}"] = _encoded(entry, changes) or ""
    return rendered


def _call_entry(call: Call) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": call.direction,
        "idMessage": call.id_call,
        "timestamp": timestamp(call.timestamp),
        "typeMessage": "incomingCall" if call.direction == Direction.INCOMING else "outgoingCall",
        "chatId": call.chat_id,
    }
    if call.duration is not None:
        # Relay adds the talk time to incoming entries too (an additive field).
        body["duration"] = call.duration
    elif call.direction == Direction.OUTGOING:
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
