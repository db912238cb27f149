"""Concurrent identical reads share one query: a herd of long polls costs one read.

18,000 ``receiveNotification`` long polls connecting at once over 200 instances
(bench/longpoll.py) each made its own auth read through the edge's 8 connections;
the reads queued (FIFO) behind each other while the one event loop was busy taking
the requests in, and thousands waited past the pool's bounded wait
(``instances.edgepool.ACQUIRE_TIMEOUT_SECONDS``) and answered 503. Reads of the
same row that are in flight at once can be one query instead.

Freshness: a caller only joins a read that will see everything committed before
the caller arrived. A read that has not been sent to the database yet qualifies
for every caller (its snapshot is taken after it is sent, so after they arrived);
one already sent only for callers that ask no fresher than ``not_before`` allows.
So a token changed or an instance deleted before a request arrives is seen by
that request's read, shared or not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# The read itself: it calls ``sent()`` right before it sends its query (once it
# holds a connection, or in its worker thread), and returns what the query found.
Run = Callable[[Callable[[], None]], Awaitable[T]]


class _Read(Generic[T]):
    __slots__ = ("sent_at", "task")

    def __init__(self) -> None:
        self.sent_at: float | None = None  # time.monotonic() when the query went out
        self.task: asyncio.Task[T] | None = None


class SharedReads(Generic[T]):
    """Reads keyed by what they read (per event loop: a read's task, and the
    connection it uses, belong to one loop)."""

    def __init__(self) -> None:
        self._reads: dict[tuple[int, Hashable], _Read[T]] = {}

    def in_flight(self) -> int:
        """Reads started and not finished (for tests and diagnostics)."""
        return len(self._reads)

    async def read(self, key: Hashable, run: Run[T], not_before: float | None = None) -> T:
        """What ``run`` finds for ``key``, from a read in flight when one qualifies
        (not sent yet, or sent at or after ``not_before``, a ``time.monotonic()``),
        else from a new one that later callers may join.

        The read runs as its own task: a caller that goes away (cancelled, client
        gone) does not cancel it under the others. Its error (the pool's bounded
        wait, an outage) is every joiner's error."""
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        pending = self._reads.get(slot)
        if pending is not None and pending.task is not None and (
            pending.sent_at is None or (not_before is not None and pending.sent_at >= not_before)
        ):
            return await asyncio.shield(pending.task)
        fresh: _Read[T] = _Read()

        def sent() -> None:
            # May run in a worker thread (the Django path's reads): one attribute
            # write, and a clock that any thread may read.
            fresh.sent_at = time.monotonic()

        async def go() -> T:
            try:
                return await run(sent)
            finally:
                if self._reads.get(slot) is fresh:
                    del self._reads[slot]

        fresh.task = loop.create_task(go())
        # Every caller may have gone (cancelled): retrieve the error here so that
        # asyncio does not log it as never retrieved; the callers still get it.
        fresh.task.add_done_callback(lambda task: task.cancelled() or task.exception())
        self._reads[slot] = fresh
        return await asyncio.shield(fresh.task)


K = TypeVar("K", bound=Hashable)

# fetch(connection, keys) -> what was found per key (keys not found are absent).
Fetch = Callable[[Any, list[K]], Awaitable[Mapping[K, T]]]


class _Batch(Generic[K, T]):
    __slots__ = ("futures", "task")

    def __init__(self) -> None:
        self.futures: dict[K, asyncio.Future[T | None]] = {}
        self.task: asyncio.Task[None] | None = None


class BatchedReads(Generic[K, T]):
    """Reads of many keys answered by one query per connection checkout.

    Sharing per key (``SharedReads``) was not enough under the connect storm: the
    loop was so busy taking requests in that each query cost a few loop turns of
    hundreds of milliseconds, and 200 instances' reads still queued past the bounded
    wait. Here every caller that asks while the batch is waiting for a connection
    (not sent yet, so as fresh as its own read would be) joins it; the batch takes
    one connection and one ``WHERE id = ANY(…)`` query for all of them. At most one
    batch per pool waits for a connection at any time, so the pool's queue stays
    short however many requests arrive.

    A caller with ``not_before`` may also join a read of its key already sent at or
    after that moment (the long poll's wake-up rule, ``journals.api._shared_head``).
    """

    MAX_KEYS = 1000  # one statement's array; a fuller batch starts the next one

    def __init__(self, fetch: Fetch[K, T]) -> None:
        self._fetch = fetch
        self._open: dict[tuple[int, int], _Batch[K, T]] = {}  # (loop, pool): the batch not sent yet
        self._sent: dict[tuple[int, int, K], tuple[float, asyncio.Future[T | None]]] = {}

    def waiting(self) -> int:
        """Keys in batches not sent yet (for tests and diagnostics)."""
        return sum(len(batch.futures) for batch in self._open.values())

    async def read(self, pool: Any, key: K, not_before: float | None = None) -> T | None:
        """What the fetch found for ``key`` (None: nothing). Errors (the pool's bounded
        wait, an outage) are every joiner's."""
        loop = asyncio.get_running_loop()
        where = (id(loop), id(pool))
        if not_before is not None:
            sent = self._sent.get((*where, key))
            if sent is not None and sent[0] >= not_before:
                return await asyncio.shield(sent[1])
        batch = self._open.get(where)
        if batch is None or (key not in batch.futures and len(batch.futures) >= self.MAX_KEYS):
            batch = self._open[where] = _Batch()
            batch.task = loop.create_task(self._run(pool, where, batch))
        future = batch.futures.get(key)
        if future is None:
            future = batch.futures[key] = loop.create_future()
        # shield: a caller that goes away must not cancel the answer under the others.
        return await asyncio.shield(future)

    async def _run(self, pool: Any, where: tuple[int, int], batch: _Batch[K, T]) -> None:
        try:
            async with pool.connection() as conn:
                # Sent from here on: later callers start the next batch.
                if self._open.get(where) is batch:
                    del self._open[where]
                now = time.monotonic()
                for key, future in batch.futures.items():
                    self._sent[(*where, key)] = (now, future)
                found = await self._fetch(conn, list(batch.futures))
        except BaseException as exc:
            if self._open.get(where) is batch:
                del self._open[where]
            for future in batch.futures.values():
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                    future.exception()  # mark retrieved: callers that went away leave no log
                else:
                    future.cancel()  # the task itself was cancelled (loop shutdown)
            if not isinstance(exc, Exception):
                raise
        else:
            for key, future in batch.futures.items():
                if not future.done():
                    future.set_result(found.get(key))
        finally:
            for key, future in batch.futures.items():
                if self._sent.get((*where, key), (0.0, None))[1] is future:
                    del self._sent[(*where, key)]
