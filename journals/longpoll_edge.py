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
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.utils import timezone

from instances import ratelimit, registry, wakeups
from instances.http import TooManyRequests, authenticate_instance_async, validate
from journals.api import DEFAULT_TIMEOUT, ReceiveQuery, _shared_head

SPEC = registry.BY_NAME["receiveNotification"]
HEAD_SQL = (
    "SELECT receipt_id, body FROM journals_notification"
    " WHERE instance_id = %s AND state = 'queued' AND created_at >= %s"
    " ORDER BY receipt_id LIMIT 1"
)


async def receive_notification(pool: Any, scope: dict[str, Any], instance_id: int, token: str) -> tuple[int, bytes]:
    """(status, JSON body) of one long-poll; raises WireError for error answers."""
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    options = validate(ReceiveQuery, query)
    async with pool.connection() as conn:
        stored_settings = await authenticate_instance_async(conn, instance_id, token)
    if not await ratelimit.allow_async(instance_id, SPEC):
        raise TooManyRequests()
    timeout = float(options.get("receiveTimeout", DEFAULT_TIMEOUT))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if stored_settings.get("webhookUrl"):
        await asyncio.sleep(timeout)  # webhook delivery owns the queue (API.md §10.1)
        return 200, b"null"

    async def read_head(instance: int) -> tuple[int, Any] | None:
        cutoff = timezone.now() - timedelta(seconds=settings.NOTIFICATION_RETENTION_SECONDS)
        async with pool.connection() as conn:
            found = await (await conn.execute(HEAD_SQL, (instance, cutoff))).fetchone()
        return (int(found[0]), found[1]) if found else None

    with wakeups.subscribe(instance_id) as subscription:
        asked_at = loop.time()
        while True:
            head = await _shared_head(instance_id, asked_at, read_head)
            remaining = deadline - loop.time()
            if head is not None or remaining <= 0:
                break
            await subscription.wait(remaining)
            asked_at = loop.time()
    if head is None:
        return 200, b"null"
    return 200, json.dumps({"receiptId": head[0], "body": head[1]}).encode()
