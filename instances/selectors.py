"""Shared reads for instances (no writes here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis
from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from engines import registry as engine_registry
from engines.registry import SessionHealth
from instances.models import Instance, InstanceStateChange, SessionLease, State


def instance_state_counts() -> dict[str, int]:
    """Live (not deleted) instances per state; every state is present, zero included,
    so a Prometheus series never disappears when its count drops to zero."""
    counts = dict.fromkeys(State.values, 0)
    rows = Instance.objects.filter(is_deleted=False).values("state").annotate(n=Count("id"))
    for row in rows.order_by():
        counts[row["state"]] = row["n"]
    return counts


def live_lease_count() -> int:
    return SessionLease.objects.exclude(runner_id="").filter(expires_at__gte=timezone.now()).count()


@dataclass(frozen=True)
class SessionReport:
    """What Relay knows about an instance's session (``getSessionHealth``, the
    cabinet). ``leased``: a runner holds the instance's lease now (None for engines
    without live sessions); ``health``: the engine's own report (None for engines
    that keep none)."""

    engine: str
    state: str
    leased: bool | None
    health: SessionHealth | None


def session_report(instance: Instance, now: datetime) -> SessionReport:
    leased = None
    known = instance.engine in engine_registry.names()  # a row may name a removed engine
    if known and engine_registry.spec(instance.engine).session is not None:
        leased = (
            SessionLease.objects.filter(instance_id=instance.pk, expires_at__gte=now)
            .exclude(runner_id="")
            .exists()
        )
    return SessionReport(
        engine=instance.engine,
        state=instance.state,
        leased=leased,
        health=engine_registry.session_health(instance, now),
    )


# kombu's Redis transport keeps one list per priority step: the queue's own name
# for 0, then "<queue>\x06\x16<step>" (its default separator and steps).
BROKER_PRIORITY_STEPS = (0, 3, 6, 9)


def _broker_queue_length(client: redis.Redis, queue: str) -> int:
    pipe = client.pipeline(transaction=False)
    for step in BROKER_PRIORITY_STEPS:
        pipe.llen(f"{queue}\x06\x16{step}" if step else queue)
    return sum(int(n) for n in pipe.execute())


def queue_depths() -> list[tuple[str, str, int]]:
    """(metric name, help, value) of Celery's broker queue in Redis. The send queue
    and the notification queue live in SQL; their apps add their gauges
    (``instances.metrics.add_queue_gauge``)."""
    depths: list[tuple[str, str, int]] = []
    if settings.REDIS_URL:
        try:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)
            depths.append(
                (
                    "relay_broker_queue_length",
                    "Celery tasks waiting in the broker's default queue.",
                    _broker_queue_length(client, settings.CELERY_TASK_DEFAULT_QUEUE),
                )
            )
        except redis.RedisError:
            pass  # the gauge is simply absent while Redis is down
    return depths


def state_history(instance: Instance, count: int | None) -> list[InstanceStateChange]:
    rows = InstanceStateChange.objects.filter(instance=instance).order_by("-created_at", "-id")
    return list(rows[:count] if count else rows[:1000])
