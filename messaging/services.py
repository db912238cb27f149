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
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from instances.models import EmuMessage, Engine, Instance, State
from instances.transport import TransportError, get_transport
from instances.transport.base import OutgoingPayload
from messaging import media
from messaging.models import (
    PENDING_STATUSES,
    MessageStatusChange,
    OutgoingMessage,
    OutgoingStatus,
    SendCursor,
)

log = logging.getLogger(__name__)

QUEUE_RETENTION = timedelta(hours=24)
IDEMPOTENCY_WINDOW = timedelta(hours=24)
FILE_MIN_INTERVAL_MS = 5000
# A drain sleeps in-process only for short gaps; longer ones are re-scheduled with a
# countdown so one slow instance never holds a worker that others need.
MAX_INLINE_WAIT_SECONDS = 0.25
SHOW_QUEUE_LIMIT = 500


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
) -> OutgoingMessage:
    """Queue one message and wake the instance's drain on commit.

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
            if instance.setting("markIncomingMessagesReadedOnReply"):
                from journals.services import mark_chat_read

                mark_chat_read(instance, chat_id)
    except IntegrityError:
        # Two requests with one key raced; the other one committed first.
        if idempotency_key:
            existing = OutgoingMessage.objects.filter(instance=instance, idempotency_key=idempotency_key).first()
            if existing is not None:
                return existing
        raise
    return message


def wake_queue(instance_id: int, countdown: float = 0) -> None:
    """Ask a worker to drain the instance's queue. Never raises: if the broker is
    down the rows stay queued and ``recover_queues`` wakes them later."""
    from messaging.tasks import drain_queue_task

    try:
        if countdown > 0:
            if drain_queue_task.app.conf.task_always_eager:
                return  # eager mode (tests) has no clock: the caller drives time
            drain_queue_task.apply_async(
                (instance_id,), countdown=countdown, queue=settings.CELERY_TASK_DEFAULT_QUEUE
            )
        else:
            drain_queue_task.apply_async((instance_id,), queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    except Exception:  # noqa: BLE001 - the database already holds the work
        log.warning("could not enqueue drain for instance %s; beat will recover it", instance_id, exc_info=True)


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


def _acquire_drain_lock(instance_id: int, worker: str) -> bool:
    now = timezone.now()
    if not Instance.objects.filter(pk=instance_id, is_deleted=False).exists():
        return False  # a wake-up for an instance that is gone
    SendCursor.objects.get_or_create(instance_id=instance_id)
    return (
        SendCursor.objects.filter(instance_id=instance_id)
        .filter(Q(locked_by="") | Q(locked_until__lt=now) | Q(locked_until__isnull=True) | Q(locked_by=worker))
        .update(locked_by=worker, locked_until=now + timedelta(seconds=settings.SEND_DRAIN_LOCK_SECONDS))
        == 1
    )


def _release_drain_lock(instance_id: int, worker: str) -> None:
    SendCursor.objects.filter(instance_id=instance_id, locked_by=worker).update(locked_by="", locked_until=None)


def _next_send_at(cursor: SendCursor, instance: Instance, is_file: bool) -> Any:
    if cursor.last_sent_at is None:
        return None
    delay_ms = int(instance.setting("delaySendMessagesMilliseconds"))
    if is_file or cursor.last_was_file:
        delay_ms = max(delay_ms, FILE_MIN_INTERVAL_MS)
    return cursor.last_sent_at + timedelta(milliseconds=delay_ms)


def drain_queue(instance_id: int, worker: str, *, max_messages: int = 1000) -> float | None:
    """Send the instance's queued messages oldest first, paced by its delay.

    Holds the instance's drain lock so two workers never send for one instance.
    Returns seconds to wait before the next message is due (the caller re-schedules)
    or None when the queue is empty or cannot move now (not authorized)."""
    if not _acquire_drain_lock(instance_id, worker):
        return None  # another worker is draining; it re-checks after releasing
    try:
        result = _drain_locked(instance_id, worker, max_messages)
    finally:
        _release_drain_lock(instance_id, worker)
    if result is None and _has_sendable(instance_id):
        # A wake-up that arrived while we held the lock was dropped (see above);
        # its row may have committed after our last look. Go round once more.
        return 0.0
    return result


def _has_sendable(instance_id: int) -> bool:
    return OutgoingMessage.objects.filter(
        instance_id=instance_id,
        status=OutgoingStatus.QUEUED,
        instance__state=State.AUTHORIZED,
        instance__is_deleted=False,
    ).exists()


def _drain_locked(instance_id: int, worker: str, max_messages: int) -> float | None:
    """drain_queue's loop; the caller holds the instance's drain lock."""
    for _ in range(max_messages):
        instance = Instance.objects.filter(pk=instance_id, is_deleted=False).first()
        if instance is None or instance.state != State.AUTHORIZED:
            return None  # messages wait; change_state wakes us on authorization
        message = (
            OutgoingMessage.objects.filter(instance_id=instance_id, status=OutgoingStatus.QUEUED)
            .order_by("id")
            .first()
        )
        if message is None:
            return None
        cursor = SendCursor.objects.get(instance_id=instance_id)
        due = _next_send_at(cursor, instance, message.is_file)
        if due is not None:
            wait = (due - timezone.now()).total_seconds()
            if wait > MAX_INLINE_WAIT_SECONDS:
                return wait
            if wait > 0:
                time.sleep(wait)
        _send_one(instance, message, worker)
    return 0.0  # more work left: let the caller re-enqueue (fairness)


def _send_one(instance: Instance, message: OutgoingMessage, worker: str) -> None:
    now = timezone.now()
    claimed = OutgoingMessage.objects.filter(pk=message.pk, status=OutgoingStatus.QUEUED).update(
        status=OutgoingStatus.SENDING, claimed_at=now, attempts=message.attempts + 1
    )
    if claimed != 1:
        return  # cleared or taken meanwhile
    try:
        data = media.prepare_payload(message)
    except media.MediaError as exc:
        record_status(message.pk, OutgoingStatus.FAILED, str(exc))
        return
    payload = OutgoingPayload(
        id_message=message.id_message,
        chat_id=message.chat_id,
        type_message=message.type_message,
        data=data,
    )
    try:
        result = get_transport(instance).send_message(payload)
    except TransportError as exc:
        if exc.permanent:
            record_status(message.pk, OutgoingStatus.FAILED, str(exc))
        else:
            # Back to the queue head: order is kept, the beat or next wake retries.
            OutgoingMessage.objects.filter(pk=message.pk, status=OutgoingStatus.SENDING).update(
                status=OutgoingStatus.QUEUED
            )
            raise
        return
    with transaction.atomic():
        record_status(message.pk, OutgoingStatus(result.status), result.description)
        SendCursor.objects.filter(instance_id=instance.pk).update(
            last_sent_at=timezone.now(),
            last_was_file=message.is_file,
            locked_until=timezone.now() + timedelta(seconds=settings.SEND_DRAIN_LOCK_SECONDS),
        )


# --- Statuses -----------------------------------------------------------------------------

_ORDER = {
    OutgoingStatus.QUEUED: 0,
    OutgoingStatus.SENDING: 1,
    OutgoingStatus.SENT: 2,
    OutgoingStatus.DELIVERED: 3,
    OutgoingStatus.READ: 4,
}


def record_status(message_id: int, status: OutgoingStatus, description: str = "") -> bool:
    """Move a message forward (sent → delivered → read, or to a failure) and log the
    change. Receipts arriving out of order never move a message backwards."""
    with transaction.atomic():
        message = (
            OutgoingMessage.objects.select_for_update(no_key=True, of=("self",))
            .select_related("instance")
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            return False
        current = OutgoingStatus(message.status)
        if current == status:
            return False
        if status in _ORDER and current in _ORDER and _ORDER[status] < _ORDER[current]:
            return False
        if current not in _ORDER:
            return False  # already failed: final
        now = timezone.now()
        fields: dict[str, Any] = {"status": status, "description": description[:500]}
        if status == OutgoingStatus.SENT:
            fields["sent_at"] = now
        elif status == OutgoingStatus.DELIVERED:
            fields["delivered_at"] = now
            if message.sent_at is None:
                fields["sent_at"] = now
        elif status == OutgoingStatus.READ:
            fields["read_at"] = now
            fields["delivered_at"] = message.delivered_at or now
            fields["sent_at"] = message.sent_at or now
        OutgoingMessage.objects.filter(pk=message_id).update(**fields)
        MessageStatusChange.objects.create(message_id=message_id, status=status, description=description[:500])
        _notify_status(message, status, description, now)
    return True


def _notify_status(message: OutgoingMessage, status: OutgoingStatus, description: str, now: Any) -> None:
    """outgoingAPIMessageReceived when the message left, then outgoingMessageStatus."""
    from journals.notifications import ApiMessageEvent, StatusEvent, message_data_from_payload
    from journals.services import ingest_event

    instance = message.instance
    left_queue = message.status in PENDING_STATUSES and status in (
        OutgoingStatus.SENT,
        OutgoingStatus.DELIVERED,
        OutgoingStatus.READ,
    )
    statuses = [status]
    if left_queue:
        # The engine may report delivered before the sender recorded sent (the peer's
        # session was faster): the message still left, and clients still get the
        # outgoingAPIMessageReceived and the "sent" status first.
        ingest_event(
            instance,
            ApiMessageEvent(
                chat_id=message.chat_id,
                id_message=message.id_message,
                message_data=message_data_from_payload(message.type_message, message.payload),
                timestamp=now,
            ),
        )
        if status != OutgoingStatus.SENT:
            statuses = [OutgoingStatus.SENT, status]
    for each in statuses:
        ingest_event(
            instance,
            StatusEvent(
                chat_id=message.chat_id,
                id_message=message.id_message,
                status=str(each),
                timestamp=now,
                description=description[:500] if each == status else "",
            ),
        )


def record_status_by_id_message(instance_id: int, id_message: str, status: OutgoingStatus) -> bool:
    """record_status for a message known by its wire id (engine receipts)."""
    pk = (
        OutgoingMessage.objects.filter(instance_id=instance_id, id_message=id_message)
        .values_list("pk", flat=True)
        .first()
    )
    return record_status(pk, status) if pk is not None else False


def emulate_receipts(runner_id: str, *, delivered_after: float, read_after: float) -> int:
    """Simulated contacts acknowledge: delivered after ``delivered_after`` seconds,
    read after ``read_after``. Called by a session runner for the instances it
    leases; record_status is monotonic, so a second runner doing it is harmless.

    Messages to phones that are linked to one of our instances are acknowledged by
    that instance's session instead (delivered when it takes them in, read when it
    reads the chat): see instances.emulator_session."""
    now = timezone.now()
    changed = 0
    linked = Instance.objects.filter(engine=Engine.EMULATOR, is_deleted=False).exclude(wid="").values("wid")
    mine = OutgoingMessage.objects.filter(
        instance__lease__runner_id=runner_id, instance__engine=Engine.EMULATOR
    ).exclude(chat_id__in=linked)
    # Two queries, each only over rows that are due, so a backlog of one kind (say
    # thousands of delivered messages waiting to be read) never starves the other.
    steps = (
        (OutgoingStatus.SENT, OutgoingStatus.DELIVERED, "delivered_at", delivered_after),
        (OutgoingStatus.DELIVERED, OutgoingStatus.READ, "read_at", read_after),
    )
    for current, target, stamp, after in steps:
        due = (
            mine.filter(status=current, sent_at__lte=now - timedelta(seconds=after))
            .order_by("sent_at")
            .values_list("pk", "instance__phone", "id_message")[:1000]
        )
        for pk, phone, id_message in due:
            if record_status(pk, target):
                EmuMessage.objects.filter(sender=phone, id_message=id_message).update(**{stamp: now})
                changed += 1
    return changed


# --- Housekeeping (beat) ------------------------------------------------------------------


def recover_queues() -> dict[str, int]:
    """Make the queue crash-safe: re-queue rows stuck in ``sending``, expire rows
    older than 24 h, forget idempotency keys after 24 h, and wake every authorized
    instance that has queued rows and no live drain lock."""
    now = timezone.now()
    requeued = OutgoingMessage.objects.filter(
        status=OutgoingStatus.SENDING, claimed_at__lt=now - timedelta(seconds=settings.SEND_STUCK_AFTER_SECONDS)
    ).update(status=OutgoingStatus.QUEUED)
    expired_ids = list(
        OutgoingMessage.objects.filter(
            status=OutgoingStatus.QUEUED, created_at__lt=now - QUEUE_RETENTION
        ).values_list("pk", flat=True)[:10_000]
    )
    for pk in expired_ids:
        record_status(pk, OutgoingStatus.FAILED, "Message expired: the instance was not authorized for 24 hours")
    OutgoingMessage.objects.filter(created_at__lt=now - IDEMPOTENCY_WINDOW).exclude(idempotency_key="").update(
        idempotency_key=""
    )
    busy = SendCursor.objects.filter(locked_until__gte=now).exclude(locked_by="").values("instance_id")
    waiting = (
        OutgoingMessage.objects.filter(status=OutgoingStatus.QUEUED, instance__state=State.AUTHORIZED)
        .exclude(instance_id__in=busy)
        .values_list("instance_id", flat=True)
        .distinct()
    )
    woken = 0
    for instance_id in waiting:
        wake_queue(instance_id)
        woken += 1
    return {"requeued": requeued, "expired": len(expired_ids), "woken": woken}


# --- Forwarding and presence -----------------------------------------------------------


class UnknownMessageError(Exception):
    """A forwarded id is not a message of the source chat known to this instance."""


def _source_messages(instance: Instance, chat_id_from: str, id_messages: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """(typeMessage, payload) of known messages in ``chat_id_from`` by idMessage:
    ones we sent there, and ones the chat sent us on the network."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for id_message, type_message, payload in OutgoingMessage.objects.filter(
        instance=instance, chat_id=chat_id_from, id_message__in=id_messages
    ).values_list("id_message", "type_message", "payload"):
        found[id_message] = (type_message, payload)
    if instance.phone and chat_id_from.endswith("@c.us"):
        sender = chat_id_from.split("@", 1)[0]
        for id_message, type_message, payload in EmuMessage.objects.filter(
            sender=sender, recipient=instance.phone, id_message__in=id_messages
        ).values_list("id_message", "type_message", "payload"):
            found.setdefault(id_message, (type_message, payload))
    return found


def forward_messages(
    *,
    instance: Instance,
    chat_id: str,
    chat_id_from: str,
    id_messages: list[str],
    typing_time: int | None = None,
    idempotency_key: str = "",
) -> list[OutgoingMessage]:
    """Queue copies of messages from another chat, marked forwarded, in the given
    order. One showMessagesQueue item (ForwardMessages) lists them all."""
    if idempotency_key:
        first = OutgoingMessage.objects.filter(instance=instance, idempotency_key=idempotency_key).first()
        if first is not None:
            return list(
                OutgoingMessage.objects.filter(
                    instance=instance, method="forwardMessages", request=first.request, created_at=first.created_at
                ).order_by("id")
            )
    sources = _source_messages(instance, chat_id_from, id_messages)
    for id_message in id_messages:
        if id_message not in sources:
            raise UnknownMessageError(id_message)
    echo: dict[str, Any] = {"chatId": chat_id, "chatIdFrom": chat_id_from, "messages": id_messages}
    if typing_time is not None:
        echo["typingTime"] = typing_time
    now = timezone.now()
    with transaction.atomic():
        created = []
        for index, id_message in enumerate(id_messages):
            type_message, payload = sources[id_message]
            created.append(
                OutgoingMessage.objects.create(
                    instance=instance,
                    chat_id=chat_id,
                    method="forwardMessages",
                    type_message=type_message,
                    request=echo,
                    payload={
                        **payload,
                        "isForwarded": True,
                        "forwardingScore": 1,
                        "forwardedFrom": id_message,
                        **({"typingTime": typing_time} if typing_time else {}),
                    },
                    is_file=bool(payload.get("fileName")),
                    idempotency_key=idempotency_key if index == 0 else "",
                    created_at=now,
                )
            )
        transaction.on_commit(lambda: wake_queue(instance.id))
    return created


def send_typing(instance: Instance, *, chat_id: str, milliseconds: int, recording: bool) -> None:
    """Show a typing (or recording) indicator. Presence is best effort: an instance
    that is not connected simply shows nothing, as on WhatsApp."""
    if instance.state != State.AUTHORIZED:
        return
    try:
        get_transport(instance).send_presence(chat_id=chat_id, milliseconds=milliseconds, recording=recording)
    except TransportError:
        log.info("typing indicator for %s not shown", instance.id, exc_info=True)
