"""Concurrent long polls of one instance share its auth read at the ASGI edge
(instances.http.authenticate_instance_shared, instances.sharedreads).

A connect storm (bench/longpoll.py: 18,000 long polls over 200 instances) made one
auth read per request; thousands queued behind the edge's few connections past the
bounded wait and answered 503. These tests hold the pool's only connection, so
requests pile up exactly as they did under the storm, then let it go."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from instances import edgepool
from instances.edgepool import EdgePool, PoolTimeout
from instances.http import Forbidden, Unauthorized, authenticate_instance_shared
from instances.models import Instance
from journals.longpoll_edge import receive_notification
from tests.factories import make_instance

pytestmark = [
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="the edge serves PostgreSQL only"),
    pytest.mark.django_db(transaction=True),  # the pool's own connections must see the rows
]


def connect_kwargs() -> dict[str, Any]:
    db = connection.settings_dict
    return {"dbname": db["NAME"], "user": db["USER"] or None, "host": db["HOST"] or None, "port": db["PORT"] or None}


class CountingPool(EdgePool):
    """The real pool, counting checkouts: each read the edge makes is one."""

    def __init__(self, size: int) -> None:
        super().__init__(size, connect_kwargs())
        self.checkouts = 0

    async def acquire(self) -> Any:
        conn = await super().acquire()
        self.checkouts += 1
        return conn


async def settled(tasks: list[asyncio.Task[Any]]) -> list[Any]:
    return await asyncio.gather(*tasks, return_exceptions=True)


async def run_loop_once() -> None:
    """Tasks created before this call have run their first step (they join or
    start a read synchronously there): the loop runs ready callbacks in order."""
    await asyncio.sleep(0)


def test_a_herd_of_requests_costs_one_auth_read() -> None:
    one, two = make_instance(authorized=True), make_instance(authorized=True)

    async def scenario() -> None:
        pool = CountingPool(1)
        held = await pool.acquire()  # every request now waits, as under the storm
        tasks = [asyncio.create_task(authenticate_instance_shared(pool, one.id, one.api_token)) for _ in range(50)]
        tasks += [asyncio.create_task(authenticate_instance_shared(pool, one.id, "0" * 50)) for _ in range(5)]
        tasks += [asyncio.create_task(authenticate_instance_shared(pool, two.id, two.api_token)) for _ in range(20)]
        tasks += [asyncio.create_task(authenticate_instance_shared(pool, 10**9, "x"))]
        await run_loop_once()
        pool.release(held)
        results = await settled(tasks)
        assert pool.checkouts == 1 + 1  # the held one, then one read for every instance id
        assert all(isinstance(r, dict) for r in results[:50])
        assert all(isinstance(r, Unauthorized) for r in results[50:55])  # each checks its own token
        assert all(isinstance(r, dict) for r in results[55:75])
        assert isinstance(results[75], Forbidden)
        await pool.close()

    asyncio.run(scenario())


def test_a_token_changed_before_a_request_arrives_refuses_it() -> None:
    instance = make_instance(authorized=True)
    old = instance.api_token

    async def scenario() -> None:
        pool = CountingPool(1)
        held = await pool.acquire()
        before = asyncio.create_task(authenticate_instance_shared(pool, instance.id, old))
        await run_loop_once()  # its read is queued, not sent
        async with await psycopg.AsyncConnection.connect(**connect_kwargs(), autocommit=True) as other:
            await other.execute("UPDATE instances_instance SET api_token = 'rotated-token' WHERE id = %s", (instance.id,))
        after_old = asyncio.create_task(authenticate_instance_shared(pool, instance.id, old))
        after_new = asyncio.create_task(authenticate_instance_shared(pool, instance.id, "rotated-token"))
        await run_loop_once()
        pool.release(held)
        results = await settled([before, after_old, after_new])
        # The shared read went out after the change: the request that arrived after
        # it is refused (and the one before it too: its read is fresher than needed).
        assert isinstance(results[1], Unauthorized)
        assert isinstance(results[0], Unauthorized)
        assert isinstance(results[2], dict)
        assert pool.checkouts == 2
        # Deleted: a request after that is refused.
        async with await psycopg.AsyncConnection.connect(**connect_kwargs(), autocommit=True) as other:
            await other.execute("UPDATE instances_instance SET is_deleted = true WHERE id = %s", (instance.id,))
        with pytest.raises(Forbidden):
            await authenticate_instance_shared(pool, instance.id, "rotated-token")
        await pool.close()

    asyncio.run(scenario())
    assert Instance.objects.filter(pk=instance.pk, is_deleted=True).exists()


def test_a_stuck_pool_still_answers_every_request_with_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounded wait holds for a shared read: every joiner gets the error (a
    503 at the edge), none hangs; the failed read is not remembered."""
    monkeypatch.setattr(edgepool, "ACQUIRE_TIMEOUT_SECONDS", 0.2)
    instance = make_instance(authorized=True)

    async def scenario() -> None:
        pool = CountingPool(1)
        held = await pool.acquire()
        tasks = [asyncio.create_task(authenticate_instance_shared(pool, instance.id, instance.api_token)) for _ in range(30)]
        results = await settled(tasks)
        assert all(isinstance(r, PoolTimeout) for r in results)
        pool.release(held)
        assert isinstance(await authenticate_instance_shared(pool, instance.id, instance.api_token), dict)
        await pool.close()

    asyncio.run(scenario())


def test_long_polls_of_one_instance_share_the_auth_and_the_head_read() -> None:
    """The edge's receiveNotification: N requests arriving while the pool is busy
    cost one auth read and one head read, and every one gets the head."""
    instance = make_instance(authorized=True)
    instance.settings.update({"incomingWebhook": True})
    instance.save(update_fields=["settings"])
    from django.utils import timezone

    from engines.events import MessageEvent
    from journals.services import ingest_event

    note = ingest_event(
        instance,
        MessageEvent(
            direction="incoming", chat_id="79001234567@c.us", id_message="H1", sender="79001234567@c.us",
            sender_name="John", chat_name="John",
            message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": "hi"}},
            timestamp=timezone.now(),
        ),
    )
    assert note is not None
    scope = {"query_string": b"receiveTimeout=5"}

    async def scenario() -> None:
        pool = CountingPool(1)
        held = await pool.acquire()
        tasks = [asyncio.create_task(receive_notification(pool, scope, instance.id, instance.api_token)) for _ in range(40)]
        await run_loop_once()
        pool.release(held)
        results = await settled(tasks)
        assert {r[0] for r in results} == {200}
        assert {r[1] for r in results} == {results[0][1]} and b'"receiptId": %d' % note.receipt_id in results[0][1]
        assert pool.checkouts == 1 + 2  # the held one, one auth read, one head read
        await pool.close()

    asyncio.run(scenario())
