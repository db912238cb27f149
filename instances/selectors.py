"""Shared reads for instances (no writes here)."""

from __future__ import annotations

from django.db.models import Count
from django.utils import timezone

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


def queue_depths() -> list[tuple[str, str, int]]:
    """(metric name, help, value) for every queue the product keeps in SQL. Apps add
    their queues here as they land (send queue, notifications, webhook deliveries)."""
    return []


def state_history(instance: Instance, count: int | None) -> list[InstanceStateChange]:
    rows = InstanceStateChange.objects.filter(instance=instance).order_by("-created_at", "-id")
    return list(rows[:count] if count else rows[:1000])
