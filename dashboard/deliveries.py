"""The cabinet's webhook delivery log: reads, and redelivery through the same service
as ``POST /api/v1/webhooks/redeliver`` (``journals.webhooks.redeliver``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import F

from instances import events
from instances.models import Instance
from journals import webhooks
from journals.models import Notification, NotificationState, WebhookAttempt, WebhookRedelivery

PAGE_SIZE = 50
STATUS_FILTERS = (("", "All"), ("ok", "Delivered (2xx)"), ("failed", "Failed"))
# WebhookRedelivery.requested_by is 20 characters; the API writes "instance token"
# or "partner token", the cabinet says who asked.
REQUESTED_BY = "dashboard"

RedeliveryError = webhooks.RedeliveryError


BODY_SHOWN = 20_000  # characters of a request body shown in the log


@dataclass(frozen=True)
class Outcome:
    """How the log words an attempt: ``kind`` picks the pill's colour and lets a
    refusal by Relay read differently from a receiver that never answered."""

    kind: str  # "ok" | "http" | "refused" | "timeout" | "connect" | "invalid"
    label: str  # the pill
    sentence: str  # what happened, for a person


def outcome(attempt: WebhookAttempt) -> Outcome:
    error = attempt.error
    if attempt.ok:
        return Outcome("ok", str(attempt.status_code), f"Delivered: the receiver answered {attempt.status_code}.")
    if attempt.status_code is not None:
        detail = error if error.startswith("redirects") else "a retry follows unless the notification was given up"
        return Outcome("http", str(attempt.status_code), f"The receiver answered {attempt.status_code}: {detail}.")
    if error.startswith("refused:"):
        return Outcome(
            "refused", "blocked by Relay",
            f"Not sent: Relay refused the address ({error.removeprefix('refused:').strip()}). The server's "
            "operator can allow it with WEBHOOK_ALLOWED_NETWORKS or WEBHOOK_ALLOW_PRIVATE.",
        )
    if error.startswith("invalid URL:"):
        return Outcome("invalid", "bad URL", f"Not sent: the webhook URL is not usable ({error.removeprefix('invalid URL:').strip()}).")
    if error.startswith("timeout:"):
        if "Connect" in error:
            return Outcome("timeout", "no answer", "The receiver's server did not accept a connection in time.")
        return Outcome("timeout", "no answer", "Connected, but the receiver did not answer in time.")
    if error.startswith("ConnectionRefusedError"):
        return Outcome("connect", "connection refused", "Nothing listens at that address and port (connection refused).")
    return Outcome("connect", "connection failed", f"The connection failed before an answer: {error or 'unknown error'}.")


@dataclass(frozen=True)
class AttemptRow:
    """One log row: the attempt, how it went, the request as sent and whether it
    was a redelivery somebody asked for."""

    attempt: WebhookAttempt
    outcome: Outcome
    headers: list[tuple[str, str]]
    body: str
    redelivery: WebhookRedelivery | None

    @property
    def pk(self) -> int:
        return self.attempt.pk


def request_headers(instance: Instance, attempt: WebhookAttempt) -> list[tuple[str, str]]:
    """The headers of the attempt's POST (``journals.webhooks.headers_for``): the
    timestamp is ``started_at``'s second, the signature is the one recorded. The
    Authorization value is never shown back: it is the customer's own token."""
    headers = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("User-Agent", webhooks.USER_AGENT),
        ("X-Webhook-Id", f"{attempt.instance_id}-{attempt.receipt_id}"),
        ("X-Webhook-Timestamp", str(int(attempt.started_at.timestamp()))),
    ]
    if attempt.signature:
        headers.append(("X-Webhook-Signature", attempt.signature))
    if str(instance.setting("webhookUrlToken") or ""):
        scheme = "" if str(settings.WEBHOOK_AUTH_SCHEME).lower() == "raw" else "Bearer "
        headers.append(("Authorization", f"{scheme}<your webhookUrlToken>"))
    return headers


@dataclass(frozen=True)
class Page:
    rows: Sequence[AttemptRow]
    next_before: int | None  # id to pass as ?before= for older attempts


def _redelivery_of(attempt: WebhookAttempt, asked: list[WebhookRedelivery]) -> WebhookRedelivery | None:
    """The latest redelivery request covering the attempt's receiptId made before
    it. Only delivered or given-up notifications are put back by a request, so an
    attempt after one is part of the redelivery round (a notification still queued
    at the time keeps retrying and is, rarely, marked too)."""
    for request in asked:  # newest first
        if request.receipt_from <= attempt.receipt_id <= request.receipt_to and request.requested_at <= attempt.started_at:
            return request
    return None


def attempts_page(instance: Instance, *, status: str = "", before: int | None = None) -> Page:
    """Attempts newest first, ``PAGE_SIZE`` at a time, each with its notification's
    current state (``notification_state``: may it be redelivered?), its request
    (headers and body) and, for a redelivery, the request that caused it."""
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
        .select_related("notification")
        .order_by("-pk")[: PAGE_SIZE + 1]
    )
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    asked: list[WebhookRedelivery] = []
    if page:
        low = min(a.receipt_id for a in page)
        high = max(a.receipt_id for a in page)
        asked = list(
            WebhookRedelivery.objects.filter(instance_id=instance.pk, receipt_from__lte=high, receipt_to__gte=low)
            .order_by("-requested_at")[:200]
        )
    result = []
    for a in page:
        body = webhooks.body_bytes(a.notification.body).decode()
        if len(body) > BODY_SHOWN:
            body = body[:BODY_SHOWN] + " …"
        result.append(AttemptRow(a, outcome(a), request_headers(instance, a), body, _redelivery_of(a, asked)))
    return Page(rows=result, next_before=page[-1].pk if more else None)


# --- Is the queue stuck? ---------------------------------------------------------------


@dataclass(frozen=True)
class Blocked:
    """The webhook queue waits behind a notification that keeps failing: nothing
    after it is delivered until it succeeds or is given up."""

    receipt_id: int
    attempts: int
    waiting: int  # queued notifications behind it, itself included
    next_attempt_at: datetime | None
    last: Outcome | None
    url: str


def blocked(instance: Instance) -> Blocked | None:
    """The failing head of the webhook queue, or None when deliveries flow (or the
    instance has no webhookUrl: notifications then wait for receiveNotification)."""
    url = str(instance.setting("webhookUrl") or "").strip()
    if not url:
        return None
    queued = Notification.objects.filter(instance_id=instance.pk, state=NotificationState.QUEUED)
    head = queued.order_by("receipt_id").values("receipt_id", "attempts", "next_attempt_at").first()
    if head is None or not head["attempts"]:
        return None
    last = (
        WebhookAttempt.objects.filter(instance_id=instance.pk, receipt_id=head["receipt_id"])
        .order_by("-pk")
        .first()
    )
    if last is not None and last.ok:
        return None
    return Blocked(
        receipt_id=head["receipt_id"],
        attempts=head["attempts"],
        waiting=queued.count(),
        next_attempt_at=head["next_attempt_at"],
        last=outcome(last) if last is not None else None,
        url=url,
    )



def redeliver(instance: Instance, receipt_from: int, receipt_to: int) -> int:
    """Put delivered or given-up notifications of the range back at the head of the
    webhook queue (``journals.webhooks.redeliver``) and wake the open log and queue
    pages. Raises ``RedeliveryError`` (no webhookUrl, bad range)."""
    count = webhooks.redeliver(instance, receipt_from, receipt_to, requested_by=REQUESTED_BY)
    if count:
        events.journal_changed(instance.pk, "notifications")
        events.journal_changed(instance.pk, "webhooks")
    return count
