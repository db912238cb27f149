"""A minimal pipelined Redis client for one job: running the rate-limit counting
script from the ASGI edge (instances.ratelimit ``count_async``).

redis-py's asyncio client (with hiredis) costs three to five times the CPU per script
call: its pool, retry wrapper and parser are built for every command, and concurrent
callers each take a connection of their own. That is 6-15 % of a fast-lane request's
web CPU (bench/infra_clients.py; docs/performance.md, "Hand-written infrastructure vs
libraries"). This client speaks only what the counter needs: ``EVALSHA`` (``EVAL``
once after a ``NOSCRIPT``) with integer replies, over one connection per event loop on which
concurrent callers pipeline their commands; replies come back in order. Each call
is bounded by ``timeout``: a reply that does not come in time fails every call on
that connection (their order can no longer be trusted) and the next call connects
afresh. Failures raise redis-py's exceptions, so callers keep their one ``except
redis.RedisError``. URLs it does not handle (TLS, Unix sockets) are left to
redis-py (``for_url`` answers None).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from typing import Any

import redis
from redis.connection import parse_url


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.pending: deque[asyncio.Future[Any]] = deque()
        self.buffer = bytearray()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            if not self.pending:
                self.fail(redis.ConnectionError("unexpected reply from Redis"))
                return
            future = self.pending.popleft()
            kind, rest = line[:1], line[1:]
            if future.done():
                continue  # its caller went away (cancelled); the reply is still consumed in order
            if kind == b":":
                future.set_result(int(rest))
            elif kind == b"+":
                future.set_result(rest.decode())
            elif kind == b"-":
                future.set_exception(redis.ResponseError(rest.decode(errors="replace")))
            else:
                # Not a reply the counting script gives: stop trusting this connection.
                future.set_exception(redis.ConnectionError(f"unexpected Redis reply type {kind!r}"))
                self.fail(redis.ConnectionError("unexpected Redis reply type"))
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(redis.ConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def fail(self, error: Exception) -> None:
        self.lost = True
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.abort()


def _command(*parts: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class ScriptClient:
    """Runs one Lua script with integer replies; one instance per event loop."""

    def __init__(self, *, host: str, port: int, db: int, username: str | None, password: str | None,
                 script: str, timeout: float) -> None:
        self.host, self.port, self.db = host, port, db
        self.username, self.password = username, password
        self.script = script
        self.sha = hashlib.sha1(script.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    @classmethod
    def for_url(cls, url: str, *, script: str, timeout: float) -> ScriptClient | None:
        if not url.startswith("redis://"):
            return None
        options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        return cls(
            host=str(options.get("host") or "localhost"),
            port=int(options.get("port") or 6379),
            db=int(options.get("db") or 0),
            username=options.get("username"),
            password=options.get("password"),
            script=script,
            timeout=timeout,
        )

    async def __call__(self, keys: list[str], args: list[Any]) -> int:
        argv = [str(len(keys)), *keys, *(str(a) for a in args)]
        try:
            return int(await self._send(_command("EVALSHA", self.sha, *argv)))
        except redis.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return int(await self._send(_command("EVAL", self.script, *argv)))  # loads it too

    async def _send(self, command: bytes) -> Any:
        return await self._request(await self._connected(), command)

    async def _request(self, protocol: _Protocol, command: bytes) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        protocol.pending.append(future)
        assert protocol.transport is not None
        protocol.transport.write(command)
        timer = loop.call_later(self.timeout, self._expire, protocol, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _expire(self, protocol: _Protocol, future: asyncio.Future[Any]) -> None:
        if not future.done():
            protocol.fail(redis.TimeoutError(f"no reply from Redis within {self.timeout:g} s"))

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.lost:
            return protocol
        if self._connecting is None or self._connecting.done():
            # (A done one is left over when its waiters were all cancelled.)
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> _Protocol:
        """Connect, then AUTH and SELECT before anyone else may write: callers wait
        for this whole handshake, so no command can reach the wrong database."""
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(loop.create_connection(_Protocol, self.host, self.port), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise redis.ConnectionError(f"cannot connect to Redis at {self.host}:{self.port}: {exc}") from exc
        handshake = []
        if self.password:
            handshake.append(
                _command("AUTH", self.username, self.password) if self.username else _command("AUTH", self.password)
            )
        if self.db:
            handshake.append(_command("SELECT", str(self.db)))
        try:
            await asyncio.gather(*(self._request(protocol, command) for command in handshake))
        except redis.RedisError:
            protocol.fail(redis.ConnectionError("Redis handshake failed"))
            raise
        self._protocol = protocol
        return protocol
