"""Reads for the operator console (``/admin/``): the overview on its front page and the
per-instance diagnosis on an instance's change page.

The dashboard sits on top of every other app, so this is the one place that may read
instances, queues, notifications and webhook attempts together. Every figure is one
aggregate query; nothing here scales with the number of instances or messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from instances.models import Instance, SessionLease
from journals.models import Notification, NotificationState, WebhookAttempt
from messaging.models import OutgoingMessage, OutgoingStatus

WEBHOOK_WINDOW = timedelta(hours=1)
TOP = 10


@dataclass
class Overview:
    by_state: list[Any] = field(default_factory=list)  # rows: engine, state, n
    states: list[str] = field(default_factory=list)
    engines: list[str] = field(default_factory=list)
    matrix: list[tuple[str, list[int], int]] = field(default_factory=list)  # engine, counts per state, total
    queued: int = 0
    sending: int = 0
    deepest_queues: list[Any] = field(default_factory=list)  # instance_id, n, oldest
    webhook_attempts: int = 0
    webhook_failures: int = 0
    failing_webhooks: list[Any] = field(default_factory=list)  # instance_id, failures, last_error
    blocked_notifications: list[Any] = field(default_factory=list)  # instance_id, n, attempts
    runners: list[Any] = field(default_factory=list)  # runner_id, leases, last_heartbeat
    unleased: int = 0

    @property
    def webhook_failure_rate(self) -> float:
        return self.webhook_failures / self.webhook_attempts if self.webhook_attempts else 0.0


def overview() -> Overview:
    """The front page of /admin/: what is running, what is stuck, and where."""
    now = timezone.now()
    result = Overview()
    live = Instance.objects.filter(is_deleted=False)
    result.by_state = list(live.values("engine", "state").annotate(n=Count("id")).order_by("engine", "state"))
    result.states = sorted({row["state"] for row in result.by_state})
    result.engines = sorted({row["engine"] for row in result.by_state})
    counts = {(row["engine"], row["state"]): row["n"] for row in result.by_state}
    for engine in result.engines:
        row = [counts.get((engine, state), 0) for state in result.states]
        result.matrix.append((engine, row, sum(row)))

    pending = OutgoingMessage.objects.filter(status__in=[OutgoingStatus.QUEUED, OutgoingStatus.SENDING])
    totals = pending.aggregate(
        queued=Count("id", filter=Q(status=OutgoingStatus.QUEUED)),
        sending=Count("id", filter=Q(status=OutgoingStatus.SENDING)),
    )
    result.queued, result.sending = totals["queued"], totals["sending"]
    result.deepest_queues = list(
        pending.values("instance_id").annotate(n=Count("id"), oldest=Min("created_at")).order_by("-n")[:TOP]
    )

    recent = WebhookAttempt.objects.filter(started_at__gte=now - WEBHOOK_WINDOW)
    attempts = recent.aggregate(total=Count("id"), failed=Count("id", filter=Q(ok=False)))
    result.webhook_attempts, result.webhook_failures = attempts["total"], attempts["failed"]
    result.failing_webhooks = list(
        recent.filter(ok=False)
        .values("instance_id")
        .annotate(failures=Count("id"), last=Max("started_at"))
        .order_by("-failures")[:TOP]
    )
    # A notification queue is blocked when its head has failed at least once: order is
    # per instance, so nothing behind it moves until it succeeds or gives up.
    result.blocked_notifications = list(
        Notification.objects.filter(state=NotificationState.QUEUED, attempts__gt=0)
        .values("instance_id")
        .annotate(n=Count("id"), attempts=Max("attempts"))
        .order_by("-attempts")[:TOP]
    )

    leases = SessionLease.objects.filter(instance__is_deleted=False)
    result.runners = list(
        leases.filter(expires_at__gt=now)
        .exclude(runner_id="")
        .values("runner_id")
        .annotate(leases=Count("instance_id"), last_heartbeat=Max("heartbeat_at"))
        .order_by("runner_id")
    )
    result.unleased = leases.filter(Q(expires_at__isnull=True) | Q(expires_at__lte=now) | Q(runner_id="")).count()
    return result


@dataclass
class Diagnosis:
    """What an operator asks first about one instance, in numbers."""

    queued: int
    sending: int
    failed_24h: int
    oldest_queued_at: Any
    notifications_queued: int
    head_attempts: int
    webhook_attempts_1h: int
    webhook_failures_1h: int
    last_webhook_error: str
    runner: str
    lease_expires_at: Any


def diagnose(instance: Instance) -> Diagnosis:
    now = timezone.now()
    out = OutgoingMessage.objects.filter(instance_id=instance.pk).aggregate(
        queued=Count("id", filter=Q(status=OutgoingStatus.QUEUED)),
        sending=Count("id", filter=Q(status=OutgoingStatus.SENDING)),
        failed=Count("id", filter=Q(status=OutgoingStatus.FAILED, created_at__gte=now - timedelta(days=1))),
        oldest=Min("created_at", filter=Q(status=OutgoingStatus.QUEUED)),
    )
    notes = Notification.objects.filter(instance_id=instance.pk, state=NotificationState.QUEUED).aggregate(
        n=Count("id"), head=Max("attempts")
    )
    hooks = WebhookAttempt.objects.filter(instance_id=instance.pk, started_at__gte=now - WEBHOOK_WINDOW).aggregate(
        total=Count("id"), failed=Count("id", filter=Q(ok=False))
    )
    last_error = (
        WebhookAttempt.objects.filter(instance_id=instance.pk, ok=False)
        .order_by("-started_at")
        .values_list("error", flat=True)
        .first()
    )
    lease = SessionLease.objects.filter(instance_id=instance.pk).first()
    live = lease is not None and bool(lease.runner_id) and lease.expires_at is not None and lease.expires_at > now
    return Diagnosis(
        queued=out["queued"], sending=out["sending"], failed_24h=out["failed"], oldest_queued_at=out["oldest"],
        notifications_queued=notes["n"], head_attempts=notes["head"] or 0,
        webhook_attempts_1h=hooks["total"], webhook_failures_1h=hooks["failed"], last_webhook_error=last_error or "",
        runner=lease.runner_id if live and lease is not None else "",
        lease_expires_at=lease.expires_at if lease is not None else None,
    )
