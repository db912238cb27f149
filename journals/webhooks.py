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

Runs cover many instances at once (``deliver_many``): a notification commit offers
its instance to a Redis ready set (``wake_many``) and one sweep leader task
(``journals.tasks.deliver_webhooks_ready_task``) takes the ready instances in sweeps.
A sweep reads the targets, the queued rows and claims the heads of all its instances
with one statement each, and records every outcome in one transaction, so its fixed
cost is shared by every notification it carries. Everything above holds per
instance: the claim is per head, a failure ends only that instance's run, and its
retry is a delayed run of that instance alone. Instances are posted concurrently
and a run still going after ``SWEEP_WAIT_SECONDS`` is detached (it records itself
later), so a hanging endpoint never holds the sweep or other instances' leases.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from instances import coalesce, events, ssrf
from instances.models import Instance
from journals import webhook_client
from journals.models import Notification, NotificationState, WebhookAttempt, WebhookRedelivery

log = logging.getLogger(__name__)

CHUNK = 100  # notifications read per instance and query while draining
# A pass over many instances reads fewer per instance (CHUNK shared out, at least
# this many): its time budget posts only part of each instance's rows, and a row
# read and decoded but not posted is read again by the next pass.
SWEEP_CHUNK_MIN = 20
USER_AGENT = "Relay-Webhooks/1.0"
LEASE_MARGIN_SECONDS = 30.0
PRUNE_BATCH = 20_000
# A run records its deliveries (one commit) at least this often, and after a failure.
FLUSH_SECONDS = 0.5
# A pending wake-up mark (see mark_wake_pending) outlives a lost task this long at most.
WAKE_PENDING_TTL = coalesce.PENDING_TTL_SECONDS
WEBHOOK_WAKE = "webhooks"  # instances.coalesce kind of the sweep leader's ready set
# A sweep leader takes up to this many ready instances at a time (more ready: a
# helper task sweeps the next ones).
SWEEP_SIZE = 100
# A sweep posts its instances concurrently on this many threads (per worker
# process) and waits this long at most before recording the runs that finished.
SWEEP_THREADS = 8
SWEEP_WAIT_SECONDS = 2.0
# Detached runs (hanging endpoints) each hold a thread of their own beyond
# SWEEP_THREADS, up to this many (see _Posters).
SWEEP_DETACHED_MAX = 120


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


@dataclass(frozen=True, eq=False)
class Row:
    """A queued notification as a run reads it (the body comes with it: nearly every
    run claims its heads and posts them, so a second read after the claim would only
    cost one more query)."""

    pk: int
    instance_id: int
    receipt_id: int
    attempts: int
    created_at: datetime
    body: Any


Batch = list[tuple[Row, datetime, Outcome]]  # what one instance's run posted, in order


def _target(instance_id: int) -> Target | None:
    return _targets([instance_id]).get(instance_id)


def _targets(instance_ids: Iterable[int]) -> dict[int, Target]:
    """The targets of those instances that are live and have a webhookUrl, in one query."""
    found: dict[int, Target] = {}
    rows = Instance.objects.filter(pk__in=list(instance_ids), is_deleted=False).values_list(
        "pk", "settings", "webhook_secret"
    )
    for pk, values, secret in rows:
        url = str((values or {}).get("webhookUrl") or "").strip()
        if url:
            found[pk] = Target(pk, url, str((values or {}).get("webhookUrlToken") or ""), secret)
    return found


def _columns() -> dict[str, str]:
    q = connection.ops.quote_name
    return {str(field.name): q(str(field.column)) for field in Notification._meta.concrete_fields}


def _queued_rows(instance_ids: list[int], chunk: int) -> dict[int, list[Row]]:
    """Each instance's first ``chunk`` queued notifications in receipt_id order, for
    all of them in one query."""
    found: dict[int, list[Row]] = {}
    if connection.vendor == "postgresql":
        # LATERAL: every instance reads only the head of its queue from the queue
        # index, however deep its backlog (a window function would rank the whole
        # backlog of an instance whose endpoint has been down for hours, every sweep).
        c = _columns()
        table = connection.ops.quote_name(Notification._meta.db_table)
        fields = ", ".join(c[name] for name in ("id", "instance", "receipt_id", "attempts", "created_at", "body"))
        sql = (
            f"SELECT n.* FROM unnest(%s::bigint[]) AS i(id) CROSS JOIN LATERAL"
            f" (SELECT {fields} FROM {table} WHERE {c['instance']} = i.id AND {c['state']} = %s"
            f" ORDER BY {c['receipt_id']} LIMIT %s) AS n"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [instance_ids, str(NotificationState.QUEUED), chunk])
            fetched: list[tuple[Any, ...]] = cursor.fetchall()
        # Django reads jsonb as text (JSONField decodes it); a raw cursor gets the text.
        fetched = [(*row[:5], json.loads(row[5]) if isinstance(row[5], str) else row[5]) for row in fetched]
    else:
        # SQLite (the embedded default): a window function; its queues are small.
        rank = Window(RowNumber(), partition_by=F("instance_id"), order_by=F("receipt_id").asc())
        fetched = list(
            Notification.objects.filter(instance_id__in=instance_ids, state=NotificationState.QUEUED)
            .annotate(rank=rank)
            .filter(rank__lte=chunk)
            .values_list("id", "instance_id", "receipt_id", "attempts", "created_at", "body")
        )
    for pk, instance_id, receipt_id, attempts, created_at, body in fetched:
        found.setdefault(instance_id, []).append(Row(pk, instance_id, receipt_id, attempts, created_at, body))
    for rows in found.values():
        rows.sort(key=lambda row: row.receipt_id)
    return found


def _claim(heads: list[Row], now: datetime) -> set[int]:
    """Lease every head that is still due and unchanged (the same attempts as read),
    in one conditional UPDATE; returns the ids of the heads leased.

    The head's lease is its instance's drain lock: other runs only ever try the head,
    so while we hold it nobody else sends for that instance. The attempts condition
    fails the claim if another run has moved the head since we read it."""
    if not heads:
        return set()
    c = _columns()
    adapt = connection.ops.adapt_datetimefield_value
    pairs = " OR ".join([f"({c['id']} = %s AND {c['attempts']} = %s)"] * len(heads))
    sql = (
        f"UPDATE {connection.ops.quote_name(Notification._meta.db_table)} SET {c['next_attempt_at']} = %s"
        f" WHERE {c['state']} = %s AND ({c['next_attempt_at']} IS NULL OR {c['next_attempt_at']} <= %s)"
        f" AND ({pairs}) RETURNING {c['id']}"
    )
    params: list[Any] = [
        adapt(now + timedelta(seconds=lease_seconds())),
        str(NotificationState.QUEUED),
        adapt(now),
    ]
    for head in heads:
        params.extend((head.pk, head.attempts))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {int(pk) for (pk,) in cursor.fetchall()}


def _post_run(target: Target, rows: list[Row], policy: ssrf.Policy, limit: int, deadline: float) -> Batch:
    """POST an instance's claimed rows in order until one fails, ``limit`` are sent,
    ``FLUSH_SECONDS`` have passed or the run's deadline: its share of a sweep."""
    batch: Batch = []
    started = time.monotonic()
    for row in rows:
        if batch and (
            len(batch) >= limit or time.monotonic() >= deadline or time.monotonic() - started >= FLUSH_SECONDS
        ):
            break
        started_at = timezone.now()
        outcome = post(target, row.receipt_id, row.body, policy, timestamp=int(started_at.timestamp()))
        batch.append((row, started_at, outcome))
        if not outcome.ok:
            break
    return batch


class _Posters:
    """The sweeps' POST threads: ``size`` of them post for sweeps, and a run that a
    sweep detached (still going after ``SWEEP_WAIT_SECONDS``: a hanging endpoint) no
    longer counts against them, so a new thread takes its place. With a plain pool
    of ``size`` threads, ``size`` hanging endpoints held every thread for the whole
    POST timeout (180 s by default) and every other instance's runs queued behind
    them. At most ``limit`` threads in all (each detached run holds one until its
    POST times out); beyond that runs queue again, the old behaviour.

    Daemon threads: a worker's warm shutdown waits for its tasks, never for a
    detached POST (the run's lease lapses and it is delivered again). A thread over
    ``size`` (its detached run ended) exits instead of idling."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = max(size, limit)
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[Future[Batch], Callable[[], Batch]]] = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0
        self._pending = 0
        self._running: set[Future[Batch]] = set()
        self._open: set[Future[Batch]] = set()  # submitted, not yet returned
        self._then: dict[Future[Batch], Callable[[Future[Batch]], None]] = {}
        self._let_go: set[Future[Batch]] = set()  # runs a sweep stopped waiting for
        self._detached: set[Future[Batch]] = set()  # ... that are running

    def submit(self, fn: Callable[[], Batch]) -> Future[Batch]:
        future: Future[Batch] = Future()
        with self._lock:
            self._pending += 1
            self._open.add(future)
            self._grow()
        self._queue.put((future, fn))
        return future

    def detach(self, future: Future[Batch], then: Callable[[Future[Batch]], None]) -> bool:
        """The sweep stops waiting for this run: ``then`` runs on the run's thread
        once it returns, and while it posts (now, or once a thread takes it) its
        thread no longer counts as one of ``size``. False when the run has already
        returned (the sweep records it with the others; ``then`` is not called).

        Not ``Future.add_done_callback``: that calls back at once, on the sweep's
        thread, for a run that ended meanwhile, and under load the sweep recorded
        run after run by itself (one transaction each) while more of them ended."""
        with self._lock:
            if future not in self._open:
                return False
            self._then[future] = then
            self._let_go.add(future)
            if future in self._running:
                self._detached.add(future)
                self._grow()
            return True

    def threads(self) -> tuple[int, int]:
        """(threads, of which detached), for tests and diagnostics."""
        with self._lock:
            return self._threads, len(self._detached)

    def _grow(self) -> None:
        # Under the lock: start threads while runs wait for one and the threads that
        # are not detached are fewer than size.
        while (
            self._pending > self._idle
            and self._threads - len(self._detached) < self.size
            and self._threads < self.limit
        ):
            self._threads += 1
            self._idle += 1
            threading.Thread(target=self._work, name=f"webhook-post-{self._threads}", daemon=True).start()

    def _work(self) -> None:
        while True:
            future, fn = self._queue.get()
            with self._lock:
                self._idle -= 1
                self._pending -= 1
                started = future.set_running_or_notify_cancel()
                if started:
                    self._running.add(future)
                    if future in self._let_go:
                        self._detached.add(future)
            if started:
                try:
                    future.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the future's reader
                    future.set_exception(exc)
            with self._lock:
                self._open.discard(future)
                then = self._then.pop(future, None)
            if then is not None:
                then(future)  # a detached run records itself (_finish_detached)
            with self._lock:
                self._running.discard(future)
                self._let_go.discard(future)
                self._detached.discard(future)
                if self._threads - len(self._detached) > self.size:
                    self._threads -= 1  # a detached run's stand-in is no longer needed
                    return
                self._idle += 1


@lru_cache(maxsize=1)
def _pool() -> _Posters:
    return _Posters(SWEEP_THREADS, SWEEP_THREADS + SWEEP_DETACHED_MAX)


def _post_runs(
    targets: dict[int, Target],
    runs: dict[int, list[Row]],
    policy: ssrf.Policy,
    limits: dict[int, int],
    deadline: float,
    *,
    concurrent: bool,
) -> tuple[dict[int, Batch], list[int]]:
    """Post every instance's run; returns the batches to record now and the
    instances whose run is still going (detached, see ``_finish_detached``).

    Without ``concurrent`` (a single instance's run) the runs go one after the
    other. A sweep posts instances concurrently on a small pool and waits ``SWEEP_WAIT_SECONDS``
    at most: a hanging endpoint (the timeout is minutes) keeps its own run and its
    own lease, never the sweep and the other instances' leases."""
    if not concurrent:
        return {i: _post_run(targets[i], rows, policy, limits[i], deadline) for i, rows in runs.items()}, []
    # In random order: runs that wait for a pool thread get the pass's leftover
    # budget (their head at least), so no instance is always the one that waits.
    order = list(runs)
    random.shuffle(order)
    pool = _pool()
    futures = {i: pool.submit(partial(_post_run, targets[i], runs[i], policy, limits[i], deadline)) for i in order}
    futures_wait(futures.values(), timeout=SWEEP_WAIT_SECONDS)
    batches: dict[int, Batch] = {}
    detached: list[int] = []
    for instance_id, future in futures.items():
        if future.done() or not pool.detach(future, partial(_finish_detached, targets[instance_id])):
            batches[instance_id] = future.result()
        else:
            detached.append(instance_id)
    return batches, detached


def _finish_detached(target: Target, future: Future[Batch]) -> None:
    """Record a detached run once its POSTs returned (on the pool thread, with its own
    connection) and wake its instance. If the worker dies first, the head's lease
    lapses and the run is delivered again (at-least-once)."""
    try:
        wait = _record_all({target.instance_id: (target, future.result())})[target.instance_id]
        if wait is not None:
            wake(target.instance_id, countdown=wait)
        else:
            wake(target.instance_id)
    except Exception:  # noqa: BLE001 - the lease lapses and the rows are sent again
        log.warning("could not record a detached webhook run of %s", target.instance_id, exc_info=True)
    finally:
        connection.close()


def deliver(instance_id: int, *, max_notifications: int | None = None, max_seconds: float | None = None) -> float | None:
    """Deliver one instance's due notifications in receiptId order (``deliver_many``).

    Returns the seconds until the head is due again after a failed attempt (the
    caller schedules the next run), ``0.0`` when the run stopped with work left
    (the caller re-enqueues at once), or None when there is nothing this run should
    do: an empty queue, no webhookUrl, or a head that another run holds or that is
    waiting for a retry someone else has scheduled."""
    return deliver_many([instance_id], max_notifications=max_notifications, max_seconds=max_seconds).get(instance_id)


def deliver_many(
    instance_ids: Iterable[int],
    *,
    max_notifications: int | None = None,
    max_seconds: float | None = None,
    passes: int | None = None,
    concurrent: bool = False,
) -> dict[int, float | None]:
    """Deliver the due notifications of many instances together, each in receiptId
    order; the answer per instance is ``deliver``'s.

    A pass costs the same few statements however many instances it carries: their
    targets (one query; re-read on later passes, so a changed webhookUrl applies from
    the next batch), their queued rows (one query), the claim of every due head (one
    UPDATE), the POSTs, and one transaction recording every outcome. Per instance a
    pass posts at most ``FLUSH_SECONDS`` of work and stops at its first failure,
    which only ever ends that instance's run. Passes repeat for the instances that
    delivered everything they read (up to ``passes``; the leader sweeps once and
    carries them to its next sweep, with whatever became ready meanwhile); each
    instance sends at most ``max_notifications`` (``WEBHOOK_BATCH_SIZE``), and the
    call ends after ``max_seconds`` (``WEBHOOK_BATCH_SECONDS``)."""
    limit = max_notifications or settings.WEBHOOK_BATCH_SIZE
    deadline = time.monotonic() + (max_seconds if max_seconds is not None else settings.WEBHOOK_BATCH_SECONDS)
    give_up = timedelta(seconds=settings.WEBHOOK_GIVE_UP_SECONDS)
    ids = sorted(set(instance_ids))
    results: dict[int, float | None] = dict.fromkeys(ids)
    sent = dict.fromkeys(ids, 0)
    swept: set[int] = set()
    policy = webhook_policy()
    active = ids
    targets: dict[int, Target] = {}
    done_passes = 0
    while active:
        if passes is not None and done_passes >= passes or done_passes and time.monotonic() >= deadline:
            results.update(dict.fromkeys(active, 0.0))
            break
        done_passes += 1
        targets = _targets(active)
        chunk = max(min(SWEEP_CHUNK_MIN, CHUNK), CHUNK // max(len(targets), 1))
        queued = _queued_rows([i for i in active if i in targets], chunk)
        now = timezone.now()
        heads: list[Row] = []
        next_active: list[int] = []
        for instance_id in active:
            rows = queued.get(instance_id)
            if not rows:
                results[instance_id] = None  # nothing queued, or no webhookUrl
                continue
            if instance_id not in swept and now - rows[0].created_at > give_up:
                # A backlog older than the window (a long outage): drop it in one go.
                swept.add(instance_id)
                if expire_overdue(instance_id, now):
                    next_active.append(instance_id)
                    continue
            heads.append(rows[0])
        claimed = _claim(heads, now)
        runs = {head.instance_id: queued[head.instance_id] for head in heads if head.pk in claimed}
        for head in heads:
            if head.pk not in claimed:
                results[head.instance_id] = None  # in flight elsewhere, backing off, or taken meanwhile
        limits = {i: limit - sent[i] for i in runs}
        # One budget for the whole pass (not per instance): instances waiting for a
        # pool thread post their head at least, so a pass carrying many instances
        # still ends about FLUSH_SECONDS after it began.
        budget = min(deadline, time.monotonic() + FLUSH_SECONDS)
        batches, detached = _post_runs(targets, runs, policy, limits, budget, concurrent=concurrent)
        waits = _record_all({i: (targets[i], batch) for i, batch in batches.items()})
        for instance_id, batch in batches.items():
            sent[instance_id] += sum(1 for _, _, outcome in batch if outcome.ok)
            if waits[instance_id] is not None:
                results[instance_id] = waits[instance_id]
            elif sent[instance_id] >= limit or time.monotonic() >= deadline:
                results[instance_id] = 0.0
            elif len(batch) == len(runs[instance_id]) < chunk:
                # We sent everything that was queued when we looked. Anything committed
                # since then has its own wake-up, so a last empty read would only cost
                # queries.
                results[instance_id] = None
            else:
                next_active.append(instance_id)
        for instance_id in detached:
            results[instance_id] = None  # its run records itself and wakes it (_finish_detached)
        active = sorted(next_active)
    return results


def _record_all(batches: dict[int, tuple[Target, Batch]]) -> dict[int, float | None]:
    """Record the runs of a pass in one transaction: one UPDATE for every delivered
    notification, the retry or give-up of each failed head, one INSERT of every
    attempt. Only the last notification of a run can have failed. Returns per
    instance the retry delay when its head stays queued, else None."""
    waits: dict[int, float | None] = dict.fromkeys(batches)
    batches = {i: run for i, run in batches.items() if run[1]}
    if not batches:
        return waits
    now = timezone.now()
    delivered = [row.pk for _, batch in batches.values() for row, _, outcome in batch if outcome.ok]
    with transaction.atomic():
        if delivered:
            Notification.objects.filter(pk__in=delivered, state=NotificationState.QUEUED).update(
                state=NotificationState.DONE, done_at=now, next_attempt_at=None, attempts=F("attempts") + 1
            )
        for instance_id, (target, batch) in batches.items():
            row, _, outcome = batch[-1]
            if not outcome.ok:
                waits[instance_id] = _record_failure(target, row, now)
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
                for target, batch in batches.values()
                for row, started_at, outcome in batch
            ]
        )
        # A raw INSERT fires no post_save: open webhook-log pages get their hint here.
        # Whether a page is open is asked for every instance in one round trip: one
        # each (a Redis EXISTS per instance and second) was a round trip per
        # notification when a thousand instances each had one or two per pass.
        events.prime_watched(batches)
        for instance_id in batches:
            events.webhook_attempts_logged(instance_id)
    return waits


def _record_failure(target: Target, row: Row, now: datetime) -> float | None:
    """The head failed: schedule its retry (returns the delay) or give up on it."""
    mine = Notification.objects.filter(pk=row.pk, state=NotificationState.QUEUED)
    attempt = row.attempts + 1
    delay = retry_delay(attempt)
    start = window_start(target.instance_id, row.receipt_id, row.created_at)
    give_up_at = start + timedelta(seconds=settings.WEBHOOK_GIVE_UP_SECONDS)
    if now + timedelta(seconds=delay) > give_up_at:
        mine.update(state=NotificationState.EXPIRED, done_at=now, next_attempt_at=None, attempts=F("attempts") + 1)
        log.info("webhook %s-%s given up after %s attempts", target.instance_id, row.receipt_id, attempt)
        return None
    mine.update(next_attempt_at=now + timedelta(seconds=delay), attempts=F("attempts") + 1)
    return delay


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


def sweep_task() -> Task[Any, Any]:
    """``journals.tasks.deliver_webhooks_ready_task``, the sweep leader (see
    ``delivery_task``)."""
    task: Task[Any, Any] = current_app.tasks["journals.tasks.deliver_webhooks_ready_task"]
    return task


def wake(instance_id: int, countdown: float = 0) -> None:
    """Ask for a delivery run of the instance (``wake_many``); with a countdown (a
    retry), a delayed run of this instance alone. Never raises: with the broker down
    the notifications stay queued in SQL and ``wake_due`` (beat) wakes them later."""
    if countdown <= 0:
        wake_many([instance_id])
        return
    deliver_webhooks_task = delivery_task()
    if deliver_webhooks_task.app.conf.task_always_eager:
        return  # eager mode (tests) has no clock: the test drives time
    try:
        deliver_webhooks_task.apply_async((instance_id,), countdown=countdown, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    except Exception:  # noqa: BLE001 - the database holds the work
        log.warning("could not enqueue webhook delivery for %s; beat will recover it", instance_id, exc_info=True)


def wake_many(instance_ids: Iterable[int]) -> None:
    """Ask for delivery runs of these instances now. Never raises.

    With Redis the ids join the webhooks ready set (instances.coalesce ``offer``, one
    round trip for all of them) and a sweep leader is published only when none is
    running: under load a wake-up costs one Redis call and no task. Without Redis
    (the embedded default), in eager mode (tests), or when Redis or the leader's
    publish failed, each instance gets a run of its own (``deliver_webhooks_task``)."""
    ids = list(dict.fromkeys(instance_ids))
    if not ids:
        return
    deliver_webhooks_task = delivery_task()
    if settings.REDIS_URL and not deliver_webhooks_task.app.conf.task_always_eager:
        lead = coalesce.offer(WEBHOOK_WAKE, ids)
        if lead is False:
            return  # the running leader takes them
        if lead is True:
            if publish(sweep_task(), ()):
                return
            coalesce.resign(WEBHOOK_WAKE)  # the next offer starts a leader; beat is the net
    for instance_id in ids:
        publish(deliver_webhooks_task, (instance_id,))


def publish(task: Task[Any, Any], args: tuple[Any, ...]) -> bool:
    """Send a delivery task to the broker; False (logged) when the broker refused it:
    the database holds the work and beat wakes it."""
    try:
        task.apply_async(args, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    except Exception:  # noqa: BLE001 - the database holds the work; beat recovers it
        log.warning("could not enqueue webhook delivery %s%s; beat will recover it", task.name, args, exc_info=True)
        return False
    return True


def sweep(instance_ids: list[int]) -> list[int]:
    """One sweep of a leader or helper task (``deliver_many``, one pass, instances
    posted concurrently): failed heads get their retry as a delayed run of their
    own, so a failing endpoint's retries never ride a shared sweep. Returns the
    instances with more to send now (the leader carries them to its next sweep)."""
    results = deliver_many(instance_ids, passes=1, concurrent=True)
    for instance_id, wait in results.items():
        if wait:
            wake(instance_id, countdown=wait)
    return [instance_id for instance_id, wait in results.items() if wait == 0.0]


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
    wake_many([instance_id for instance_id, _ in heads])
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
