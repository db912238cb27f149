"""Housekeeping tasks for instances. Tasks take ids/primitives and are safe to rerun."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from instances.models import InstanceStateChange

STATE_HISTORY_DAYS = 90


@shared_task(acks_late=True)
def prune_state_history_task() -> int:
    """Drop state-history entries older than 90 days; returns how many went."""
    cutoff = timezone.now() - timedelta(days=STATE_HISTORY_DAYS)
    deleted, _ = InstanceStateChange.objects.filter(created_at__lt=cutoff).delete()
    return deleted
