"""The only module that pushes to listeners (channel layer, long-poll wake-ups). Pushes happen on commit, so a
listener never sees a change that was rolled back. Payloads are TypedDicts.

Consumers re-read the database when woken, so a lost push (in-memory layer across
processes, Redis restart) only delays them by their polling interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from functools import cache, partial
from pathlib import Path
from typing import TypedDict

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from instances import wakeups

log = logging.getLogger(__name__)


class StateChanged(TypedDict):
    type: str  # "state.changed" → consumer method state_changed
    instance_id: int
    state: str


class AccountChanged(TypedDict):
    type: str  # "account.changed" → consumer method account_changed
    account_id: int


class JournalChanged(TypedDict):
    type: str  # "journal.changed" → consumer method journal_changed
    instance_id: int
    topic: str  # one of JOURNAL_TOPICS
    chat_id: str  # the chat concerned ("" when unknown or not a chat)


class CallsChanged(TypedDict):
    type: str  # "calls.changed" → consumer method calls_changed
    instance_id: int


class CallFrame(TypedDict):
    type: str  # "call.frame" → consumer method call_frame
    instance_id: int
    id_call: str
    frame: dict[str, object]  # a callsRtc frame for the client: answer, offer, ice-candidate


# What a journal push is about: the chat view (messages and their statuses), the
# notification queue, the webhook delivery log.
JOURNAL_TOPICS = ("chat", "notifications", "webhooks")


def instance_group(instance_id: int) -> str:
    return f"instance.{instance_id}"


def calls_group(instance_id: int) -> str:
    """callsRtc sockets (and cabinet call panels) of one instance listen here."""
    return f"calls.{instance_id}"


def account_group(account_id: int) -> str:
    """Cabinet pages of one account listen here for instances created, renamed or deleted."""
    return f"account.{account_id}"


def _send(group: str, payload: StateChanged | AccountChanged | JournalChanged | CallsChanged) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, dict(payload))
    except Exception:  # noqa: BLE001 - a push is a hint; the database stays the truth
        log.warning("channel layer push to %s failed", group, exc_info=True)


def state_changed(instance_id: int, state: str) -> None:
    payload = StateChanged(type="state.changed", instance_id=instance_id, state=state)
    transaction.on_commit(lambda: _send(instance_group(instance_id), payload))


def calls_changed(instance_ids: list[int]) -> None:
    """The call state of these instances changed: callsRtc sockets and cabinet pages
    re-read it once committed (they also re-read every second)."""
    for instance_id in instance_ids:
        transaction.on_commit(partial(_send, calls_group(instance_id), CallsChanged(type="calls.changed", instance_id=instance_id)))


async def relay_call_frame(instance_id: int, id_call: str, frame: dict[str, object]) -> None:
    """Hand a signalling frame (offer, answer, ICE candidate) to the callsRtc sockets
    of another instance on this server. Nothing is stored: signalling is live only,
    a frame nobody listens for is lost, as on a real network."""
    layer = get_channel_layer()
    if layer is None:
        return
    payload = CallFrame(type="call.frame", instance_id=instance_id, id_call=id_call, frame=frame)
    await layer.group_send(calls_group(instance_id), dict(payload))


def account_changed(account_id: int) -> None:
    """The account's instance list changed (create, rename, delete): live lists re-read it."""
    payload = AccountChanged(type="account.changed", account_id=account_id)
    transaction.on_commit(lambda: _send(account_group(account_id), payload))


def notification_added(instance_id: int) -> None:
    """Wake receiveNotification waiters (instances.wakeups) once committed."""
    transaction.on_commit(lambda: wakeups.publish(instance_id))


def notifications_added(instance_ids: Sequence[int]) -> None:
    """``notification_added`` for many instances: one pipelined publish on commit."""
    if instance_ids:
        ids = list(instance_ids)
        transaction.on_commit(lambda: wakeups.publish_many(ids))


# --- Who is watching -------------------------------------------------------------------
# A channel-layer push from a worker costs a fresh event loop and Redis connection
# (async_to_sync), about a millisecond: paid per drained batch it was 10-25 % of the
# send drain's and the session runner's CPU. Journal hints only matter while an
# instance page is open, so its socket marks the instance as watched (a Redis key
# with a TTL, refreshed while it stays open) and writers skip hints for instances
# nobody watches. Without Redis (embedded default) the mark is a file in the
# channel layer's spool directory (instances.spool_layer), touched the same way.

WATCH_SECONDS = 60
WATCH_CACHE_SECONDS = 1.0
_watched: dict[int, tuple[float, bool]] = {}


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)


def _watch_key(instance_id: int) -> str:
    return f"relay:watch:{instance_id}"


def _watch_file(instance_id: int) -> Path:
    return Path(settings.LIVE_SPOOL_DIR) / "watch" / str(instance_id)


def watch(instance_id: int) -> None:
    """An instance page is open (its socket calls this on connect and every
    ``WATCH_SECONDS / 3`` while connected)."""
    if not settings.REDIS_URL:
        path = _watch_file(instance_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        except OSError:
            log.debug("could not mark instance %s watched", instance_id, exc_info=True)
        _watched.pop(instance_id, None)
        return
    try:
        _redis().set(_watch_key(instance_id), b"1", ex=WATCH_SECONDS)
    except redis.RedisError:
        log.debug("could not mark instance %s watched", instance_id, exc_info=True)
    _watched.pop(instance_id, None)


def watched(instance_id: int) -> bool:
    """Whether an instance page may be open; asked at most once a second per process
    and instance. When unsure (Redis down), yes."""
    now = time.monotonic()
    seen = _watched.get(instance_id)
    if seen is not None and now - seen[0] < WATCH_CACHE_SECONDS:
        return seen[1]
    if not settings.REDIS_URL:
        try:
            value = time.time() - _watch_file(instance_id).stat().st_mtime < WATCH_SECONDS
        except FileNotFoundError:
            value = False
        except OSError:
            value = True
    else:
        try:
            value = bool(_redis().exists(_watch_key(instance_id)))
        except redis.RedisError:
            value = True
    if len(_watched) > 50_000:
        _watched.clear()
    _watched[instance_id] = (now, value)
    return value


def prime_watched(instance_ids: Iterable[int]) -> None:
    """Ask Redis once whether any of these instances is watched, for those whose
    answer is not cached: a writer about to call ``journal_changed`` for hundreds
    of instances (a runner tick's receipts) pays one round trip, not one each."""
    if not settings.REDIS_URL:
        return  # the spool files are local: watched() stats them cheaply
    now = time.monotonic()
    stale = []
    for instance_id in instance_ids:
        seen = _watched.get(instance_id)
        if seen is None or now - seen[0] >= WATCH_CACHE_SECONDS:
            stale.append(instance_id)
    if not stale:
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for instance_id in stale:
            pipe.exists(_watch_key(instance_id))
        answers = pipe.execute()
    except redis.RedisError:
        return  # watched() asks again (and says yes while Redis is away)
    if len(_watched) > 50_000:
        _watched.clear()
    for instance_id, answer in zip(stale, answers, strict=True):
        _watched[instance_id] = (now, bool(answer))


def journal_changed(instance_id: int, topic: str, chat_id: str = "") -> None:
    """Something a cabinet page lists changed (a message or its status, a
    notification, a webhook attempt): open pages re-read it once committed. A hint
    only: the pages also re-read on a slow timer, so a push lost (or never sent, by
    a bulk write, or skipped because no page was open a moment ago) only delays them."""
    if topic not in JOURNAL_TOPICS:
        raise ValueError(f"unknown journal topic {topic!r}")
    if not watched(instance_id):
        return
    payload = JournalChanged(type="journal.changed", instance_id=instance_id, topic=topic, chat_id=chat_id)
    transaction.on_commit(lambda: _send(instance_group(instance_id), payload))


def webhook_attempts_logged(instance_id: int) -> None:
    """Webhook attempts of the instance were recorded (``journals.webhooks`` logs
    them with bulk_create, which fires no model signal, so the writer calls this)."""
    journal_changed(instance_id, "webhooks")
