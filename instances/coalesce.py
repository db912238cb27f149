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
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import cache

import redis
from django.conf import settings

log = logging.getLogger(__name__)

PENDING_TTL_SECONDS = 60

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
