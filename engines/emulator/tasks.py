"""Housekeeping of the emulated network (beat)."""

from __future__ import annotations

from celery import shared_task

from engines.emulator.statuses import prune_network_statuses


@shared_task(acks_late=True, ignore_result=True)
def prune_network_statuses_task() -> dict[str, int]:
    """Statuses on the network long past their 24 hours."""
    return {"network": prune_network_statuses()}
