"""``bulk_create`` for the hot paths, with server-side parameter binding on PostgreSQL.

Django talks to PostgreSQL with client-side binding: every value of a bulk INSERT
is quoted into the SQL text in Python (for many rows Django 5.2 sends each column
as one array literal). In the send drain that quoting was a fifth of the worker's
CPU, and one big multi-row statement instead costs as much again in psycopg's
placeholder parsing (it caches only short statements). Here the rows go through
one short INSERT, prepared once, executed per row in a single pipelined round trip
(psycopg ``executemany``), its values bound as parameters that psycopg encodes in C.

Values are prepared exactly as ``bulk_create`` prepares them (``pre_save`` and
``get_db_prep_save``); primary keys come back with ``RETURNING``; the statement runs
on Django's connection, so it is part of the caller's transaction, and it is logged
where Django logs queries (``CaptureQueriesContext``, DEBUG). Other databases use
``bulk_create`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import psycopg
from django.db import connection, models


def insert_rows(model: type[models.Model], objs: Sequence[models.Model], *, ignore_conflicts: bool = False) -> None:
    """Insert ``objs`` (new rows of ``model``); without ``ignore_conflicts`` their
    primary keys are set afterwards, like ``bulk_create``'s."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    fields = [f for f in meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    returning = not ignore_conflicts
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else f" RETURNING {connection.ops.quote_name(str(pk.column))}"
    sql = f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) VALUES ({marks}){tail}"
    rows = [[field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields] for obj in objs]
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)  # server-side binding, unlike Django's own cursors
    try:
        if connection.queries_logged:
            with connection.make_debug_cursor(cast(Any, raw)).debug_sql(sql, rows, many=True):
                raw.executemany(sql, rows, returning=returning)
        else:
            raw.executemany(sql, rows, returning=returning)
        if returning:
            for obj in objs:
                (value,) = cast(tuple[Any], raw.fetchone())
                setattr(obj, pk.attname, value)
                # What bulk_create does: the objects are now saved rows.
                obj._state.adding = False  # noqa: SLF001
                obj._state.db = connection.alias  # noqa: SLF001
                raw.nextset()
    finally:
        raw.close()
