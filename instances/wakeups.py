"""Wake long-poll waiters when a notification is committed, without polling the DB.

Producers call ``publish(instance_id)`` on commit (through ``instances.events``).
With Redis, that is one PUBLISH; every web process runs one subscriber task that
wakes its local waiters. Without Redis (the embedded single-machine mode) waiters in
the producing process are woken directly and others re-check once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from functools import cache

import redis
import redis.asyncio as aioredis
from django.conf import settings

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "relay:notify:"
# Without a working subscription (no Redis configured, or Redis away) waiters
# re-check the database this often.
FALLBACK_POLL_SECONDS = 1.0
PING_SECONDS = 5.0
BACKOFF_MIN_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 2.0

_lock = threading.Lock()
_waiters: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
_listener: asyncio.Task[None] | None = None
_listener_loop: asyncio.AbstractEventLoop | None = None
_subscribed = False  # the listener holds a live subscription


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def publish(instance_id: int) -> None:
    """Wake every waiter of ``instance_id`` in every process. Never raises: a lost
    wake-up only delays a waiter until its timeout's final check."""
    wake_local(instance_id)
    if settings.REDIS_URL:
        try:
            _redis().publish(f"{CHANNEL_PREFIX}{instance_id}", b"1")
        except redis.RedisError:
            log.warning("could not publish wake-up for %s", instance_id, exc_info=True)


def publish_many(instance_ids: Sequence[int]) -> None:
    """``publish`` for many instances: one pipelined round trip to Redis instead of
    one per instance (a runner tick commits notifications for hundreds of
    instances at once). Never raises."""
    for instance_id in instance_ids:
        wake_local(instance_id)
    if not settings.REDIS_URL or not instance_ids:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for instance_id in instance_ids:
            pipe.publish(f"{CHANNEL_PREFIX}{instance_id}", b"1")
        pipe.execute()
    except redis.RedisError:
        log.warning("could not publish wake-ups for %s instances", len(instance_ids), exc_info=True)


def wake_local(instance_id: int) -> None:
    with _lock:
        targets = list(_waiters.get(instance_id, ()))
    for loop, event in targets:
        with contextlib.suppress(RuntimeError):  # loop closed
            loop.call_soon_threadsafe(event.set)


async def _listen() -> None:
    """One subscriber per process; reconnects with backoff if Redis goes away.

    While it is not subscribed, publishes are lost: waiters then re-check the
    database every ``FALLBACK_POLL_SECONDS`` (see ``Subscription.wait``), and every
    waiter is woken to re-check once the subscription is back, so a notification
    committed during a Redis outage waits about a second, not a whole receiveTimeout.
    A connection that stops answering (a half-open TCP connection after a network
    failure: no error, no messages) is detected by pinging every ``PING_SECONDS``."""
    global _subscribed
    backoff = BACKOFF_MIN_SECONDS
    loop = asyncio.get_running_loop()
    while True:
        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
        try:
            async with client.pubsub() as pubsub:
                await pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
                _subscribed = True
                backoff = BACKOFF_MIN_SECONDS
                _wake_all()  # commits made while we were away published to nobody
                last_heard = last_ping = loop.time()
                while True:
                    message = await pubsub.get_message(timeout=PING_SECONDS)
                    now = loop.time()
                    if message is not None:
                        last_heard = now
                        if message.get("type") == "pmessage":
                            channel = message["channel"].decode()
                            with contextlib.suppress(ValueError):
                                wake_local(int(channel[len(CHANNEL_PREFIX) :]))
                        continue
                    if now - last_heard > 3 * PING_SECONDS:
                        raise redis.ConnectionError("Redis stopped answering the wake-up subscription")
                    if now - last_ping >= PING_SECONDS:
                        await pubsub.ping()  # answered as a "pong" message
                        last_ping = now
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep listening through Redis restarts
            log.warning("wake-up listener lost Redis; retrying in %.1fs", backoff, exc_info=True)
        finally:
            _subscribed = False
            await client.aclose()
        # Waiters re-check the database now and then poll until we are back.
        _wake_all()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)


def _wake_all() -> None:
    with _lock:
        ids = list(_waiters)
    for instance_id in ids:
        wake_local(instance_id)


def _ensure_listener() -> None:
    global _listener, _listener_loop
    loop = asyncio.get_running_loop()
    if _listener is not None and not _listener.done() and _listener_loop is loop:
        return
    _listener = loop.create_task(_listen())
    _listener_loop = loop


class Subscription:
    """A registered waiter. Register *before* reading the queue, so a commit that lands
    between the read and the wait still wakes it (no lost wake-up)."""

    def __init__(self, instance_id: int) -> None:
        self.instance_id = instance_id
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self._entry = (self.loop, self.event)

    def __enter__(self) -> Subscription:
        if settings.REDIS_URL:
            _ensure_listener()
        with _lock:
            _waiters.setdefault(self.instance_id, set()).add(self._entry)
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            bucket = _waiters.get(self.instance_id)
            if bucket is not None:
                bucket.discard(self._entry)
                if not bucket:
                    del _waiters[self.instance_id]

    async def wait(self, timeout: float) -> bool:
        """Wait until woken (True) or ``timeout``; clears the flag for the next round.
        Without a live subscription (no Redis, or Redis away) it returns after at
        most a second so the caller re-reads the database: other processes cannot
        reach this one then."""
        if timeout <= 0:
            return False
        if not settings.REDIS_URL or not _subscribed:
            timeout = min(timeout, FALLBACK_POLL_SECONDS)
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self.event.clear()


def subscribe(instance_id: int) -> Subscription:
    return Subscription(instance_id)


async def wait(instance_id: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a wake-up for ``instance_id`` (a one-shot
    subscription; prefer ``subscribe`` around a read-then-wait loop)."""
    with subscribe(instance_id) as subscription:
        return await subscription.wait(timeout)


def waiter_count() -> int:
    with _lock:
        return sum(len(v) for v in _waiters.values())
