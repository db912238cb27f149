"""Webhook delivery: POST each notification to the instance's ``webhookUrl``.

Per instance, notifications go strictly in ``receipt_id`` order: the head must be
answered with a 2xx before the next one is sent (head-of-line, as GREEN-API does).
The queue *is* the ``Notification`` table; Celery tasks only carry wake-ups.

How notifications move (all in SQL, so a lost task or a dead worker loses nothing):
- a run *claims* the head with a conditional UPDATE that is only true while the head
  is due (``next_attempt_at`` empty or past) and sets ``next_attempt_at`` to a lease
  that outlives the longest possible POST. Other runs only ever try the head, so the
  head's lease is the instance's drain lock: duplicate wake-ups are turned away, and
  a worker that dies mid-POST leaves a head that becomes due again when the lease ends;
- the claimer then posts the head and the notifications behind it one by one and
  records them in batches (at most ``FLUSH_SECONDS`` of work, one commit per batch):
  a 2xx marks a notification ``done``; anything else (another status, a 3xx —
  redirects are never followed —, a refused address, a connect error, a timeout)
  ends the batch and keeps that notification queued with ``next_attempt_at`` from the
  retry schedule, or gives up (``expired``) when the next attempt would fall outside
  the give-up window. Every attempt is written to ``WebhookAttempt`` in the same
  transaction. A worker killed mid-batch means its unrecorded deliveries are sent
  again after the lease (at-least-once; receivers dedupe by ``X-Webhook-Id``).

A head that is not due ends the run: the worker that recorded the failure schedules
the retry (a task with a countdown), and ``wake_due`` (beat) catches anything else.
Runs are bounded (``WEBHOOK_BATCH_SIZE`` / ``WEBHOOK_BATCH_SECONDS``) and never sleep,
so a slow or dead endpoint only ever costs its own instance's attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone

from instances import coalesce, events, ssrf
from instances.models import Instance
from journals import webhook_client
from journals.models import Notification, NotificationState, WebhookAttempt, WebhookRedelivery

log = logging.getLogger(__name__)

CHUNK = 100  # notifications read per query while draining
USER_AGENT = "Relay-Webhooks/1.0"
LEASE_MARGIN_SECONDS = 30.0
PRUNE_BATCH = 20_000
# A run records its deliveries (one commit) at least this often, and after a failure.
FLUSH_SECONDS = 0.5
# A pending wake-up mark (see mark_wake_pending) outlives a lost task this long at most.
WAKE_PENDING_TTL = coalesce.PENDING_TTL_SECONDS
WEBHOOK_WAKE = "webhooks"  # instances.coalesce kind of deliver_webhooks_task


# --- The request ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where and how an instance's notifications are posted."""

    instance_id: int
    url: str
    token: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    latency_ms: int
    error: str = ""
    excerpt: str = ""
    signature: str = ""  # the X-Webhook-Signature sent, so the log shows the exact request


def body_bytes(body: Any) -> bytes:
    """The exact bytes posted (and signed): compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Webhook-Signature``: ``sha256=`` + hex HMAC-SHA256 over ``"<ts>." + body``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def authorization(token: str) -> str:
    """The Authorization value for a webhookUrlToken (``WEBHOOK_AUTH_SCHEME``)."""
    if settings.WEBHOOK_AUTH_SCHEME.lower() == "raw":
        return token
    return f"Bearer {token}"


def headers_for(target: Target, receipt_id: int, body: bytes, timestamp: int) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": f"{target.instance_id}-{receipt_id}",
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": sign(target.secret, timestamp, body),
    }
    if target.token:
        headers["Authorization"] = authorization(target.token)
    return headers


def webhook_policy() -> ssrf.Policy:
    return ssrf.Policy.build(
        allow_private=settings.WEBHOOK_ALLOW_PRIVATE, allowed_networks=settings.WEBHOOK_ALLOWED_NETWORKS
    )


@lru_cache(maxsize=1024)
def _endpoint(url: str) -> webhook_client.Endpoint:
    return webhook_client.parse(url)  # raises for a bad URL: errors are not cached


def post(target: Target, receipt_id: int, body: Any, policy: ssrf.Policy, *, timestamp: int | None = None) -> Outcome:
    """POST one notification; never raises. Success is a 2xx within the timeout.

    ``timestamp`` (default: now) is the ``X-Webhook-Timestamp``; delivery passes the
    attempt's ``started_at`` second so the log can show the request exactly."""
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    content = body_bytes(body)
    headers = headers_for(target, receipt_id, content, int(time.time()) if timestamp is None else timestamp)
    signature = headers["X-Webhook-Signature"]
    try:
        outcome = _post(target, content, headers, policy)
    except ssrf.Refused as exc:
        outcome = Outcome(False, None, 0, f"refused: {exc}"[:500])
    except webhook_client.InvalidURL as exc:
        outcome = Outcome(False, None, 0, f"invalid URL: {exc}"[:500])
    except TimeoutError as exc:
        phase = "ConnectTimeout" if exc.args[:1] == ("connect",) else "ReadTimeout"
        outcome = Outcome(False, None, 0, f"timeout: {phase}")
    except (OSError, http.client.HTTPException) as exc:
        outcome = Outcome(False, None, 0, f"{type(exc).__name__}: {exc}"[:500])
    return replace(outcome, latency_ms=elapsed_ms(), signature=signature)


def _post(target: Target, content: bytes, headers: dict[str, str], policy: ssrf.Policy) -> Outcome:
    """The POST and the status check; raises what ``webhook_client.post`` raises."""
    answer = webhook_client.post(
        _endpoint(target.url),
        headers,
        content,
        policy=policy,
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        connect_timeout=min(settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS, settings.WEBHOOK_TIMEOUT_SECONDS),
    )
    status = answer.status
    if 200 <= status < 300:
        return Outcome(True, status, 0, "", answer.excerpt)
    if 300 <= status < 400 and answer.location:
        error = f"redirects are not followed (Location: {answer.location})"
    else:
        error = f"HTTP {status}"
    return Outcome(False, status, 0, error[:500], answer.excerpt)


# --- Scheduling -----------------------------------------------------------------------


def retry_delay(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: the schedule's value (last one repeats)
    with ± ``WEBHOOK_RETRY_JITTER`` of jitter."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    base = float(schedule[min(max(attempt, 1), len(schedule)) - 1])
    jitter = min(max(float(settings.WEBHOOK_RETRY_JITTER), 0.0), 0.9)
    return base * (1 + random.uniform(-jitter, jitter))  # noqa: S311 - not crypto


def lease_seconds() -> float:
    return float(settings.WEBHOOK_TIMEOUT_SECONDS + settings.WEBHOOK_CONNECT_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS)


def _fresh_redeliveries(instance_id: int, cutoff: datetime) -> list[tuple[int, int]]:
    return list(
        WebhookRedelivery.objects.filter(instance_id=instance_id, requested_at__gte=cutoff)
        .order_by("-requested_at")
        .values_list("receipt_from", "receipt_to")[:100]
    )


def window_start(instance_id: int, receipt_id: int, created_at: datetime) -> datetime:
    """When the give-up window of a notification began: its creation, or the latest
    redelivery that covered it."""
    latest = (
        WebhookRedelivery.objects.filter(
            instance_id=instance_id, receipt_from__lte=receipt_id, receipt_to__gte=receipt_id
        )
        .order_by("-requested_at")
        .values_list("requested_at", flat=True)
        .first()
    )
    return max(created_at, latest) if latest else created_at


def expire_overdue(instance_id: int, now: datetime | None = None) -> int:
    """Give up on queued notifications whose window has passed (a long outage: they
    are dropped without another attempt once the head before them has given up)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.WEBHOOK_GIVE_UP_SECONDS)
    rows = Notification.objects.filter(instance_id=instance_id, state=NotificationState.QUEUED, created_at__lt=cutoff)
    for low, high in _fresh_redeliveries(instance_id, cutoff):
        rows = rows.exclude(receipt_id__gte=low, receipt_id__lte=high)
    # Never the head in flight: its claimer records the outcome.
    rows = rows.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    return rows.update(state=NotificationState.EXPIRED, done_at=now, next_attempt_at=None)


# --- Draining -------------------------------------------------------------------------


def _target(instance_id: int) -> Target | None:
    row = (
        Instance.objects.filter(pk=instance_id, is_deleted=False)
        .values_list("settings", "webhook_secret")
        .first()
    )
    if row is None:
        return None
    values, secret = row
    url = str((values or {}).get("webhookUrl") or "").strip()
    if not url:
        return None
    return Target(instance_id, url, str((values or {}).get("webhookUrlToken") or ""), secret)


def deliver(instance_id: int, *, max_notifications: int | None = None, max_seconds: float | None = None) -> float | None:
    """Deliver the instance's due notifications in receiptId order.

    Returns the seconds until the head is due again after a failed attempt (the
    caller schedules the next run), ``0.0`` when the run stopped with work left
    (the caller re-enqueues at once), or None when there is nothing this run should
    do: an empty queue, no webhookUrl, or a head that another run holds or that is
    waiting for a retry someone else has scheduled."""
    limit = max_notifications or settings.WEBHOOK_BATCH_SIZE
    deadline = time.monotonic() + (max_seconds if max_seconds is not None else settings.WEBHOOK_BATCH_SECONDS)
    target = _target(instance_id)
    if target is None:
        return None
    policy = webhook_policy()
    sent = 0
    swept = False
    while True:
        # Bodies come with the rows, in one read: wake-ups are coalesced
        # (journals.tasks.CoalescedWake), so nearly every run claims its head and
        # posts them; a second read after the claim cost one more query per run.
        bodies: dict[int, Any] = {}
        rows: list[Row] = []
        for pk, receipt_id, attempts, created_at, body in (
            Notification.objects.filter(instance_id=instance_id, state=NotificationState.QUEUED)
            .order_by("receipt_id")
            .values_list("id", "receipt_id", "attempts", "created_at", "body")[:CHUNK]
        ):
            rows.append(Row(pk, receipt_id, attempts, created_at))
            bodies[pk] = body
        if not rows:
            return None
        head = rows[0]
        now = timezone.now()
        if not swept and now - head.created_at > timedelta(seconds=settings.WEBHOOK_GIVE_UP_SECONDS):
            # A backlog older than the window (a long outage): drop it in one go.
            swept = True
            if expire_overdue(instance_id, now):
                continue
        # The head's lease is the instance's drain lock: other runs only ever try the
        # head, so while we hold it nobody else sends for this instance. The attempts
        # condition fails the claim if another run has moved the head since we read it.
        claimed = (
            Notification.objects.filter(pk=head.pk, state=NotificationState.QUEUED, attempts=head.attempts)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .update(next_attempt_at=now + timedelta(seconds=lease_seconds()))
        )
        if claimed != 1:
            return None  # in flight elsewhere, backing off, or taken meanwhile
        batch: list[tuple[Row, datetime, Outcome]] = []
        batch_started = time.monotonic()
        for row in rows:
            if batch and (
                sent + len(batch) >= limit
                or time.monotonic() >= deadline
                or time.monotonic() - batch_started >= FLUSH_SECONDS
            ):
                break
            started_at = timezone.now()
            outcome = post(target, row.receipt_id, bodies[row.pk], policy, timestamp=int(started_at.timestamp()))
            batch.append((row, started_at, outcome))
            if not outcome.ok:
                break
        wait = _record(target, batch)
        sent += sum(1 for _, _, outcome in batch if outcome.ok)
        if wait is not None:
            return wait
        if sent >= limit or time.monotonic() >= deadline:
            return 0.0
        if len(batch) == len(rows) < CHUNK:
            # We sent everything that was queued when we looked. Anything committed
            # since then has its own wake-up (the task cleared the pending mark before
            # we looked), so a last empty read here would only cost two queries.
            return None
        # Re-read the target: a changed or cleared webhookUrl applies from the next batch.
        target = _target(instance_id)
        if target is None:
            return None


@dataclass(frozen=True)
class Row:
    pk: int
    receipt_id: int
    attempts: int
    created_at: datetime


def _record(target: Target, batch: list[tuple[Row, datetime, Outcome]]) -> float | None:
    """Write a batch's attempts and move its notifications in one transaction (one
    commit per batch, not per notification). Only the last one can have failed.
    Returns the retry delay when the head stays queued, else None."""
    now = timezone.now()
    wait: float | None = None
    delivered = [row.pk for row, _, outcome in batch if outcome.ok]
    with transaction.atomic():
        if delivered:
            Notification.objects.filter(pk__in=delivered, state=NotificationState.QUEUED).update(
                state=NotificationState.DONE, done_at=now, next_attempt_at=None, attempts=F("attempts") + 1
            )
        row, _, outcome = batch[-1]
        if not outcome.ok:
            mine = Notification.objects.filter(pk=row.pk, state=NotificationState.QUEUED)
            attempt = row.attempts + 1
            delay = retry_delay(attempt)
            start = window_start(target.instance_id, row.receipt_id, row.created_at)
            give_up_at = start + timedelta(seconds=settings.WEBHOOK_GIVE_UP_SECONDS)
            if now + timedelta(seconds=delay) > give_up_at:
                mine.update(
                    state=NotificationState.EXPIRED, done_at=now, next_attempt_at=None, attempts=F("attempts") + 1
                )
                log.info("webhook %s-%s given up after %s attempts", target.instance_id, row.receipt_id, attempt)
            else:
                mine.update(next_attempt_at=now + timedelta(seconds=delay), attempts=F("attempts") + 1)
                wait = delay
        _insert_attempts(
            [
                (
                    row.pk,
                    target.instance_id,
                    row.receipt_id,
                    row.attempts + 1,
                    started_at,
                    target.url,
                    outcome.ok,
                    outcome.status_code,
                    outcome.latency_ms,
                    outcome.error,
                    outcome.excerpt,
                    outcome.signature,
                )
                for row, started_at, outcome in batch
            ]
        )
        # A raw INSERT fires no post_save: open webhook-log pages get their hint here.
        events.webhook_attempts_logged(target.instance_id)
    return wait


_ATTEMPT_FIELDS = (
    "notification", "instance", "receipt_id", "attempt", "started_at", "url",
    "ok", "status_code", "latency_ms", "error", "response_excerpt", "signature",
)


def _insert_attempts(values: list[tuple[Any, ...]]) -> None:
    """One multi-row INSERT of attempt log rows (tuples in ``_ATTEMPT_FIELDS`` order).

    Plain SQL rather than ``bulk_create``: building a model instance per attempt and
    preparing every field through the ORM cost more than the INSERT itself at
    1 000 deliveries/s. Values go through the backend's own datetime adaptation, so
    it works on SQLite as on PostgreSQL."""
    meta = WebhookAttempt._meta
    by_name = {field.name: str(field.column) for field in meta.concrete_fields}
    columns = [by_name[name] for name in _ATTEMPT_FIELDS]
    when = _ATTEMPT_FIELDS.index("started_at")
    adapt = connection.ops.adapt_datetimefield_value
    rows = "(" + ", ".join(["%s"] * len(columns)) + ")"
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({', '.join(columns)})"
        f" VALUES {', '.join([rows] * len(values))}"
    )
    params: list[Any] = []
    for value in values:
        params.extend(value[:when])
        params.append(adapt(value[when]))
        params.extend(value[when + 1 :])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- Wake-ups -------------------------------------------------------------------------


def delivery_task() -> Task[Any, Any]:
    """``journals.tasks.deliver_webhooks_task``, by its registered name: that task
    runs ``deliver`` here, so this module does not import it (``journals.apps``
    does, which registers it in every process)."""
    task: Task[Any, Any] = current_app.tasks["journals.tasks.deliver_webhooks_task"]
    return task


def wake(instance_id: int, countdown: float = 0) -> None:
    """Enqueue a delivery run. Never raises: with the broker down the notifications
    stay queued in SQL and ``wake_due`` (beat) enqueues the run later."""
    deliver_webhooks_task = delivery_task()
    try:
        if countdown > 0:
            if deliver_webhooks_task.app.conf.task_always_eager:
                return  # eager mode (tests) has no clock: the test drives time
            deliver_webhooks_task.apply_async(
                (instance_id,), countdown=countdown, queue=settings.CELERY_TASK_DEFAULT_QUEUE
            )
        else:
            deliver_webhooks_task.apply_async((instance_id,), queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    except Exception:  # noqa: BLE001 - the database holds the work
        log.warning("could not enqueue webhook delivery for %s; beat will recover it", instance_id, exc_info=True)


def mark_wake_pending(instance_id: int) -> bool:
    """Coalesce wake-ups (instances.coalesce): True when a run should be enqueued,
    False when one is already waiting in the broker (it will see every committed
    notification, since a run clears the mark before it reads the queue). Without
    Redis, always True."""
    return bool(coalesce.mark_pending(WEBHOOK_WAKE, [instance_id]))


def clear_wake_pending(instance_id: int) -> None:
    coalesce.clear_pending(WEBHOOK_WAKE, [instance_id])


def webhook_instances() -> Any:
    """Live instances with a non-empty webhookUrl."""
    return (
        Instance.objects.filter(is_deleted=False, settings__has_key="webhookUrl")
        .exclude(settings__webhookUrl="")
        .exclude(settings__webhookUrl=None)
    )


def _due_heads(limit: int) -> list[tuple[int, datetime]]:
    """(instance id, since when its head is due) for every webhook instance whose
    queue head is due: never tried, retry time reached, or a lease left behind by a
    dead worker."""
    now = timezone.now()
    queued = Notification.objects.filter(instance_id=OuterRef("pk"), state=NotificationState.QUEUED)
    head = queued.order_by("receipt_id")
    rows = (
        webhook_instances()
        .annotate(
            has_queued=Exists(queued),
            head_next=Subquery(head.values("next_attempt_at")[:1]),
            head_created=Subquery(head.values("created_at")[:1]),
        )
        .filter(has_queued=True)
        .filter(Q(head_next__isnull=True) | Q(head_next__lte=now))
        .values_list("pk", "head_next", "head_created")[:limit]
    )
    return [(pk, head_next or head_created) for pk, head_next, head_created in rows]


def due_instance_ids(limit: int = 10_000) -> list[int]:
    """Instances whose queue head is due (see ``_due_heads``)."""
    return [pk for pk, _ in _due_heads(limit)]


def wake_due() -> dict[str, int]:
    """Beat: enqueue a run for every instance with a due head.

    The wake-up is coalesced like any other: an instance whose run is already
    waiting in the broker is not enqueued again (clearing every due instance's mark
    on every tick piled up hundreds of useless runs whenever the broker queue was
    longer than a tick). A head still due after ``WAKE_PENDING_TTL`` has outlived
    any mark a lost run could have left, so its mark is cleared first."""
    stale_before = timezone.now() - timedelta(seconds=WAKE_PENDING_TTL)
    heads = _due_heads(10_000)
    for instance_id, due_since in heads:
        if due_since <= stale_before:
            clear_wake_pending(instance_id)
        wake(instance_id)
    return {"woken": len(heads)}


def prune_attempts(limit: int = PRUNE_BATCH) -> int:
    """Delete up to ``limit`` attempt log rows older than the retention."""
    days = settings.WEBHOOK_ATTEMPT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    ids = list(WebhookAttempt.objects.filter(started_at__lt=cutoff).values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    deleted, _ = WebhookAttempt.objects.filter(pk__in=ids).delete()
    return deleted


# --- Redelivery -----------------------------------------------------------------------


class RedeliveryError(Exception):
    """The redelivery cannot be done (message for the caller)."""


def redeliver(instance: Instance, receipt_from: int, receipt_to: int, *, requested_by: str) -> int:
    """Put delivered or given-up notifications of a receiptId range back in the
    webhook queue, with a fresh attempt count and give-up window. Notifications
    still queued keep their place and schedule. Returns how many were re-queued."""
    if not str(instance.setting("webhookUrl") or "").strip():
        raise RedeliveryError("the instance has no webhookUrl")
    if receipt_to < receipt_from:
        raise RedeliveryError("receiptIdTo is lower than receiptIdFrom")
    now = timezone.now()
    with transaction.atomic():
        count = Notification.objects.filter(
            instance_id=instance.pk,
            receipt_id__gte=receipt_from,
            receipt_id__lte=receipt_to,
            state__in=[NotificationState.DONE, NotificationState.EXPIRED],
        ).update(state=NotificationState.QUEUED, done_at=None, attempts=0, next_attempt_at=None)
        if count:
            WebhookRedelivery.objects.create(
                instance_id=instance.pk,
                receipt_from=receipt_from,
                receipt_to=receipt_to,
                requested_at=now,
                requested_by=requested_by,
                count=count,
            )
            instance_id = instance.pk
            transaction.on_commit(lambda: wake(instance_id))
    return count


def redeliver_given_up(instance: Instance, *, requested_by: str) -> int:
    """Re-queue exactly the notifications whose delivery gave up (expired after at least
    one attempt), oldest first, as one redelivery per run of consecutive receiptIds.
    Unlike ``redeliver`` over a wide range, nothing that was delivered is sent twice:
    every id inside a run is one of the given-up ones."""
    receipts = list(
        Notification.objects.filter(instance_id=instance.pk, state=NotificationState.EXPIRED, attempts__gt=0)
        .order_by("receipt_id")
        .values_list("receipt_id", flat=True)
    )
    runs: list[tuple[int, int]] = []
    for receipt in receipts:
        if runs and receipt == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], receipt)
        else:
            runs.append((receipt, receipt))
    return sum(redeliver(instance, first, last, requested_by=requested_by) for first, last in runs)
