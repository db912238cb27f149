"""``bulk_create`` for the hot paths, with server-side parameter binding on PostgreSQL.

Django talks to PostgreSQL with client-side binding: every value of a bulk INSERT
is quoted into the SQL text in Python. In the send drain that quoting was a fifth
of the worker's CPU. A multi-row ``VALUES`` statement with bound parameters costs
as much again in psycopg's placeholder parsing (it caches only short statements),
and one prepared INSERT per row (``executemany``) moved the cost into PostgreSQL.
Here each column travels as one bound array: ``INSERT … SELECT … FROM unnest(…)``,
a statement whose text and parameter count are fixed per model, so psycopg and
PostgreSQL prepare it once, and a batch is one statement and one round trip.

Values are prepared exactly as ``bulk_create`` prepares them (``pre_save`` and
``get_db_prep_save``); rows go in the order given and primary keys come back with
``RETURNING`` in that order; the statement runs on Django's connection, so it is
part of the caller's transaction, and it is logged where Django logs queries
(``CaptureQueriesContext``, DEBUG). Other databases use ``bulk_create`` itself.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import psycopg
from django.conf import settings
from django.db import connection, connections, models

_PLAIN, _MOMENT, _OTHER = "plain", "moment", "other"
_PLAIN_FIELDS = (models.CharField, models.TextField, models.IntegerField, models.BooleanField, models.ForeignKey)
_PLAIN_VALUES = (str, int, bool, type(None))


@functools.cache
def _kind(field: models.Field[Any, Any]) -> str:
    if isinstance(field, models.JSONField):
        return _OTHER
    if isinstance(field, _PLAIN_FIELDS):
        return _PLAIN
    if isinstance(field, models.DateTimeField) and settings.USE_TZ:
        return _MOMENT  # an aware datetime goes to PostgreSQL as it is
    return _OTHER


def db_value(field: models.Field[Any, Any], value: Any, db: Any) -> Any:
    """``field.get_db_prep_save(value, db)``, short-cut for plain values, which are
    their own database value: a str/int/bool/None in a text, integer, boolean or
    foreign-key column, an aware datetime in a datetime column. Django's call chain
    for them cost ~10 % of a sendMessage fast-lane request and of a bulk write.
    JSON and everything else go through the field's own adaptation."""
    kind = _kind(field)
    if (kind is _PLAIN and isinstance(value, _PLAIN_VALUES)) or (
        kind is _MOMENT and isinstance(value, datetime) and value.tzinfo is not None
    ):
        return value
    return field.get_db_prep_save(value, db)


def insert_rows(model: type[models.Model], objs: Sequence[models.Model], *, ignore_conflicts: bool = False) -> None:
    """Insert ``objs`` (new rows of ``model``); without ``ignore_conflicts`` their
    primary keys are set afterwards, like ``bulk_create``'s."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    fields = _insert_fields(model)
    columns: list[list[Any]] = [[field.pre_save(obj, True) for obj in objs] for field in fields]
    keys = _insert(model, fields, columns, returning=not ignore_conflicts)
    pk = model._meta.pk
    assert pk is not None
    for obj, key in zip(objs, keys, strict=False):  # no keys back when conflicts are ignored
        setattr(obj, pk.attname, key)
        # What bulk_create does: the objects are now saved rows.
        obj._state.adding = False  # noqa: SLF001
        obj._state.db = connection.alias  # noqa: SLF001


def insert_values(model: type[models.Model], rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows given as {attname: value} (fields left out take their default),
    without building a model instance per row: for append-only logs written in
    bulk, where nothing reads the new rows' keys back."""
    if not rows:
        return
    fields = _insert_fields(model)
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create([model(**row) for row in rows])
        return
    columns = [
        [row[field.attname] if field.attname in row else field.get_default() for row in rows] for field in fields
    ]
    _insert(model, fields, columns, returning=False)


def _insert_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]


def _insert(
    model: type[models.Model], fields: list[models.Field[Any, Any]], columns: list[list[Any]], *, returning: bool
) -> list[Any]:
    """One INSERT … SELECT FROM unnest(one array per column); returns the new keys
    in row order when ``returning``, else conflicts are ignored."""
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    names = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    # One array per column, each cast to its column's type: the statement text and
    # its parameter count are fixed, so psycopg and PostgreSQL prepare it once.
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    tail = f" RETURNING {connection.ops.quote_name(str(pk.column))}" if returning else " ON CONFLICT DO NOTHING"
    aliases = ", ".join(f"c{index}" for index in range(len(fields)))
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({names})"
        f" SELECT {aliases} FROM unnest({arrays}) WITH ORDINALITY AS v({aliases}, n) ORDER BY n{tail}"
    )
    db = connections[connection.alias]  # the wrapper itself: the proxy costs a lookup per use
    values = [[db_value(field, value, db) for value in column] for field, column in zip(fields, columns, strict=True)]
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)  # server-side binding, unlike Django's own cursors
    try:
        if connection.queries_logged:
            with connection.make_debug_cursor(cast(Any, raw)).debug_sql(sql, values):
                raw.execute(sql, values)
        else:
            raw.execute(sql, values)
        return [key for (key,) in raw.fetchall()] if returning else []
    finally:
        raw.close()
