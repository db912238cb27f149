"""Journal retention (operators' ``JOURNAL_RETENTION_DAYS``): messages are kept for
all time by default; with a number of days, a beat job deletes older journal rows
(both tables), calls and message changes in small batches."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Model, QuerySet
from django.utils import timezone

from journals.models import Call, JournalMessage, MessageChange
from messaging.models import PENDING_STATUSES, OutgoingMessage

BATCH = 5_000


def _delete_in_batches(rows: QuerySet[Model]) -> int:
    deleted = 0
    while True:
        ids = list(rows.values_list("pk", flat=True)[:BATCH])
        if not ids:
            return deleted
        count, _ = rows.filter(pk__in=ids).delete()
        deleted += count


def prune_journals(days: int | None = None) -> dict[str, int]:
    """Delete journal entries older than ``days`` (default: the setting; 0 keeps
    everything). Messages still waiting in the send queue are never touched."""
    days = settings.JOURNAL_RETENTION_DAYS if days is None else days
    if days <= 0:
        return {}
    cutoff = timezone.now() - timedelta(days=days)
    return {
        "journal": _delete_in_batches(JournalMessage.objects.filter(timestamp__lt=cutoff)),
        "outgoing": _delete_in_batches(
            OutgoingMessage.objects.filter(created_at__lt=cutoff).exclude(status__in=PENDING_STATUSES)
        ),
        "calls": _delete_in_batches(Call.objects.filter(timestamp__lt=cutoff)),
        "changes": _delete_in_batches(MessageChange.objects.filter(timestamp__lt=cutoff)),
    }


@shared_task(acks_late=True, ignore_result=True)
def prune_journals_task() -> dict[str, int]:
    return prune_journals()
