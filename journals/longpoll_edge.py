"""receiveNotification at the ASGI edge (PostgreSQL): the same answers as
``journals.api.ReceiveNotification`` without Django's request cycle.

Under load the Django path spends its time in per-request work that runs on one
thread (request_finished, connection bookkeeping); thousands of waiters answering at
once queue behind it. Here a waiter is a coroutine, its two reads go through the
edge's async psycopg pool, and it waits on ``instances.wakeups`` with no connection.
Validation, auth, rate limits, error bodies and the shared head read are the same
code the view uses.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.utils import timezone

from instances import ratelimit, registry, wakeups
from instances.http import TooManyRequests, authenticate_instance_shared, validate
from instances.sharedreads import BatchedReads
from journals.api import DEFAULT_TIMEOUT, ReceiveQuery

SPEC = registry.BY_NAME["receiveNotification"]
# The head notification of many instances in one statement (the same per-instance
# query as services.head_notification, joined laterally).
HEAD_SQL = (
    "SELECT i.id, n.receipt_id, n.body FROM unnest(%s::bigint[]) AS i(id)"
    " CROSS JOIN LATERAL (SELECT receipt_id, body FROM journals_notification"
    " WHERE instance_id = i.id AND state = 'queued' AND created_at >= %s"
    " ORDER BY receipt_id LIMIT 1) AS n"
)


async def _fetch_heads(conn: Any, ids: list[int]) -> dict[int, tuple[int, Any]]:
    cutoff = timezone.now() - timedelta(seconds=settings.NOTIFICATION_RETENTION_SECONDS)
    rows = await (await conn.execute(HEAD_SQL, (ids, cutoff))).fetchall()
    return {int(row[0]): (int(row[1]), row[2]) for row in rows}


# Head reads, batched like the auth reads (instances.sharedreads.BatchedReads): a
# wake-up of N waiters, or a connect storm, costs one statement per connection
# checkout. A waiter joins a batch not sent yet, or a read of its instance sent
# after it arrived or was last woken (``asked_at``): an older one may predate the
# commit it was woken for.
_head_reads: BatchedReads[int, tuple[int, Any]] = BatchedReads(_fetch_heads)


async def receive_notification(pool: Any, scope: dict[str, Any], instance_id: int, token: str) -> tuple[int, bytes]:
    """(status, JSON body) of one long-poll; raises WireError for error answers."""
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    options = validate(ReceiveQuery, query)
    stored_settings = await authenticate_instance_shared(pool, instance_id, token)
    if not await ratelimit.allow_async(instance_id, SPEC):
        raise TooManyRequests()
    timeout = float(options.get("receiveTimeout", DEFAULT_TIMEOUT))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if stored_settings.get("webhookUrl"):
        await asyncio.sleep(timeout)  # webhook delivery owns the queue (API.md §10.1)
        return 200, b"null"

    with wakeups.subscribe(instance_id) as subscription:
        asked_at = time.monotonic()
        while True:
            head = await _head_reads.read(pool, instance_id, asked_at)
            remaining = deadline - loop.time()
            if head is not None or remaining <= 0:
                break
            await subscription.wait(remaining)
            asked_at = time.monotonic()
    if head is None:
        return 200, b"null"
    return 200, json.dumps({"receiptId": head[0], "body": head[1]}).encode()
