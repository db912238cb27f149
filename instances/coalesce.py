"""Coalesced wake-ups: at most one immediate task per (kind, instance) waiting in the
broker.

Every commit that gives a worker something to do (a queued message, a notification
to deliver) asks for a task. Under load that is one broker publish per request, and
a publish costs more CPU than the request's own INSERT. A task that has not started
yet will see every row committed before it starts, so while one is waiting further
immediate requests can be dropped: the task clears its mark *before* it reads its
queue, so a row committed after the clear asks again and gets a new task.

The mark expires by itself (``PENDING_TTL_SECONDS``), so a task lost with its broker
costs a delay, never the work: beat jobs re-wake anything left (and publish without
coalescing). Without Redis (the embedded default) nothing is coalesced.

The send drain goes one step further (``offer`` / ``take`` / ``keep_leading``): ids
wait in one Redis set per kind, and one *leader* task at a time takes them in sweeps.
Under load a per-instance mark still let every few requests start a task that swept
one or two instances; with a leader, each sweep takes every instance that became
ready while the previous sweep ran, so its fixed cost (locks, reads, one status
transaction, the task itself) is shared by many more messages.

Paced sends (``delaySendMessagesMilliseconds``, 500 ms at least) make every
instance ready again a delay after its last message. Those ids wait in a second,
timed set (``offer_later``): the leader's ``take`` also pops the ones that are due,
so a paced message goes out in the next shared sweep instead of in a delayed task
of its own (one broker publish, one task and one single-instance sweep per paced
message was most of the worker's CPU per message under send load).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from functools import cache
from typing import Any

import redis
from django.conf import settings

log = logging.getLogger(__name__)

PENDING_TTL_SECONDS = 60
# A leader refreshes its mark on every take; if its worker dies, the mark lapses
# after this long and the next offer starts a new leader (beat is the net meanwhile).
LEADER_TTL_SECONDS = 10

# The leader counter (begin_leading) outlives any leader's run by far; it only
# expires so that a queue name no longer used leaves nothing behind.
EPOCH_TTL_SECONDS = 24 * 3600

# Waits up to this long go to the timed set (the leader stays to take them); longer
# ones (a file's interval, a closed sending window, retries) are delayed tasks.
LATER_MAX_SECONDS = 5.0

# Atomic: a producer's SADD (or ZADD) either lands before this runs (the leader sees
# it and keeps leading) or after (the mark is gone, so the producer's SET NX succeeds
# and it starts a leader). No id is ever left in a set without a leader to take it.
KEEP_LEADING_SCRIPT = """
if redis.call('SCARD', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[3]) > 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  return 1
end
redis.call('DEL', KEYS[2])
return 0
"""

# The leader's take: up to ARGV[1] ready ids (none for 0: a leader still holding a
# full sweep's worth takes only the due timed ids and refreshes its mark), every timed id due by ARGV[2], and the
# mark refreshed, in one round trip. Atomic, so two leaders never pop one id twice.
TAKE_SCRIPT = """
local ready = {}
if tonumber(ARGV[1]) > 0 then
  ready = redis.call('SPOP', KEYS[1], ARGV[1])
end
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
if #due > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[2])
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
for _, id in ipairs(due) do
  table.insert(ready, id)
end
return ready
"""

@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _key(kind: str, instance_id: int) -> str:
    # Per broker queue: deployments (and parallel test workers) sharing one Redis
    # with different queues never swallow each other's wake-ups.
    return f"relay:wake:{settings.CELERY_TASK_DEFAULT_QUEUE}:{kind}:{instance_id}"


def mark_pending(kind: str, instance_ids: Iterable[int]) -> list[int]:
    """The ids that need a task now (their mark was not set; it is set now). One
    Redis round trip for the lot. Without Redis, or if Redis fails, all of them: a
    duplicate task is harmless, a missing one is not."""
    ids = list(dict.fromkeys(instance_ids))
    if not settings.REDIS_URL or not ids:
        return ids
    try:
        pipe = _redis().pipeline(transaction=False)
        for instance_id in ids:
            pipe.set(_key(kind, instance_id), b"1", nx=True, ex=PENDING_TTL_SECONDS)
        return [instance_id for instance_id, fresh in zip(ids, pipe.execute(), strict=True) if fresh]
    except redis.RedisError:
        return ids


def clear_pending(kind: str, instance_ids: Iterable[int]) -> None:
    """Called by the task before it reads its queue (see the module docstring)."""
    keys = [_key(kind, instance_id) for instance_id in instance_ids]
    if not settings.REDIS_URL or not keys:
        return
    try:
        _redis().delete(*keys)
    except redis.RedisError:
        log.debug("could not clear %s wake marks", kind, exc_info=True)


def _ready_key(kind: str) -> str:
    return f"relay:wake:{settings.CELERY_TASK_DEFAULT_QUEUE}:{kind}:ready"


def _leader_key(kind: str) -> str:
    return f"relay:wake:{settings.CELERY_TASK_DEFAULT_QUEUE}:{kind}:leader"


def _later_key(kind: str) -> str:
    return f"relay:wake:{settings.CELERY_TASK_DEFAULT_QUEUE}:{kind}:later"


def offer_later(kind: str, due: dict[int, float]) -> bool | None:
    """``offer`` for ids that are ready at a given time (``time.time()`` seconds):
    they join the timed set (an id already there keeps the earlier time) and the
    leader's ``take`` pops them once due. Same answers as ``offer``."""
    if not due:
        return False
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.zadd(_later_key(kind), {str(i): at for i, at in due.items()}, lt=True)
        pipe.set(_leader_key(kind), b"1", nx=True, ex=LEADER_TTL_SECONDS)
        return bool(pipe.execute()[1])
    except redis.RedisError:
        log.warning("could not offer timed %s wake-ups to Redis", kind, exc_info=True)
        return None


def offer(kind: str, instance_ids: Iterable[int]) -> bool | None:
    """Add ids to the kind's ready set (one round trip). True: no leader was running
    and the caller is now to start one (publish the leader task); False: a leader
    will take them; None: Redis failed, the caller must wake the ids itself."""
    ids = list(dict.fromkeys(instance_ids))
    if not ids:
        return False
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.sadd(_ready_key(kind), *ids)
        pipe.set(_leader_key(kind), b"1", nx=True, ex=LEADER_TTL_SECONDS)
        return bool(pipe.execute()[1])
    except redis.RedisError:
        log.warning("could not offer %s wake-ups to Redis", kind, exc_info=True)
        return None


def take(kind: str, count: int) -> list[int]:
    """The leader: pop up to ``count`` ready ids (none when ``count`` <= 0), and every
    timed id that is due (``offer_later``), and refresh its mark. Empty when Redis
    fails (the rows stay queued; beat wakes them)."""
    try:
        client = _redis()
        keys = [_ready_key(kind), _leader_key(kind), _later_key(kind)]
        args = [max(0, count), time.time(), LEADER_TTL_SECONDS]
        popped = _script(client, TAKE_SCRIPT)(keys=keys, args=args) or []
    except redis.RedisError:
        log.warning("could not take %s wake-ups from Redis", kind, exc_info=True)
        return []
    return sorted({int(raw) for raw in popped})


def keep_leading(kind: str) -> bool:
    """The leader found nothing to take: True when ids arrived meanwhile or timed
    ids wait for their time (it keeps the mark and takes them), False when it
    stepped down (see KEEP_LEADING_SCRIPT)."""
    try:
        keys = [_ready_key(kind), _leader_key(kind), _later_key(kind)]
        return bool(_script(_redis(), KEEP_LEADING_SCRIPT)(keys=keys, args=[LEADER_TTL_SECONDS]))
    except redis.RedisError:
        log.warning("could not check %s wake-ups in Redis", kind, exc_info=True)
        return False


def _epoch_key(kind: str) -> str:
    return f"relay:wake:{settings.CELERY_TASK_DEFAULT_QUEUE}:{kind}:epoch"


def begin_leading(kind: str) -> int | None:
    """A leader task starting: count it (one INCR) and return its number, by which
    the leader it succeeds sees that it runs (``leader_epoch``). None when Redis
    failed."""
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.incr(_epoch_key(kind))
        pipe.expire(_epoch_key(kind), EPOCH_TTL_SECONDS)
        return int(pipe.execute()[0])
    except redis.RedisError:
        log.warning("could not count a %s leader in Redis", kind, exc_info=True)
        return None


def leader_epoch(kind: str) -> int | None:
    """The number of the latest leader that started (``begin_leading``); None when
    Redis failed or none ever did."""
    try:
        raw = _redis().get(_epoch_key(kind))
    except redis.RedisError:
        log.warning("could not read the %s leader count from Redis", kind, exc_info=True)
        return None
    return None if raw is None else int(raw)


def resign(kind: str) -> None:
    """Drop the leader mark without checking the set: the next offer starts a leader
    (after a failed publish of the leader task)."""
    try:
        _redis().delete(_leader_key(kind))
    except redis.RedisError:
        log.debug("could not drop the %s leader mark", kind, exc_info=True)


@cache
def _script(client: redis.Redis, source: str) -> Any:
    return client.register_script(source)


def give_back(kind: str, instance_ids: Iterable[int]) -> bool:
    """The leader handing over: return ids it took but will not sweep itself (it
    still holds the mark, so its successor takes them). False when Redis failed."""
    ids = list(dict.fromkeys(instance_ids))
    if not ids:
        return True
    try:
        _redis().sadd(_ready_key(kind), *ids)
    except redis.RedisError:
        log.warning("could not give %s wake-ups back to Redis", kind, exc_info=True)
        return False
    return True
