"""instances.sharedreads: who may join a read in flight, and who must not.

The fetch here is gated by the test, so "sent but not answered yet" is a state the
test holds, not a timing it hopes for; the edge's own behaviour over PostgreSQL is
in test_shared_auth.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from instances.sharedreads import BatchedReads, SharedReads


class GatedPool:
    """One connection at a time, like EdgePool of size 1."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[str]:
        async with self.lock:
            yield "conn"


class Source:
    """The 'database': each fetch is recorded, and answers when the test says."""

    def __init__(self) -> None:
        self.fetches: list[list[int]] = []
        self.version = 1
        self.release = asyncio.Event()

    async def fetch(self, conn: Any, keys: list[int]) -> dict[int, tuple[int, int]]:
        self.fetches.append(sorted(keys))
        seen = self.version  # the snapshot is taken when the query is sent
        await self.release.wait()
        return {key: (key, seen) for key in keys if key != 404}


async def until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0)


def test_callers_join_a_batch_until_it_is_sent_and_not_after() -> None:
    async def scenario() -> None:
        source, pool = Source(), GatedPool()
        reads: BatchedReads[int, tuple[int, int]] = BatchedReads(source.fetch)
        first = [asyncio.create_task(reads.read(pool, key)) for key in (1, 1, 2, 404)]
        await until(lambda: len(source.fetches) == 1)  # sent: a later caller must not join it
        source.version = 2  # "committed" after the first batch was sent
        late = asyncio.create_task(reads.read(pool, 1))
        await until(lambda: reads.waiting() == 1)
        source.release.set()
        assert await asyncio.gather(*first) == [(1, 1), (1, 1), (2, 1), None]
        assert await late == (1, 2)  # its own read, sent after it arrived
        assert source.fetches == [[1, 2, 404], [1]]

    asyncio.run(scenario())


def test_a_woken_waiter_joins_a_sent_read_only_if_it_was_sent_after_the_wake() -> None:
    async def scenario() -> None:
        source, pool = Source(), GatedPool()
        reads: BatchedReads[int, tuple[int, int]] = BatchedReads(source.fetch)
        woken_before = time.monotonic()
        leader = asyncio.create_task(reads.read(pool, 7))
        await until(lambda: len(source.fetches) == 1)
        joiner = asyncio.create_task(reads.read(pool, 7, not_before=woken_before))
        woken_after = time.monotonic()
        own = asyncio.create_task(reads.read(pool, 7, not_before=woken_after))
        await until(lambda: reads.waiting() == 1)  # only ``own`` waits for a new batch
        source.release.set()
        assert await leader == await joiner == (7, 1)
        assert await own == (7, 1)
        assert len(source.fetches) == 2

    asyncio.run(scenario())


def test_an_error_reaches_every_joiner_and_is_not_remembered() -> None:
    async def scenario() -> None:
        calls = 0

        async def fetch(conn: Any, keys: list[int]) -> dict[int, int]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise TimeoutError("no connection")
            return dict.fromkeys(keys, 1)

        reads: BatchedReads[int, int] = BatchedReads(fetch)
        pool = GatedPool()
        results = await asyncio.gather(*(reads.read(pool, 3) for _ in range(5)), return_exceptions=True)
        assert all(isinstance(r, TimeoutError) for r in results)
        assert await reads.read(pool, 3) == 1

    asyncio.run(scenario())


def test_a_caller_that_goes_away_does_not_cancel_the_read_for_the_others() -> None:
    async def scenario() -> None:
        source = Source()
        shared: SharedReads[int] = SharedReads()

        async def run(sent: Any) -> int:
            sent()
            await source.release.wait()
            return 5

        leader = asyncio.create_task(shared.read("k", run))
        await asyncio.sleep(0)
        joiner = asyncio.create_task(shared.read("k", run, not_before=0.0))
        await asyncio.sleep(0)
        leader.cancel()
        source.release.set()
        assert await joiner == 5

    asyncio.run(scenario())
