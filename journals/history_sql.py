"""The SQL of the hot journal reads: getChatHistory's page and lastIncomingMessages'
window (journals.history).

Django's ORM takes longer to build and compile these queries (with their subqueries
for changes and hidden messages) than the database takes to run them: 2-10 ms a
request on a loaded machine, against about a millisecond in PostgreSQL
(bench/history.py). So they are written once here, from the models' table names, in
SQL that PostgreSQL and SQLite both run, and executed on Django's connection: same
transaction, same test database, counted by the query-count tests. Values go in and
out through the adapters Django would use (``adapt_datetimefield_value``; SQLite
hands timestamps back as text).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime
from psycopg.abc import Buffer
from psycopg.adapt import Loader

from journals.chats import CHANGE_TYPES
from journals.models import ChangeKind, Direction, JournalMessage, MessageChange
from journals.rendering import ITEM_SEP, JOURNAL_JSON_VERSION, MARK
from messaging.models import OutgoingMessage

JOURNAL = JournalMessage._meta.db_table
SENT = OutgoingMessage._meta.db_table
CHANGE = MessageChange._meta.db_table
NOT_A_CHANGE = f"type_message NOT IN ({', '.join(['%s'] * len(CHANGE_TYPES))})"


def _has_change(alias: str, kind: str = "") -> str:
    """EXISTS: a MessageChange (of ``kind``, if given) points at row ``alias``."""
    only = " AND c.kind = %s" if kind else ""
    return (
        f"EXISTS (SELECT 1 FROM {CHANGE} c WHERE c.instance_id = {alias}.instance_id"
        f" AND c.chat_id = {alias}.chat_id AND c.id_message = {alias}.id_message{only})"
    )


# Columns of both journal statements, in journals.history.STORED_FIELDS order.
_STORED = "j.id, j.direction, j.chat_id, j.id_message, j.type_message, j.journal_json, j.journal_json_version"

CHAT_JOURNAL_SQL = (
    f"SELECT {_STORED}, j.timestamp, {_has_change('j')} FROM {JOURNAL} j"
    f" WHERE j.instance_id = %s AND j.chat_id = %s AND j.{NOT_A_CHANGE}"
    " ORDER BY j.timestamp DESC, j.id DESC LIMIT %s"
)
WINDOW_SQL = (
    f"SELECT {_STORED} FROM {JOURNAL} j"
    f" WHERE j.instance_id = %s AND j.direction = %s AND j.timestamp >= %s AND j.{NOT_A_CHANGE}"
    " ORDER BY j.timestamp DESC, j.id DESC"
)
_CHAT_SENT = (
    f"SELECT o.id, o.chat_id, o.id_message, o.type_message, o.payload, o.status, o.created_at, {_has_change('o')}"
    f" FROM {SENT} o WHERE o.instance_id = %s AND o.chat_id = %s{{since}}"
    f" AND NOT {_has_change('o', ChangeKind.HIDDEN)}"
    " ORDER BY o.created_at DESC, o.id DESC LIMIT %s"
)
CHAT_SENT_SQL = _CHAT_SENT.format(since="")
CHAT_SENT_SINCE_SQL = _CHAT_SENT.format(since=" AND o.created_at >= %s")


# --- The time windows as one aggregated value (PostgreSQL) ----------------------------
#
# lastIncomingMessages answers a whole day of an instance: 8 496 objects in
# bench/history.py's 10-million-message journal. Read as rows, each costs a protocol
# row, seven Python objects from the driver and a string operation before the join;
# that was about half of the request beside the index scan itself. So on PostgreSQL
# the database joins the stored objects into one text value, in the answer's order,
# and Python puts ``type`` in with one split and join (journals.history). Rows whose
# object must be built or changed on read (no current stored object, polls, rows with
# a MessageChange, API-sent messages) stand in the value as a MARK and their key, and
# are read and rendered as before: only they cost Python work.

# A row whose stored object goes out as is (besides having no MessageChange).
_PLAIN = f"j.journal_json_version = {JOURNAL_JSON_VERSION} AND j.journal_json <> '' AND j.type_message <> 'pollMessage'"
# ... and no change since the window's start (a change never predates its message:
# the changes journals.history reads for the window are these).
_UNCHANGED = (
    f" AND NOT EXISTS (SELECT 1 FROM {CHANGE} c WHERE c.instance_id = j.instance_id"
    " AND c.chat_id = j.chat_id AND c.id_message = j.id_message AND c.timestamp >= %s)"
)
_IN_WINDOW = f"j.instance_id = %s AND j.direction = %s AND j.timestamp >= %s AND j.{NOT_A_CHANGE}"


def _plain(changed: bool) -> str:
    """The condition for a row whose stored object goes out as is (its one
    parameter, the window's start, only when ``changed``)."""
    return _PLAIN + (_UNCHANGED if changed else "")


def _piece(changed: bool) -> str:
    """A journal row's piece of the aggregate: its stored object, or MARK + "j" + id."""
    return f"CASE WHEN {_plain(changed)} THEN j.journal_json ELSE chr({ord(MARK)}) || 'j' || j.id END"


# string_agg takes its rows in the order of the sorted subquery below it: the outer
# query has no join or grouping that could reorder them (PostgreSQL's documented way
# to feed an aggregate in order; a subquery with ORDER BY is never flattened). An
# ORDER BY inside string_agg would sort the wide pieces again: PostgreSQL 15 does not
# use the index order for it.
_AGGREGATE = f"SELECT string_agg(w.piece, chr({ord(ITEM_SEP)})) FROM ({{rows}}) w"
_JOURNAL_PIECES = (
    f"SELECT {{piece}} AS piece FROM {JOURNAL} j WHERE {_IN_WINDOW} ORDER BY j.timestamp DESC, j.id DESC"
)
# lastOutgoingMessages merges the API-sent messages in, newest first; at equal
# timestamps and ids the API-sent one first, as journals.history._newest_first's
# stable sort of (sent, journal) leaves them.
_MERGED_PIECES = (
    f"SELECT {{piece}} AS piece, j.timestamp AS moment, j.id AS rank, 1 AS source FROM {JOURNAL} j"
    f" WHERE {_IN_WINDOW}"
    f" UNION ALL SELECT chr({ord(MARK)}) || 'o' || o.id, o.created_at, o.id, 0 FROM {SENT} o"
    " WHERE o.instance_id = %s AND o.created_at >= %s"
    " ORDER BY moment DESC, rank DESC, source"
)
# The rows the aggregate marked, with the columns to render them from.
_MARKED_JOURNAL = (
    "SELECT j.id, j.direction, j.chat_id, j.id_message, j.type_message, j.journal_json, j.journal_json_version,"
    " j.sender, j.sender_name, j.sender_contact_name, j.message_data, j.timestamp"
    f" FROM {JOURNAL} j WHERE {_IN_WINDOW} AND NOT ({{plain}})"
)


class _TextAsBytes(Loader):
    """Text as the UTF-8 bytes the server sent: the aggregate goes to the wire as
    UTF-8, so decoding it (megabytes, often into a 4-byte-per-character str when an
    emoji is in it) and encoding it again is work for nothing."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def window_json(instance_id: int, direction: str, since: datetime, *, changed: bool) -> bytes:
    """The journal rows of ``direction`` from ``since`` on, newest first, as one text
    value in UTF-8: pieces (see ``_piece``) separated by ITEM_SEP; b"" for none. With
    ``changed`` (the window has MessageChange rows) rows that have one are marked.
    lastOutgoingMessages' window also holds the API-sent messages, marked "o" + id."""
    since_db = _db_datetime(since)
    window = [instance_id, direction, since_db, *CHANGE_TYPES]
    piece = _piece(changed)
    params: list[Any] = [since_db] if changed else []
    if direction == Direction.OUTGOING:
        rows = _MERGED_PIECES.format(piece=piece)
        params += [*window, instance_id, since_db]
    else:
        rows = _JOURNAL_PIECES.format(piece=piece)
        params += window
    with connection.cursor() as cursor:
        # This cursor's own adapters (a copy of the connection's): other reads keep str.
        cursor.cursor.adapters.register_loader("text", _TextAsBytes)
        cursor.execute(_AGGREGATE.format(rows=rows), params)
        row = cursor.fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


def marked_journal_rows(instance_id: int, direction: str, since: datetime, *, changed: bool) -> list[tuple[Any, ...]]:
    """The rows ``window_json`` marked "j" (in no particular order): STORED_FIELDS,
    then sender, sender_name, sender_contact_name, message_data (decoded) and the
    timestamp, so that those without a current stored object render with no
    further query."""
    since_db = _db_datetime(since)
    params: list[Any] = [instance_id, direction, since_db, *CHANGE_TYPES]
    if changed:
        params.append(since_db)
    with connection.cursor() as cursor:
        cursor.execute(_MARKED_JOURNAL.format(plain=_plain(changed)), params)
        rows = cursor.fetchall()
    return [(*row[:10], _json(row[10]), moment(row[11])) for row in rows]


def _db_datetime(moment: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(moment)


def moment(value: Any) -> datetime:
    """A timestamp column's value as an aware datetime (SQLite hands back text)."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(f"not a timestamp: {value!r}")
        value = parsed
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    # Django reads jsonb as text on PostgreSQL, and SQLite stores JSON as text.
    return json.loads(value) if isinstance(value, str | bytes) else value


def chat_journal_rows(instance_id: int, chat_id: str, limit: int) -> list[tuple[Any, ...]]:
    """The chat's newest ``limit`` journal rows (no edits, revokes or votes):
    STORED_FIELDS, then the timestamp and whether a MessageChange points at the row."""
    with connection.cursor() as cursor:
        cursor.execute(CHAT_JOURNAL_SQL, [instance_id, chat_id, *CHANGE_TYPES, limit])
        rows = cursor.fetchall()
    return [(*row[:7], moment(row[7]), bool(row[8])) for row in rows]


def chat_sent_rows(instance_id: int, chat_id: str, limit: int, since: datetime | None) -> list[dict[str, Any]]:
    """The chat's newest ``limit`` messages sent through the API (from ``since`` on,
    if given), not hidden, as the dicts journals.history.outgoing_entry takes."""
    params: list[Any] = [instance_id, chat_id, ChangeKind.HIDDEN.value, limit]
    sql = CHAT_SENT_SQL
    if since is not None:
        sql = CHAT_SENT_SINCE_SQL
        params.insert(2, _db_datetime(since))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    names = ("id", "chat_id", "id_message", "type_message", "payload", "status", "created_at", "changed")
    out = []
    for row in rows:
        found = dict(zip(names, row, strict=True))
        found.update(payload=_json(found["payload"]), created_at=moment(found["created_at"]), changed=bool(found["changed"]))
        out.append(found)
    return out


def window_rows(instance_id: int, direction: str, since: datetime) -> list[tuple[Any, ...]]:
    """The instance's journal rows of ``direction`` from ``since`` on, newest first
    (no edits, revokes or votes), as STORED_FIELDS tuples. Unbounded, like the
    method; rows are tuples straight from the driver."""
    with connection.cursor() as cursor:
        cursor.execute(WINDOW_SQL, [instance_id, direction, _db_datetime(since), *CHANGE_TYPES])
        return cursor.fetchall()
