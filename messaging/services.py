"""The send path: queue a message (one transaction), drain the queue (one worker per
instance at a time), record statuses, and the housekeeping that makes it crash-safe.

Invariants:
- A 200 from a send method means the ``OutgoingMessage`` row is committed.
- Rows are claimed with a conditional UPDATE (queued → sending); only the claimer
  hands a row to the transport. Transports are idempotent per ``id_message``, so a
  row re-queued after a crash is never delivered twice.
- Wake-ups (Celery tasks) carry an instance id, never a message: duplicates are
  harmless, a lost one is recovered by ``recover_queues``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import takewhile
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import DateTimeField, F, Q, Value, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from engines import sink
from engines.contract import OutgoingPayload, TransportError, send_for_instances
from engines.events import (
    ApiMessageEvent,
    ReceiptEvent,
    SendQueuedEvent,
    SendReport,
    StateEvent,
    StatusEvent,
    StatusPostedEvent,
)
from engines.registry import get_transport
from engines.shapes import message_data_from_payload
from instances import events
from instances.bulk import insert_values
from instances.dbclock import db_in, db_now
from instances.guards import check_authorized
from instances.models import Instance, State
from messaging import media, pacing
from messaging.models import (
    PENDING_STATUSES,
    HeldReceipt,
    MessageStatusChange,
    OutgoingMessage,
    OutgoingStatus,
    SendAttempt,
    SendCursor,
)
from messaging.selectors import ATTEMPT_ERROR
from messaging.wake import wake_queue as wake_queue  # re-exported: tasks and tests wake through services
from messaging.wake import wake_queues as wake_queues
from messaging.wake import wake_queues_later as wake_queues_later

log = logging.getLogger(__name__)

QUEUE_RETENTION = timedelta(hours=24)
IDEMPOTENCY_WINDOW = timedelta(hours=24)
FILE_MIN_INTERVAL_MS = 5000
# A drain sleeps in-process only for short gaps; longer ones are re-scheduled with a
# countdown so one slow instance never holds a worker that others need.
MAX_INLINE_WAIT_SECONDS = 0.25
SHOW_QUEUE_LIMIT = 500
# Queued rows a sweep reads per paced instance: the head, and the next one's kind.
PACED_LOOKAHEAD = 2


# --- Queueing ---------------------------------------------------------------------------


def send(
    *,
    instance: Instance,
    method: str,
    chat_id: str,
    type_message: str,
    request: dict[str, Any],
    payload: dict[str, Any],
    is_file: bool = False,
    idempotency_key: str = "",
    archive_chat: bool = False,
) -> OutgoingMessage:
    """Queue one message and wake the instance's drain on commit; ``archive_chat``
    (the send methods' ``archiveChat``) archives the chat in the same transaction.

    With ``idempotency_key``, a repeat within 24 h returns the first message and
    queues nothing."""
    if idempotency_key:
        existing = OutgoingMessage.objects.filter(instance=instance, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            message = OutgoingMessage.objects.create(
                instance=instance,
                chat_id=chat_id,
                method=method,
                type_message=type_message,
                request=request,
                payload=payload,
                is_file=is_file,
                idempotency_key=idempotency_key,
            )
            transaction.on_commit(lambda: wake_queue(instance.id))
            mark_read = bool(instance.setting("markIncomingMessagesReadedOnReply"))
            if archive_chat or mark_read:  # journals archives and reads the chat
                sink.emit(instance, SendQueuedEvent(chat_id=chat_id, archive_chat=archive_chat, mark_read=mark_read))
    except IntegrityError:
        # Two requests with one key raced; the other one committed first.
        if idempotency_key:
            existing = OutgoingMessage.objects.filter(instance=instance, idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        raise
    return message


# --- Queue methods ---------------------------------------------------------------------


def queued_messages(instance: Instance) -> list[OutgoingMessage]:
    return list(
        OutgoingMessage.objects.filter(instance=instance, status__in=PENDING_STATUSES).order_by("id")[
            :SHOW_QUEUE_LIMIT
        ]
    )


def clear_messages_queue(instance: Instance) -> int:
    """Drop messages still waiting (not the one being handed to the engine)."""
    deleted, _ = OutgoingMessage.objects.filter(instance=instance, status=OutgoingStatus.QUEUED).delete()
    return deleted


def messages_count(instance: Instance) -> int:
    return OutgoingMessage.objects.filter(instance=instance, status__in=PENDING_STATUSES).count()


# --- Draining ----------------------------------------------------------------------------


def _free_for(worker: str) -> Q:
    """A drain lock ``worker`` may take: free, ours, or expired on the database's
    clock (instances.dbclock: every worker judges a lock by the same clock)."""
    return Q(locked_by="") | Q(locked_until__lt=db_now()) | Q(locked_until__isnull=True) | Q(locked_by=worker)


def _acquire_drain_lock(instance_id: int, worker: str) -> bool:
    free = _free_for(worker)
    lock = {"locked_by": worker, "locked_until": db_in(settings.SEND_DRAIN_LOCK_SECONDS)}
    if SendCursor.objects.filter(instance_id=instance_id).filter(free).update(**lock) == 1:
        return True  # the common case: one statement
    if SendCursor.objects.filter(instance_id=instance_id).exists():
        return False  # another worker is draining; it re-checks after releasing
    if not Instance.objects.filter(pk=instance_id, is_deleted=False).exists():
        return False  # a wake-up for an instance that is gone
    SendCursor.objects.get_or_create(instance_id=instance_id)
    return SendCursor.objects.filter(instance_id=instance_id).filter(free).update(**lock) == 1


def _next_send_at(cursor: SendCursor, instance: Instance, is_file: bool) -> Any:
    if cursor.last_sent_at is None:
        return None
    delay_ms = int(instance.setting("delaySendMessagesMilliseconds"))
    if is_file or cursor.last_was_file:
        delay_ms = max(delay_ms, FILE_MIN_INTERVAL_MS)
    return cursor.last_sent_at + timedelta(milliseconds=delay_ms)


class DrainReport(NamedTuple):
    """What ``drain_queues`` left: per instance, seconds until its next message is
    due (0.0: more is ready now) or None (empty, or cannot move now); and the
    instances whose engine failed transiently (their messages wait at the head)."""

    waits: dict[int, float | None]
    errors: dict[int, TransportError]


def drain_queue(instance_id: int, worker: str, *, max_messages: int = 1000) -> float | None:
    """Send the instance's queued messages oldest first, paced by its delay.

    Holds the instance's drain lock so two workers never send for one instance.
    Returns seconds to wait before the next message is due (the caller re-schedules)
    or None when the queue is empty or cannot move now (not authorized). A transient
    engine error is raised (after recording what went out) so the caller backs off."""
    report = drain_queues([instance_id], worker, max_messages=max_messages)
    if instance_id in report.errors:
        raise report.errors[instance_id]
    return report.waits[instance_id]


class DrainInterrupted(Exception):
    """The database went away mid-sweep (outage, restart). ``locked`` are the
    instances whose drain locks this worker may still hold, with rows it claimed
    still in ``sending``; ``resume_drains`` releases them once the database is back,
    so the queues move again within seconds instead of after the lock and the stuck
    row timeouts (SEND_DRAIN_LOCK_SECONDS, SEND_STUCK_AFTER_SECONDS)."""

    def __init__(self, worker: str, instance_ids: list[int], locked: list[int]) -> None:
        super().__init__(f"database unavailable while draining {len(instance_ids)} instance(s)")
        self.worker = worker
        self.instance_ids = instance_ids
        self.locked = locked
        self.at = timezone.now()  # claims made before this are the interrupted sweep's


def resume_drains(worker: str, instance_ids: Sequence[int], locked: Sequence[int], interrupted_at: Any) -> list[int]:
    """After a ``DrainInterrupted``: for the instances whose lock ``worker`` still
    holds, put the rows it had claimed (``sending``) back at the queue head and
    release the lock, in one transaction. Safe because the lock made ``worker`` the
    only sender for them; a row the engine had taken before the outage is re-sent
    with ``first_attempt=False`` and the engine skips it (idempotent per idMessage).
    Returns the instances to wake. Raises the database's error while it is still
    down (the caller retries)."""
    ids = list(dict.fromkeys([*instance_ids, *locked]))
    with transaction.atomic():
        mine = list(
            SendCursor.objects.select_for_update()
            .filter(instance_id__in=list(locked), locked_by=worker)
            .order_by("instance_id")
            .values_list("instance_id", flat=True)
        )
        if mine:
            # Only the interrupted sweep's claims: the same worker thread may have
            # taken the lock again since and be sending newer ones.
            OutgoingMessage.objects.filter(
                instance_id__in=mine, status=OutgoingStatus.SENDING, claimed_at__lte=interrupted_at
            ).update(status=OutgoingStatus.QUEUED)
            SendCursor.objects.filter(instance_id__in=mine, locked_by=worker).update(locked_by="", locked_until=None)
    return ids


def drain_queues(instance_ids: Sequence[int], worker: str, *, max_messages: int = 1000) -> DrainReport:
    """See ``_drain_queues``; a database outage mid-sweep raises ``DrainInterrupted``."""
    ids = list(dict.fromkeys(instance_ids))
    locked: list[int] = []
    try:
        return _drain_queues(ids, worker, max_messages, locked)
    except (OperationalError, InterfaceError) as exc:
        raise DrainInterrupted(worker, ids, locked) from exc


def _drain_queues(ids: list[int], worker: str, max_messages: int, held: list[int]) -> DrainReport:
    """``drain_queue`` for many instances in one sweep (the send benchmark's shape:
    many instances, a few messages each). Their locks are taken and released with
    one statement each, their queue heads read with one query, and their unpaced
    batches claimed, recorded and counted in shared statements; per instance only
    the engine call and the notification write remain. Paced instances (a delay, or
    a file) go one message at a time as before. Instances another worker is
    draining are skipped: that worker re-checks after releasing."""
    waits: dict[int, float | None] = dict.fromkeys(ids)
    errors: dict[int, TransportError] = {}
    held.extend(ids)  # until the locks are known: any of them may be ours
    locked = _acquire_drain_locks(ids, worker)
    held[:] = locked
    if not locked:
        return DrainReport(waits, errors)
    cap = max(1, min(settings.SEND_BATCH_SIZE, max_messages))
    try:
        remaining = list(locked)
        for _ in range(max(1, max_messages // cap)):
            round_waits, round_errors = _sweep_locked(remaining, cap)
            waits.update(round_waits)
            errors.update(round_errors)
            remaining = [i for i in remaining if round_waits.get(i) == 0.0 and i not in errors]
            if not remaining:
                break
    finally:
        SendCursor.objects.filter(instance_id__in=locked, locked_by=worker).update(locked_by="", locked_until=None)
    held.clear()
    idle = [i for i in locked if waits[i] is None and i not in errors]
    if idle:
        # A wake-up that arrived while we held a lock was dropped (see wake_queues);
        # its row may have committed after our last look. Go round once more.
        for instance_id in _with_sendable(idle):
            waits[instance_id] = 0.0
    return DrainReport(waits, errors)


def _acquire_drain_locks(ids: list[int], worker: str) -> list[int]:
    """The ids whose drain lock this worker now holds: one UPDATE and one read for
    all, then the slow path (missing cursor row, contention) one by one."""
    if not ids:
        return []
    free = _free_for(worker)
    until = db_in(settings.SEND_DRAIN_LOCK_SECONDS)
    updated = SendCursor.objects.filter(instance_id__in=ids).filter(free).update(locked_by=worker, locked_until=until)
    if updated == len(ids):
        return ids
    # One read for the rest: a cursor row that exists and was not ours to take is
    # another worker's (it re-checks after releasing); only instances without a
    # cursor row yet take the one-by-one path that creates it.
    cursors = dict(SendCursor.objects.filter(instance_id__in=ids).values_list("instance_id", "locked_by"))
    return [
        i for i in ids if cursors.get(i) == worker or (i not in cursors and _acquire_drain_lock(i, worker))
    ]


def _with_sendable(instance_ids: list[int]) -> set[int]:
    return set(
        OutgoingMessage.objects.filter(
            instance_id__in=instance_ids,
            status=OutgoingStatus.QUEUED,
            instance__state=State.AUTHORIZED,
            instance__is_deleted=False,
        )
        .values_list("instance_id", flat=True)
        .distinct()
    )


def _sweep_locked(ids: list[int], cap: int) -> tuple[dict[int, float | None], dict[int, TransportError]]:
    """One round of ``drain_queues`` over instances whose locks we hold."""
    waits: dict[int, float | None] = dict.fromkeys(ids)
    errors: dict[int, TransportError] = {}
    heads: dict[int, list[OutgoingMessage]] = {}
    instances = {i.pk: i for i in Instance.objects.filter(pk__in=ids, is_deleted=False, state=State.AUTHORIZED)}
    if not instances:
        return waits, errors  # others wait: change_state wakes them on authorization
    # A paced instance sends one message per round, so only its head and the one
    # behind it (whose kind sets the next wait) are read: reading up to ``cap`` rows
    # (and decoding their JSON) per paced message made a deep paced queue cost more
    # per message the deeper it was. ``request`` is the client's original body,
    # which the drain never reads.
    paced_ids = [i for i, instance in instances.items() if int(instance.setting("delaySendMessagesMilliseconds")) > 0]
    within = Q(rank__lte=cap) & ~Q(instance_id__in=paced_ids) if paced_ids else Q(rank__lte=cap)
    ranked = (
        OutgoingMessage.objects.filter(instance_id__in=list(instances), status=OutgoingStatus.QUEUED)
        .defer("request")
        .annotate(rank=Window(RowNumber(), partition_by=[F("instance_id")], order_by=F("id").asc()))
        .filter(within | Q(rank__lte=PACED_LOOKAHEAD) if paced_ids else within)
        .order_by("id")
    )
    for message in ranked:
        heads.setdefault(message.instance_id, []).append(message)
    if not heads:
        return waits, errors
    instances = {pk: instance for pk, instance in instances.items() if pk in heads}
    cursors = {c.instance_id: c for c in SendCursor.objects.filter(instance_id__in=list(instances))}
    batches: dict[int, list[OutgoingMessage]] = {}
    paced: list[int] = []
    now = timezone.now()
    for instance_id in sorted(instances):  # others wait: change_state wakes them on authorization
        closed_for = send_window_wait(instances[instance_id], now)
        if closed_for:
            waits[instance_id] = closed_for  # held outside sendFromUTC-sendToUTC
            continue
        head, cursor = heads[instance_id], cursors.get(instance_id)
        delay = int(instances[instance_id].setting("delaySendMessagesMilliseconds"))
        # An instance with number protection on (messaging.pacing) goes one message at a
        # time even without a delay: its caps are judged per message.
        unpaced = cursor and delay <= 0 and not cursor.last_was_file and pacing.policy(instances[instance_id]) is None
        batch = list(takewhile(lambda m: not m.is_file, head)) if unpaced else []
        if batch:
            batches[instance_id] = batch
            if len(batch) < len(head) or len(head) == cap:
                waits[instance_id] = 0.0  # a file next, or more than one batch waiting
        elif cursor is not None:
            paced.append(instance_id)
    if batches:
        errors.update(_send_batches(batches, instances))
    if paced:
        # One message per instance and round: a paced instance must not hold the
        # sweep (and the other instances' locks) through a long run of short delays.
        # The rounds of drain_queues, then a fresh sweep, carry on with the rest.
        waits.update(_send_paced({i: heads[i] for i in paced}, instances, cursors, cap, errors))
    return waits, errors


def send_window_wait(instance: Instance, now: datetime) -> float:
    """sendFromUTC / sendToUTC: seconds until the instance's UTC sending window
    opens, 0.0 inside it or without one. A window whose end is before its start
    runs over midnight (22:00-06:00); equal ends mean the whole day."""
    start, end = instance.setting("sendFromUTC"), instance.setting("sendToUTC")
    if not start or not end or start == end:
        return 0.0
    utc = now.astimezone(UTC)
    minute = utc.hour * 60 + utc.minute
    opens = int(start[:2]) * 60 + int(start[3:5])
    closes = int(end[:2]) * 60 + int(end[3:5])
    inside = opens <= minute < closes if opens < closes else (minute >= opens or minute < closes)
    if inside:
        return 0.0
    ahead = (opens - minute) % (24 * 60)
    return max(1.0, ahead * 60.0 - utc.second - utc.microsecond / 1e6)


def _send_paced(
    heads: Mapping[int, list[OutgoingMessage]],
    instances: Mapping[int, Instance],
    cursors: Mapping[int, SendCursor],
    cap: int,
    errors: dict[int, TransportError],
) -> dict[int, float | None]:
    """Send the head of each paced queue (a delay, or a file) whose turn has come,
    all of them in one ``_send_batches`` (one claim, one engine call per instance,
    one status transaction), as unpaced batches go. Transient engine errors are
    added to ``errors``.

    Returns per instance the seconds until its next message is due: a head not due
    yet keeps its wait; after a send, the wait for the message behind it (known
    from ``heads``, so no second round reads the queue only to learn it), 0.0 when
    that is short enough to sleep (another round sends it) or more may be queued
    than ``heads`` showed, None when ``heads`` held the last one (the sweep's idle
    re-check finds any that arrived since). Short waits are slept here, once for
    all the instances due within them; longer ones go back to the caller, which
    re-schedules instead of holding the worker. For an instance with number
    protection on (messaging.pacing) the wait after a send is the delay's; the
    protection's own (jitter, caps) is judged when the next round comes back."""
    waits: dict[int, float | None] = {}
    due_now: dict[int, list[OutgoingMessage]] = {}
    judged: dict[int, tuple[pacing.Policy, pacing.Verdict]] = {}
    longest = 0.0
    now = timezone.now()
    for instance_id, queued in heads.items():
        instance, cursor = instances[instance_id], cursors[instance_id]
        due = _next_send_at(cursor, instance, queued[0].is_file)
        rules = pacing.policy(instance)
        if rules is not None:
            # Number protection (jitter, new-chat cap, warm-up): a held message stays
            # queued at the head and the caller comes back after ``wait``.
            verdict = pacing.check(rules, instance, queued[0], last_sent_at=cursor.last_sent_at, due=due)
            judged[instance_id] = (rules, verdict)
            wait = verdict.wait
        else:
            wait = 0.0 if due is None else (due - now).total_seconds()
        if wait > MAX_INLINE_WAIT_SECONDS:
            waits[instance_id] = wait
            continue
        due_now[instance_id] = queued[:1]
        longest = max(longest, wait)
    if not due_now:
        return waits
    if longest > 0:
        time.sleep(longest)  # every one of them is due by then
    handed: dict[int, bool] = {}
    errors.update(_send_batches(due_now, {i: instances[i] for i in due_now}, handed))
    handed_at = timezone.now()  # at or after the cursor's last_sent_at: never early
    for instance_id, (sent,) in due_now.items():
        queued = heads[instance_id]
        if instance_id in errors:
            continue
        if instance_id not in handed:
            # It failed before reaching the engine (a file that could not be
            # fetched): it set no pace, so the next one is due as this one was.
            waits[instance_id] = 0.0 if len(queued) >= 2 or len(queued) >= cap else None
            continue
        if instance_id in judged:
            rules, verdict = judged[instance_id]
            pacing.sent(rules, instances[instance_id], sent, verdict)
        if len(queued) < 2:
            waits[instance_id] = 0.0 if len(queued) >= cap else None
            continue
        after = SendCursor(instance_id=instance_id, last_sent_at=handed_at, last_was_file=sent.is_file)
        due = _next_send_at(after, instances[instance_id], queued[1].is_file)
        wait = 0.0 if due is None else (due - handed_at).total_seconds()
        waits[instance_id] = wait if wait > MAX_INLINE_WAIT_SECONDS else 0.0
    return waits


def _claim(messages: list[OutgoingMessage]) -> list[OutgoingMessage]:
    """queued → sending for the messages still queued (a clearMessagesQueue may have
    removed some meanwhile). Only what this call claimed reaches the engine."""
    now = timezone.now()
    pks = [m.pk for m in messages]
    claimed = OutgoingMessage.objects.filter(pk__in=pks, status=OutgoingStatus.QUEUED).update(
        status=OutgoingStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if claimed == len(pks):
        return messages
    mine = set(
        OutgoingMessage.objects.filter(pk__in=pks, status=OutgoingStatus.SENDING, claimed_at=now).values_list(
            "pk", flat=True
        )
    )
    return [m for m in messages if m.pk in mine]


def _send_batches(
    batches: Mapping[int, list[OutgoingMessage]],
    instances: Mapping[int, Instance],
    handed_out: dict[int, bool] | None = None,
) -> dict[int, TransportError]:
    """Claim, hand each instance's messages to its engine in order, record every
    outcome in one transaction. Returns the instances whose engine failed
    transiently: their failed message and those after it are back at the queue head
    (order kept), after the ones that went out were recorded. Engines are idempotent
    per idMessage, so a crash between the engine call and the status write re-sends
    nothing twice. ``handed_out`` (when given) receives, per instance whose engine took
    a message, whether the last one it took was a file: a message that failed before
    reaching the engine (its file could not be fetched) never left, so it sets no
    pace."""
    claimed = _claim([m for batch in batches.values() for m in batch])
    by_instance: dict[int, list[OutgoingMessage]] = {}
    for message in claimed:
        by_instance.setdefault(message.instance_id, []).append(message)
    outcomes: list[tuple[int, OutgoingStatus, str]] = []
    unsent: list[int] = []
    last_handed: dict[int, bool] = {}  # instance → whether the last message that left was a file
    errors: dict[int, TransportError] = {}
    prepared: dict[int, list[tuple[OutgoingMessage, OutgoingPayload]]] = {}
    posted: list[tuple[int, str, tuple[str, ...]]] = []  # statuses: their audience
    for instance_id, messages in by_instance.items():
        ready = prepared[instance_id] = []
        for message in messages:
            try:
                data = media.prepare_payload(message)
            except media.MediaError as exc:
                outcomes.append((message.pk, OutgoingStatus.FAILED, str(exc)))
                continue
            ready.append(
                (
                    message,
                    OutgoingPayload(
                        id_message=message.id_message,
                        chat_id=message.chat_id,
                        type_message=message.type_message,
                        data=data,
                        first_attempt=message.attempts == 0,  # read before our claim counted it
                    ),
                )
            )
    sent = send_for_instances(
        {
            instance_id: (get_transport(instances[instance_id]), [payload for _, payload in ready])
            for instance_id, ready in prepared.items()
            if ready
        }
    )
    attempts: list[dict[str, Any]] = []  # the send attempt log (SendAttempt), one INSERT
    handed_at = timezone.now()
    for instance_id, results in sent.items():
        ready = prepared[instance_id]
        for index, (message, _) in enumerate(ready):
            result = results[index] if index < len(results) else None
            if result is not None:
                if isinstance(result, TransportError):
                    outcome = str(OutgoingStatus.FAILED) if result.permanent else ATTEMPT_ERROR
                else:
                    outcome = result.status
                attempts.append(
                    {
                        "message_id": message.pk,
                        "instance_id": instance_id,
                        "id_message": message.id_message,
                        "attempt": message.attempts + 1,  # loaded before our claim counted it
                        "outcome": outcome[:16],
                        "created_at": handed_at,
                    }
                )
            if result is None or (isinstance(result, TransportError) and not result.permanent):
                if isinstance(result, TransportError):
                    errors[instance_id] = result
                unsent.extend(m.pk for m, _ in ready[index:])
                break
            if isinstance(result, TransportError):
                outcomes.append((message.pk, OutgoingStatus.FAILED, str(result)))
            else:
                outcomes.append((message.pk, OutgoingStatus(result.status), result.description))
                if result.recipients:
                    posted.append((instance_id, message.id_message, result.recipients))
            # Pacing counts what reached the engine: a file whose fetch failed never
            # left, so it imposes no file interval on the next message.
            last_handed[instance_id] = message.is_file
    if handed_out is not None:
        handed_out.update(last_handed)
    with transaction.atomic():
        insert_values(SendAttempt, attempts)
        record_statuses(outcomes, instances=instances)
        # Receipts that overtook this hand-over (one indexed read, nearly always empty).
        release_held_receipts([pk for pk, status, _ in outcomes if status not in PENDING_STATUSES])
        if posted:  # statuses records each status's audience
            moment = timezone.now()
            sink.emit_many(
                [(pk, StatusPostedEvent(id_message, audience, moment)) for pk, id_message, audience in posted]
            )
        if unsent:
            # Back to the queue head: order is kept, the retry or the beat sends them.
            OutgoingMessage.objects.filter(pk__in=unsent, status=OutgoingStatus.SENDING).update(
                status=OutgoingStatus.QUEUED
            )
        now = timezone.now()
        until = db_in(settings.SEND_DRAIN_LOCK_SECONDS)  # renewed on the database's clock
        for was_file in (False, True):
            handed = [i for i, last in last_handed.items() if last is was_file]
            if handed:
                SendCursor.objects.filter(instance_id__in=handed).update(
                    last_sent_at=now, last_was_file=was_file, locked_until=until
                )
    return errors


# --- Statuses -----------------------------------------------------------------------------

_ORDER = {
    OutgoingStatus.QUEUED: 0,
    OutgoingStatus.SENDING: 1,
    OutgoingStatus.SENT: 2,
    OutgoingStatus.DELIVERED: 3,
    OutgoingStatus.READ: 4,
}


_STAMPS = {
    OutgoingStatus.SENT: ("sent_at",),
    OutgoingStatus.DELIVERED: ("delivered_at", "sent_at"),
    OutgoingStatus.READ: ("read_at", "delivered_at", "sent_at"),
}


def record_status(message_id: int, status: OutgoingStatus, description: str = "") -> bool:
    """Move a message forward (sent → delivered → read, or to a failure) and log the
    change. Receipts arriving out of order never move a message backwards."""
    return bool(record_statuses([(message_id, status, description)]))


def record_statuses(
    changes: Sequence[tuple[int, OutgoingStatus, str]], *, instances: Mapping[int, Instance] | None = None
) -> list[int]:
    """``record_status`` for many messages in one transaction: the rows are locked in
    one statement, updated with one UPDATE per target status, their changes logged
    with one INSERT, and their notifications written per instance with one INSERT
    (journals.services.ingest_events). Changes apply in the order given; the ones
    that would move a message backwards (or out of a failure) are skipped. Returns
    the ids of the messages that changed. ``instances`` may hold the messages'
    instances when the caller has them loaded already."""
    if not changes:
        return []
    with transaction.atomic():
        # Plain rows, not model instances: building a model per locked row (with its
        # init signals) was a third of the status write's CPU.
        rows = {
            values[0]: _Locked(*values)
            for values in OutgoingMessage.objects.select_for_update(no_key=True)
            .filter(pk__in={pk for pk, _, _ in changes})
            .order_by("pk")
            .values_list(*_Locked.__dataclass_fields__)
        }
        now = timezone.now()
        final: dict[int, tuple[OutgoingStatus, str]] = {}
        logged: list[dict[str, Any]] = []
        per_instance: dict[int, list[ApiMessageEvent | StatusEvent]] = {}
        for pk, status, description in changes:
            message = rows.get(pk)
            if message is None:
                continue
            current = OutgoingStatus(message.status)
            if current == status or current not in _ORDER:
                continue  # unchanged, or already failed: final
            if status in _ORDER and _ORDER[status] < _ORDER[current]:
                continue
            description = description[:500]
            per_instance.setdefault(message.instance_id, []).extend(
                _status_events(message, current, status, description, now)
            )
            message.status = status
            final[pk] = (status, description)
            logged.append({"message_id": pk, "status": status, "description": description, "created_at": now})
        groups: dict[tuple[OutgoingStatus, str], list[int]] = {}
        for pk, key in final.items():
            groups.setdefault(key, []).append(pk)
        for (status, description), pks in groups.items():
            fields: dict[str, Any] = {"status": status, "description": description}
            stamps = _STAMPS.get(status, ())
            for index, stamp in enumerate(stamps):
                # The status's own stamp is now; the earlier ones keep their value
                # (a message read before we saw it delivered is delivered now too).
                fields[stamp] = now if index == 0 else Coalesce(F(stamp), Value(now, output_field=DateTimeField()))
            OutgoingMessage.objects.filter(pk__in=pks).update(**fields)
        insert_values(MessageStatusChange, logged)
        # bulk_create and update() fire no post_save: open chat pages get their hint
        # here, one per instance (naming the chat when the batch touched only one).
        chats: dict[int, set[str]] = {}
        for pk in final:
            chats.setdefault(rows[pk].instance_id, set()).add(rows[pk].chat_id)
        events.prime_watched(chats)  # one Redis round trip for the batch's instances
        for instance_id, touched in chats.items():
            events.journal_changed(instance_id, "chat", next(iter(touched)) if len(touched) == 1 else "")
        if per_instance:  # journals turns them into notifications, one batch
            known = dict(instances or {})
            missing = [pk for pk in per_instance if pk not in known]
            if missing:
                known.update({i.pk: i for i in Instance.objects.filter(pk__in=missing)})
            sink.emit_many([(known[pk], SendReport(tuple(per_instance[pk]))) for pk in per_instance])
    return list(final)


@dataclass(slots=True)
class _Locked:
    """What ``record_statuses`` reads of a locked message (field names as the model's)."""

    pk: int
    instance_id: int
    status: str
    chat_id: str
    id_message: str
    type_message: str
    payload: dict[str, Any]


def _status_events(
    message: _Locked, current: OutgoingStatus, status: OutgoingStatus, description: str, now: Any
) -> list[ApiMessageEvent | StatusEvent]:
    """outgoingAPIMessageReceived when the message left the queue, then
    outgoingMessageStatus."""
    out: list[ApiMessageEvent | StatusEvent] = []
    statuses = [status]
    if current in PENDING_STATUSES and status in (OutgoingStatus.SENT, OutgoingStatus.DELIVERED, OutgoingStatus.READ):
        # The engine may report delivered before the sender recorded sent (the peer's
        # session was faster): the message still left, and clients still get the
        # outgoingAPIMessageReceived and the "sent" status first.
        out.append(
            ApiMessageEvent(
                chat_id=message.chat_id,
                id_message=message.id_message,
                message_data=message_data_from_payload(message.type_message, message.payload),
                timestamp=now,
            )
        )
        if status != OutgoingStatus.SENT:
            statuses = [OutgoingStatus.SENT, status]
    for each in statuses:
        out.append(
            StatusEvent(
                chat_id=message.chat_id,
                id_message=message.id_message,
                status=str(each),
                timestamp=now,
                description=description if each == status else "",
            )
        )
    return out


def record_status_by_id_message(instance_id: int, id_message: str, status: OutgoingStatus) -> bool:
    """record_status for a message known by its wire id (engine receipts)."""
    pk = (
        OutgoingMessage.objects.filter(instance_id=instance_id, id_message=id_message)
        .values_list("pk", flat=True)
        .first()
    )
    return record_status(pk, status) if pk is not None else False


_RECEIPT_STATUS = {
    "delivered": OutgoingStatus.DELIVERED,
    "read": OutgoingStatus.READ,
    "played": OutgoingStatus.READ,
    "failed": OutgoingStatus.FAILED,
}


def consume_receipts(pairs: Sequence[tuple[Any, ReceiptEvent]]) -> None:
    """The sink's consumer for engine receipts: each message (ours, by instance and
    wire id) moves to delivered / read, or to failed with the engine's reason
    (``description``); never back (``record_statuses`` is monotonic), all of a batch
    in one transaction. GREEN-API has no ``played`` status: a played voice message
    counts as read."""
    wanted = [(target if isinstance(target, int) else target.pk, event) for target, event in pairs]
    with transaction.atomic():
        # Locked, so a receipt and the drain's hand-over of the same message are
        # serialised: either the hand-over committed first and the receipt applies
        # now, or the receipt is held first and the hand-over's transaction (which
        # locks the same rows, then reads the held receipts) releases it.
        rows = (
            OutgoingMessage.objects.select_for_update(no_key=True)
            .filter(instance_id__in={i for i, _ in wanted}, id_message__in={e.id_message for _, e in wanted})
            .order_by("pk")
            .values_list("instance_id", "id_message", "pk", "status")
        )
        found = {(instance_id, id_message): (pk, status) for instance_id, id_message, pk, status in rows}
        changes: list[tuple[int, OutgoingStatus, str]] = []
        held: list[dict[str, Any]] = []
        now = timezone.now()
        for i, e in wanted:
            if (i, e.id_message) not in found:
                continue  # not one of ours (sent from the phone, or deleted)
            pk, status = found[(i, e.id_message)]
            change = (pk, _RECEIPT_STATUS[e.status], e.description)
            if status in PENDING_STATUSES:
                # The receipt overtook the hand-over (see HeldReceipt): moving the
                # message on now would make it final with no attempt logged.
                held.append(
                    {"message_id": pk, "status": change[1], "description": change[2][:500], "created_at": now}
                )
            else:
                changes.append(change)
        insert_values(HeldReceipt, held)
        record_statuses(changes)


def release_held_receipts(message_ids: Sequence[int]) -> list[int]:
    """Apply the receipts held for these messages (their hand-over is recorded now),
    in arrival order, and forget them. Called inside the transaction that records the
    hand-over; returns the ids of the messages that changed."""
    if not message_ids:
        return []
    held = list(
        HeldReceipt.objects.filter(message_id__in=message_ids)
        .order_by("id")
        .values_list("id", "message_id", "status", "description")
    )
    if not held:
        return []
    HeldReceipt.objects.filter(pk__in=[h[0] for h in held]).delete()
    return record_statuses([(message_id, OutgoingStatus(status), text) for _, message_id, status, text in held])


def consume_state_changes(pairs: Sequence[tuple[Any, StateEvent]]) -> None:
    """Messages queued while the instance was not authorized go out once it is."""
    for target, event in pairs:
        if event.state == State.AUTHORIZED:
            instance_id = target if isinstance(target, int) else target.pk
            transaction.on_commit(partial(wake_queue, instance_id))


# --- Housekeeping (beat) ------------------------------------------------------------------


def recover_queues() -> dict[str, int]:
    """Make the queue crash-safe: re-queue rows stuck in ``sending``, expire rows
    older than 24 h, forget idempotency keys after 24 h, and wake every authorized
    instance that has queued rows and no live drain lock."""
    now = timezone.now()
    requeued = OutgoingMessage.objects.filter(
        status=OutgoingStatus.SENDING, claimed_at__lt=now - timedelta(seconds=settings.SEND_STUCK_AFTER_SECONDS)
    ).update(status=OutgoingStatus.QUEUED)
    old = OutgoingMessage.objects.filter(status=OutgoingStatus.QUEUED, created_at__lt=now - QUEUE_RETENTION)
    # A queue that number protection holds (messaging.pacing: warm-up, new-chat cap)
    # moves at its own pace on an authorized instance: its rows wait, never expire.
    waiting_on_pacing = pacing.holding_queues(set(old.values_list("instance_id", flat=True).distinct()))
    expired_ids = list(old.exclude(instance_id__in=waiting_on_pacing).values_list("pk", flat=True)[:10_000])
    expiry = "Message expired: the instance was not authorized for 24 hours"
    for start in range(0, len(expired_ids), 500):
        record_statuses([(pk, OutgoingStatus.FAILED, expiry) for pk in expired_ids[start : start + 500]])
    OutgoingMessage.objects.filter(created_at__lt=now - IDEMPOTENCY_WINDOW).exclude(idempotency_key="").update(
        idempotency_key=""
    )
    released = _sweep_held_receipts(now)
    busy = SendCursor.objects.filter(locked_until__gte=db_now()).exclude(locked_by="").values("instance_id")
    waiting = (
        OutgoingMessage.objects.filter(status=OutgoingStatus.QUEUED, instance__state=State.AUTHORIZED)
        .exclude(instance_id__in=busy)
        .values_list("instance_id", flat=True)
        .distinct()
    )
    woken = 0
    for instance_id in waiting:
        wake_queue(instance_id, force=True)
        woken += 1
    return {"requeued": requeued, "expired": len(expired_ids), "woken": woken, "released": released}


def _sweep_held_receipts(now: datetime) -> int:
    """Release held receipts whose message is no longer pending (a hand-over recorded
    by a path that does not release them, such as a failure), and forget those older
    than the queue's retention: their message never left."""
    HeldReceipt.objects.filter(created_at__lt=now - QUEUE_RETENTION).delete()
    ready = list(
        HeldReceipt.objects.exclude(
            message_id__in=OutgoingMessage.objects.filter(status__in=PENDING_STATUSES).values("pk")
        )
        .values_list("message_id", flat=True)
        .distinct()[:10_000]
    )
    with transaction.atomic():
        return len(release_held_receipts(ready))


def prune_send_attempts(limit: int = 10_000) -> int:
    """Delete up to ``limit`` send attempt log rows older than
    SEND_ATTEMPT_RETENTION_DAYS (0 keeps them). Rows are appended in time order, so
    the oldest keys are the ones to go: found by walking the primary key (the log
    has no other index, to keep its one INSERT per batch cheap)."""
    days = settings.SEND_ATTEMPT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    ids = list(SendAttempt.objects.filter(created_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    deleted, _ = SendAttempt.objects.filter(pk__in=ids).delete()
    return deleted


# --- Presence -----------------------------------------------------------------------


def send_typing(instance: Instance, *, chat_id: str, milliseconds: int, recording: bool) -> None:
    """Show a typing (or recording) indicator in the chat for ``milliseconds``.
    Needs a linked, authorized account (``NotAuthorized``); an engine error is
    raised to the caller, not reported as shown."""
    check_authorized(instance)
    get_transport(instance).send_presence(chat_id=chat_id, milliseconds=milliseconds, recording=recording)
