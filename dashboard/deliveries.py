"""The cabinet's webhook delivery log: reads, and redelivery through the same service
as ``POST /api/v1/webhooks/redeliver`` (``journals.webhooks.redeliver``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import F

from instances import events
from instances.models import Instance
from journals import webhooks
from journals.models import WebhookAttempt

PAGE_SIZE = 50
STATUS_FILTERS = (("", "All"), ("ok", "Delivered (2xx)"), ("failed", "Failed"))
# WebhookRedelivery.requested_by is 20 characters; the API writes "instance token"
# or "partner token", the cabinet says who asked.
REQUESTED_BY = "dashboard"

RedeliveryError = webhooks.RedeliveryError


@dataclass(frozen=True)
class Page:
    rows: Sequence[WebhookAttempt]
    next_before: int | None  # id to pass as ?before= for older attempts


def attempts_page(instance: Instance, *, status: str = "", before: int | None = None) -> Page:
    """Attempts newest first, ``PAGE_SIZE`` at a time, each with its notification's
    current state (``notification_state``: may it be redelivered?)."""
    rows = WebhookAttempt.objects.filter(instance_id=instance.pk)
    if status == "ok":
        rows = rows.filter(ok=True)
    elif status == "failed":
        rows = rows.filter(ok=False)
    if before is not None:
        rows = rows.filter(pk__lt=before)
    # The notification's state without loading its body (it may be large).
    page = list(
        rows.annotate(notification_state=F("notification__state"))
        .defer("response_excerpt")
        .order_by("-pk")[: PAGE_SIZE + 1]
    )
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    return Page(rows=page, next_before=page[-1].pk if more else None)


def redeliver(instance: Instance, receipt_from: int, receipt_to: int) -> int:
    """Put delivered or given-up notifications of the range back at the head of the
    webhook queue (``journals.webhooks.redeliver``) and wake the open log and queue
    pages. Raises ``RedeliveryError`` (no webhookUrl, bad range)."""
    count = webhooks.redeliver(instance, receipt_from, receipt_to, requested_by=REQUESTED_BY)
    if count:
        events.journal_changed(instance.pk, "notifications")
        events.journal_changed(instance.pk, "webhooks")
    return count
