"""The edge's lean Redis script client (instances/rediscount.py): against the real
Redis for counting, and against a scripted fake server for the handshake, lost
connections and a Redis that stops answering."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.conf import settings

from instances.ratelimit import COUNT_SCRIPT
from instances.rediscount import ScriptClient


def real_client(db: int | None = None, script: str = COUNT_SCRIPT) -> ScriptClient:
    if not settings.REDIS_URL or not settings.REDIS_URL.startswith("redis://"):
        pytest.skip("needs Redis (a redis:// REDIS_URL)")
    url = settings.REDIS_URL
    if db is not None:
        url = url.rsplit("/", 1)[0] + f"/{db}" if url.count("/") > 2 else f"{url}/{db}"
    client = ScriptClient.for_url(url, script=script, timeout=2)
    assert client is not None
    return client


def test_concurrent_calls_pipeline_on_one_connection_and_count_exactly() -> None:
    client = real_client()
    key = f"test:rediscount:{uuid.uuid4().hex}"

    async def scenario() -> list[int]:
        return list(await asyncio.gather(*(client([key], [5]) for _ in range(200))))

    counts = asyncio.run(scenario())
    assert sorted(counts) == list(range(1, 201))
    check = redis.Redis.from_url(settings.REDIS_URL)
    assert 0 < check.ttl(key) <= 5
    check.delete(key)


def test_an_unknown_script_is_loaded_by_eval_once() -> None:
    script = COUNT_SCRIPT + f"\n-- {uuid.uuid4().hex}\n"  # a SHA Redis has never seen
    client = real_client(script=script)
    key = f"test:rediscount:{uuid.uuid4().hex}"

    async def scenario() -> list[int]:
        return [await client([key], [5]) for _ in range(3)]

    assert asyncio.run(scenario()) == [1, 2, 3]
    redis.Redis.from_url(settings.REDIS_URL).delete(key)


def test_the_url_s_database_is_selected() -> None:
    client = real_client(db=14)
    key = f"test:rediscount:{uuid.uuid4().hex}"
    asyncio.run(client([key], [5]))
    base = settings.REDIS_URL.rsplit("/", 1)[0] if settings.REDIS_URL.count("/") > 2 else settings.REDIS_URL
    in_14 = redis.Redis.from_url(f"{base}/14")
    assert in_14.get(key) == b"1"
    in_14.delete(key)


def test_tls_and_socket_urls_are_left_to_redis_py() -> None:
    assert ScriptClient.for_url("rediss://example.org:6380/0", script=COUNT_SCRIPT, timeout=1) is None
    assert ScriptClient.for_url("unix:///run/redis.sock", script=COUNT_SCRIPT, timeout=1) is None


# --- A scripted fake Redis --------------------------------------------------------------


class FakeRedis:
    """Records each command; ``answer`` decides the reply (None: never answer)."""

    def __init__(self, answer: Callable[[list[bytes]], bytes | None]) -> None:
        self.answer = answer
        self.commands: list[list[bytes]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                header = await reader.readline()
                if not header:
                    return
                parts = []
                for _ in range(int(header[1:])):
                    size = int((await reader.readline())[1:])
                    parts.append((await reader.readexactly(size + 2))[:-2])
                self.commands.append(parts)
                reply = self.answer(parts)
                if reply == b"CLOSE":
                    writer.close()
                    return
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return


def fake_client(port: int, **kw: Any) -> ScriptClient:
    options: dict[str, Any] = {"host": "127.0.0.1", "port": port, "db": 0, "username": None, "password": None,
                               "script": COUNT_SCRIPT, "timeout": 0.3}
    options.update(kw)
    return ScriptClient(**options)


def test_auth_and_select_go_first_and_nothing_overtakes_them() -> None:
    fake = FakeRedis(lambda parts: b":7\r\n" if parts[0] == b"EVALSHA" else b"+OK\r\n")

    async def scenario() -> list[int]:
        client = fake_client(await fake.start(), db=3, username="relay", password="s3cret")
        return list(await asyncio.gather(*(client(["k"], [2]) for _ in range(3))))

    assert asyncio.run(scenario()) == [7, 7, 7]
    names = [parts[0] for parts in fake.commands]
    assert names[:2] == [b"AUTH", b"SELECT"] and names[2:] == [b"EVALSHA"] * 3
    assert fake.commands[0] == [b"AUTH", b"relay", b"s3cret"] and fake.commands[1] == [b"SELECT", b"3"]
    assert fake.connections == 1


def test_a_silent_redis_times_out_and_the_next_call_reconnects() -> None:
    silent = {"on": True}
    fake = FakeRedis(lambda parts: None if silent["on"] else b":1\r\n")

    async def scenario() -> int:
        client = fake_client(await fake.start())
        started = asyncio.get_running_loop().time()
        with pytest.raises(redis.TimeoutError):
            await client(["k"], [2])
        assert asyncio.get_running_loop().time() - started < 2
        silent["on"] = False
        return await client(["k"], [2])

    assert asyncio.run(scenario()) == 1
    assert fake.connections == 2


def test_a_dropped_connection_fails_its_calls_and_the_next_one_reconnects() -> None:
    drops = {"left": 1}

    def answer(parts: list[bytes]) -> bytes:
        if drops["left"]:
            drops["left"] -= 1
            return b"CLOSE"
        return b":4\r\n"

    fake = FakeRedis(answer)

    async def scenario() -> int:
        client = fake_client(await fake.start())
        with pytest.raises(redis.ConnectionError):
            await client(["k"], [2])
        return await client(["k"], [2])

    assert asyncio.run(scenario()) == 4


def test_a_refused_connection_is_a_redis_error() -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(redis.ConnectionError):
            await fake_client(port)(["k"], [2])

    asyncio.run(scenario())
