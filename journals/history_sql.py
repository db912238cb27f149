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

from journals.chats import CHANGE_TYPES
from journals.models import ChangeKind, JournalMessage, MessageChange
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
