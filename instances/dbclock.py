"""The database's clock, for leases and fences.

A lease written by one process and judged by another (a runner's session lease, a
worker's drain lock) must be stamped and compared on one clock, or a process whose
clock runs ahead takes over a live lease (or one behind keeps a dead one). The
database's clock is the one every process shares, so lease times are computed in
SQL: ``now()`` for comparisons, ``now() + interval`` for expiries.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import DateTimeField, ExpressionWrapper, Value
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now


def db_now() -> Now:
    """The database's current time (``STATEMENT_TIMESTAMP()`` on PostgreSQL)."""
    return Now()


def db_in(seconds: float) -> ExpressionWrapper[CombinedExpression]:
    """The database's current time plus ``seconds``."""
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())
