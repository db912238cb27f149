"""Housekeeping for statuses (beat)."""

from __future__ import annotations

from celery import shared_task

from statuses.services import prune_status_statistics


@shared_task(acks_late=True, ignore_result=True)
def prune_statuses_task() -> dict[str, int]:
    """Statistics older than 30 days."""
    return {"statistics": prune_status_statistics()}
