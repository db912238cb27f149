"""The ASGI edge's connection set (messaging/edgepool.py): connections are reused,
a broken one is replaced, and waiting for a free one is bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from instances import edgepool
from instances.edgepool import EdgePool, PoolTimeout

pytestmark = [
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="the edge serves PostgreSQL only"),
    pytest.mark.django_db,
]


def connect_kwargs() -> dict[str, Any]:
    db = connection.settings_dict
    return {"dbname": db["NAME"], "user": db["USER"] or None, "host": db["HOST"] or None, "port": db["PORT"] or None}


def test_connections_are_reused_and_a_broken_one_is_replaced() -> None:
    async def scenario() -> None:
        pool = EdgePool(2, connect_kwargs())
        conn = await pool.acquire()
        pid = conn.pgconn.backend_pid
        pool.release(conn)
        again = await pool.acquire()
        assert again is conn  # reused
        async with await psycopg.AsyncConnection.connect(**connect_kwargs(), autocommit=True) as killer:
            await killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.OperationalError):
            await again.execute("SELECT 1")
        pool.release(again)  # broken: dropped, not handed out again
        fresh = await pool.acquire()
        assert fresh is not again
        assert (await (await fresh.execute("SELECT 1")).fetchone()) == (1,)
        pool.release(fresh)
        await pool.close()

    asyncio.run(scenario())


def test_a_connection_left_in_a_transaction_is_not_reused() -> None:
    async def scenario() -> None:
        pool = EdgePool(1, connect_kwargs())
        conn = await pool.acquire()
        await conn.execute("BEGIN")
        pool.release(conn)
        fresh = await pool.acquire()
        assert fresh is not conn and conn.closed
        pool.release(fresh)
        await pool.close()

    asyncio.run(scenario())


def test_waiting_for_a_free_connection_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edgepool, "ACQUIRE_TIMEOUT_SECONDS", 0.2)

    async def scenario() -> None:
        pool = EdgePool(1, connect_kwargs())
        held = await pool.acquire()
        with pytest.raises(PoolTimeout):
            await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        pool.release(held)  # a waiter gets it as soon as it is back
        assert await waiter is held
        pool.release(held)
        await pool.close()

    asyncio.run(scenario())


def test_each_connection_keeps_one_cursor_and_a_replacement_gets_its_own() -> None:
    async def scenario() -> None:
        pool = EdgePool(1, connect_kwargs())
        conn = await pool.acquire()
        cursor = pool.cursor(conn)
        await cursor.execute("SELECT 1")
        assert pool.cursor(conn) is cursor
        await conn.execute("BEGIN")  # left in a transaction: dropped on release
        pool.release(conn)
        fresh = await pool.acquire()
        other = pool.cursor(fresh)
        assert other is not cursor and other.connection is fresh
        await other.execute("SELECT 2")
        assert await other.fetchone() == (2,)
        pool.release(fresh)
        await pool.close()

    asyncio.run(scenario())


def test_after_a_server_restart_every_idle_connection_goes_at_once() -> None:
    """A restart kills every connection the edge holds. The first request that finds
    a dead one drops the idle rest with it, so the next request gets a fresh
    connection instead of the next dead one (each used to fail once in turn)."""

    async def scenario() -> None:
        pool = EdgePool(3, connect_kwargs())
        held = [await pool.acquire() for _ in range(3)]
        pids = [c.pgconn.backend_pid for c in held]
        for conn in held:
            pool.release(conn)
        async with await psycopg.AsyncConnection.connect(**connect_kwargs(), autocommit=True) as killer:
            await killer.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        first = await pool.acquire()
        with pytest.raises(psycopg.OperationalError):
            await first.execute("SELECT 1")
        pool.release(first)
        assert all(c.closed for c in held)
        second = await pool.acquire()
        assert second not in held
        assert (await (await second.execute("SELECT 1")).fetchone()) == (1,)
        pool.release(second)
        await pool.close()

    asyncio.run(scenario())
