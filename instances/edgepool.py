"""The ASGI edge's PostgreSQL connections: a small fixed set per event loop.

psycopg_pool's checks, locks and context managers cost more CPU per checkout and
statement: 50-80 µs more under concurrent callers, 8-15 % of a fast-lane request's
web CPU (bench/infra_clients.py; docs/performance.md, "Hand-written infrastructure vs
libraries"). The edge needs much less: a handful of autocommit connections, handed
out in turn, a broken one dropped and replaced on next use. Waiting for a free
connection is bounded (``ACQUIRE_TIMEOUT_SECONDS``), so a stuck database answers an
error, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from psycopg import AsyncConnection, AsyncCursor, pq

ACQUIRE_TIMEOUT_SECONDS = 10.0


class PoolTimeout(Exception):
    """No connection became free in time."""


class EdgePool:
    """Autocommit connections for one event loop (not thread-safe: one loop uses it)."""

    def __init__(self, size: int, connect_kwargs: dict[str, Any]) -> None:
        self.size = max(1, size)
        self._kwargs = dict(connect_kwargs, autocommit=True)
        self._idle: asyncio.Queue[AsyncConnection[Any]] = asyncio.Queue()
        self._open = 0  # connections made and not dropped (idle or handed out)
        self._cursors: dict[int, AsyncCursor[Any]] = {}

    async def acquire(self) -> AsyncConnection[Any]:
        if self._idle.empty() and self._open < self.size:
            self._open += 1
            try:
                return await AsyncConnection.connect(**self._kwargs)
            except BaseException:
                self._open -= 1
                raise
        try:
            return self._idle.get_nowait()
        except asyncio.QueueEmpty:
            pass
        try:
            return await asyncio.wait_for(self._idle.get(), ACQUIRE_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            raise PoolTimeout(f"no database connection free after {ACQUIRE_TIMEOUT_SECONDS:g} s") from exc

    def release(self, conn: AsyncConnection[Any]) -> None:
        """Hand a connection back; one that broke (server restart, a failed
        statement left it in a transaction, a cancelled query) is closed instead,
        and the next ``acquire`` makes a fresh one."""
        if conn.closed or conn.broken or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            self._drop(conn)
            if conn.broken:
                # The server went away (restart, failover): the idle connections
                # made before it are dead too. Drop them all now, so the requests
                # after the recovery get fresh ones instead of each finding a dead
                # one first (that was ~16 s of errors after a PostgreSQL restart).
                self.discard_idle()
            return
        self._idle.put_nowait(conn)

    def discard_idle(self) -> int:
        """Close every idle connection (they are re-made on demand); returns how many."""
        dropped = 0
        while not self._idle.empty():
            self._drop(self._idle.get_nowait())
            dropped += 1
        return dropped

    def _drop(self, conn: AsyncConnection[Any]) -> None:
        self._open -= 1
        self._cursors.pop(id(conn), None)
        if not conn.closed:
            # Close without awaiting: the socket goes with it either way.
            conn.pgconn.finish()

    def cursor(self, conn: AsyncConnection[Any]) -> AsyncCursor[Any]:
        """The connection's one reusable cursor: a cursor per statement (what
        ``conn.execute`` makes) was a few percent of a fast-lane request."""
        cursor = self._cursors.get(id(conn))
        if cursor is None:
            cursor = self._cursors[id(conn)] = conn.cursor()
        return cursor

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        conn = await self.acquire()
        try:
            yield conn
        finally:
            self.release(conn)

    async def close(self) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            self._open -= 1
            self._cursors.pop(id(conn), None)
            await conn.close()
