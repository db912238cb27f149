"""One way in for engine events, and the notification queue's operations.

``ingest_event`` writes the journal rows and at most one notification for an event
in one transaction; the per-instance ``NotificationCursor`` row lock makes receiptIds
increase in commit order. On commit, long-pollers are woken (and webhook delivery
is enqueued when the instance has a webhookUrl).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from engines.contract import STATUS_BROADCAST, TransportError
from engines.events import CallEvent, GroupEvent, HistoryEvent, MessageEvent, SendQueuedEvent, SendReport
from engines.registry import get_transport
from instances import events
from instances.bulk import insert_rows
from instances.models import Instance
from journals import chats, webhooks
from journals.models import (
    Call,
    ChatState,
    Direction,
    JournalMessage,
    Notification,
    NotificationCursor,
    NotificationState,
)
from journals.notifications import ApiMessageEvent, IngestEvent, build_body, is_enabled, type_webhook

log = logging.getLogger(__name__)

CLEAR_QUEUE_INTERVAL = timedelta(minutes=1)


def ingest_event(instance: Instance, event: IngestEvent) -> Notification | None:
    """Record an engine event: journal rows + (if the settings allow) a notification.

    Safe to call twice for the same message event: the journal's unique key makes the
    second call a no-op that produces no second notification. Returns the notification
    or None when the settings switch it off (or it was a duplicate)."""
    created = ingest_events(instance, [event])
    return created[0] if created else None


def ingest_events(instance: Instance, batch: Sequence[IngestEvent]) -> list[Notification]:
    """``ingest_event`` for many events of one instance in one transaction (see
    ``ingest_events_many``)."""
    return ingest_events_many([(instance, batch)]).get(instance.pk, [])


def ingest_events_many(batches: Sequence[tuple[Instance, Sequence[IngestEvent]]]) -> dict[int, list[Notification]]:
    """``ingest_event`` for many events of many instances in one transaction: the
    instances' cursor rows are locked with one statement (in id order, like every
    other writer, so two batches never deadlock), each instance's receiptIds are
    one consecutive range in the order given, the cursors move with one UPDATE and
    all notifications are written with one INSERT. On commit, waiters of every
    instance are woken with one pipelined publish, and webhook delivery is asked
    for once per instance with a webhookUrl. The send queue's drain and the
    emulated receipts record hundreds of statuses a second through here, for
    hundreds of instances per batch: nothing here costs a round trip per instance."""
    by_instance: dict[int, tuple[Instance, list[IngestEvent]]] = {}
    for instance, batch in batches:
        if batch:
            by_instance.setdefault(instance.pk, (instance, []))[1].extend(batch)
    if not by_instance:
        return {}
    created: dict[int, list[Notification]] = {}
    with transaction.atomic():
        ids = sorted(by_instance)
        cursors = _locked_cursors(ids)
        events.prime_watched(ids)
        now = timezone.now()
        rows: list[Notification] = []
        moved: dict[int, int] = {}
        touches: list[tuple[int, str, datetime, str]] = []
        webhook_ids: list[int] = []
        for instance_id in ids:
            instance, batch = by_instance[instance_id]
            wanted = [event for event in _journal_many(instance, batch, touches) if is_enabled(instance, event)]
            if not wanted:
                continue
            first = cursors[instance_id] + 1
            moved[instance_id] = cursors[instance_id] = cursors[instance_id] + len(wanted)
            created[instance_id] = [
                Notification(
                    instance_id=instance_id,
                    receipt_id=first + offset,
                    type_webhook=type_webhook(event),
                    body=build_body(instance, event),
                    created_at=now,
                )
                for offset, event in enumerate(wanted)
            ]
            rows.extend(created[instance_id])
            # bulk_create fires no post_save: open cabinet pages get their hint here.
            events.journal_changed(instance_id, "notifications")
            if instance.setting("webhookUrl"):
                webhook_ids.append(instance_id)
        chats.touch_chats(touches)
        if moved:
            _move_cursors(moved)
            insert_rows(Notification, rows)
            events.notifications_added(list(moved))
        if webhook_ids:
            # One wake-up for all of them: one Redis round trip (webhooks.wake_many).
            transaction.on_commit(partial(webhooks.wake_many, webhook_ids))
    return created


def _locked_cursors(instance_ids: list[int]) -> dict[int, int]:
    """The instances' last receiptIds, their cursor rows locked for this transaction
    in id order (created on first use). Plain values: a model object per row cost
    more than the statement."""

    def lock() -> dict[int, int]:
        rows = (
            NotificationCursor.objects.select_for_update()
            .filter(pk__in=instance_ids)
            .order_by("pk")
            .values_list("pk", "last_receipt_id")
        )
        return dict(rows)

    found = lock()
    if len(found) < len(instance_ids):
        NotificationCursor.objects.bulk_create(
            [NotificationCursor(instance_id=pk) for pk in instance_ids if pk not in found], ignore_conflicts=True
        )
        found = lock()  # all of them again, in order
    return found


def _move_cursors(last: dict[int, int]) -> None:
    """Set each instance's ``last_receipt_id`` (rows locked by ``_locked_cursors``)
    with one statement: on PostgreSQL an UPDATE joined to two bound arrays (fixed
    text, prepared once), elsewhere one UPDATE per row. ``bulk_update`` built a
    CASE expression per row in Python, a fifth of the session runner's CPU."""
    table = connection.ops.quote_name(NotificationCursor._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS c SET last_receipt_id = v.last"  # noqa: S608 - names from the model
                " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, last) WHERE c.instance_id = v.id",
                [list(last), list(last.values())],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET last_receipt_id = %s WHERE instance_id = %s",  # noqa: S608 - names from the model
                [(value, pk) for pk, value in last.items()],
            )


def _journal_many(
    instance: Instance, batch: Sequence[IngestEvent], touches: list[tuple[int, str, datetime, str]]
) -> list[IngestEvent]:
    """The events of ``batch`` that were not recorded before, journal side written.
    API sends only move their chat up in getChats: they are added to ``touches``,
    which the caller applies for all instances at once (journals.chats.touch_chats)."""
    fresh: list[IngestEvent] = []
    for event in batch:
        if isinstance(event, ApiMessageEvent):
            if event.chat_id != STATUS_BROADCAST:  # statuses are not a chat of the chat list
                touches.append((instance.pk, event.chat_id, event.timestamp, event.chat_name))
            fresh.append(event)
        elif _journal(instance, event):
            fresh.append(event)
    return fresh


def _journal(instance: Instance, event: IngestEvent) -> bool:
    """Write the journal side of an event; False if it was already recorded. (API
    sends only touch their chat: ``_journal_many`` collects those.)"""
    if isinstance(event, MessageEvent):
        try:
            with transaction.atomic():
                JournalMessage.objects.create(
                    instance_id=instance.pk,
                    direction=Direction.INCOMING if event.direction == "incoming" else Direction.OUTGOING,
                    chat_id=event.chat_id,
                    id_message=event.id_message,
                    sender=event.sender,
                    sender_name=event.sender_name,
                    sender_contact_name=event.sender_contact_name,
                    chat_name=event.chat_name,
                    type_message=event.type_message,
                    message_data=event.message_data,
                    timestamp=event.timestamp,
                )
        except IntegrityError:
            return False
        chats.record_journal_message(instance, event)
    elif isinstance(event, GroupEvent):
        chats.touch_chat(instance.pk, event.chat_id, event.timestamp, event.subject)
        # The subject is the chat's name even when the chat has seen later messages.
        ChatState.objects.filter(instance_id=instance.pk, chat_id=event.chat_id).exclude(
            name=event.subject
        ).update(name=event.subject)
    elif isinstance(event, CallEvent):
        if event.direction == "outgoing" and not instance.setting("outgoingCallWebhook"):
            # lastOutgoingCalls "needs outgoingCallWebhook" (API.md §9.4): without
            # it the account's own calls are not journalled at all.
            return False
        changes: dict[str, Any] = {"status": event.status, "updated_at": event.timestamp}
        if event.duration is not None:
            changes["duration"] = event.duration
        updated = Call.objects.filter(instance_id=instance.pk, id_call=event.id_call).update(**changes)
        if not updated:
            Call.objects.create(
                instance_id=instance.pk, id_call=event.id_call, chat_id=event.chat_id,
                direction=Direction.OUTGOING if event.direction == "outgoing" else Direction.INCOMING,
                timestamp=event.timestamp, **changes,
            )
        events.journal_changed(instance.pk, "chat", event.chat_id)
    return True


# --- The queue as clients see it ---------------------------------------------------------


def _queued(instance_id: int) -> Any:
    cutoff = timezone.now() - timedelta(seconds=settings.NOTIFICATION_RETENTION_SECONDS)
    return Notification.objects.filter(
        instance_id=instance_id, state=NotificationState.QUEUED, created_at__gte=cutoff
    )


def head_notification(instance_id: int) -> Notification | None:
    """The oldest notification not yet deleted (receiveNotification's answer)."""
    return _queued(instance_id).order_by("receipt_id").first()


def delete_notification(instance_id: int, receipt_id: int) -> bool:
    """deleteNotification: True if the notification was in the queue."""
    return (
        _queued(instance_id)
        .filter(receipt_id=receipt_id)
        .update(state=NotificationState.DONE, done_at=timezone.now())
        == 1
    )


def notifications_count(instance_id: int) -> int:
    return int(_queued(instance_id).count())


def clear_notifications(instance_id: int) -> tuple[bool, int]:
    """clearWebhooksQueue: at most once a minute. Returns (cleared, seconds left)."""
    with transaction.atomic():
        cursor, _ = NotificationCursor.objects.get_or_create(instance_id=instance_id)
        cursor = NotificationCursor.objects.select_for_update().get(pk=cursor.pk)
        now = timezone.now()
        if cursor.cleared_at and now - cursor.cleared_at < CLEAR_QUEUE_INTERVAL:
            left = CLEAR_QUEUE_INTERVAL - (now - cursor.cleared_at)
            return False, max(1, int(left.total_seconds()))
        Notification.objects.filter(instance_id=instance_id, state=NotificationState.QUEUED).update(
            state=NotificationState.EXPIRED, done_at=now
        )
        cursor.cleared_at = now
        cursor.save(update_fields=["cleared_at"])
    return True, 0


DONE_NOTIFICATION_KEEP = timedelta(days=7)


def expire_notifications(*, batch: int = 20_000) -> dict[str, int]:
    """Housekeeping: notifications past retention leave the queue, and rows that left
    it (deleted, delivered, expired) are dropped after a week (their webhook
    attempts go with them)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.NOTIFICATION_RETENTION_SECONDS)
    expired = Notification.objects.filter(state=NotificationState.QUEUED, created_at__lt=cutoff).update(
        state=NotificationState.EXPIRED, done_at=now
    )
    old_ids = list(
        Notification.objects.exclude(state=NotificationState.QUEUED)
        .filter(done_at__lt=now - DONE_NOTIFICATION_KEEP)
        .values_list("pk", flat=True)[:batch]
    )
    deleted, _ = Notification.objects.filter(pk__in=old_ids).delete()
    return {"expired": expired, "deleted": deleted}


# --- Read marks ---------------------------------------------------------------------------


def mark_chat_read(instance: Instance, chat_id: str) -> int:
    """Mark the chat's incoming messages read and send read receipts through the
    engine. Returns how many journal messages changed."""
    changed = JournalMessage.objects.filter(
        instance_id=instance.pk, chat_id=chat_id, direction=Direction.INCOMING, is_read=False
    ).update(is_read=True)
    try:
        get_transport(instance).read_chat(chat_id=chat_id)
    except TransportError:
        log.info("read receipts for %s in %s not sent", instance.pk, chat_id, exc_info=True)
    return changed


def mark_chat_read_on_receive(instance: Instance, chat_id: str) -> None:
    """markIncomingMessagesReaded: read at once, unless ...OnReply asks to wait."""
    if instance.setting("markIncomingMessagesReaded") and not instance.setting("markIncomingMessagesReadedOnReply"):
        mark_chat_read(instance, chat_id)


# --- The sink's consumer ---------------------------------------------------------------


def _instance(target: Instance | int) -> Instance:
    return target if isinstance(target, Instance) else Instance.objects.get(pk=target)


def consume_engine_events(pairs: Sequence[tuple[Instance | int, Any]]) -> None:
    """What engines report (``engines.sink``) becomes journal rows and notifications.
    Received messages are read at once when ``markIncomingMessagesReaded`` says so;
    synced history is journaled without notifications."""
    for target, event in pairs:
        instance = _instance(target)
        if isinstance(event, HistoryEvent):
            record_history(instance, event)
            continue
        ingest_event(instance, event)
        if isinstance(event, MessageEvent) and event.direction == "incoming" and event.chat_id != STATUS_BROADCAST:
            mark_chat_read_on_receive(instance, event.chat_id)


def consume_send_reports(pairs: Sequence[tuple[Instance | int, SendReport]]) -> None:
    """What became of API sends (``engines.sink``, from the drain inside its status
    transaction): outgoingAPIMessageReceived and outgoingMessageStatus
    notifications, all instances in one batch."""
    ingest_events_many([(_instance(target), report.events) for target, report in pairs])


def consume_send_queued(pairs: Sequence[tuple[Instance | int, SendQueuedEvent]]) -> None:
    """A send method queued a message (``engines.sink``, inside the send's
    transaction): ``archiveChat`` archives the chat, markIncomingMessagesReadedOnReply
    reads it."""
    for target, event in pairs:
        instance = _instance(target)
        if event.archive_chat:
            chats.archive_on_send(instance, chat_id=event.chat_id)
        if event.mark_read:
            mark_chat_read(instance, event.chat_id)


HISTORY_BATCH = 2000


def record_history(instance: Instance, event: HistoryEvent) -> int:
    """Synced history: journal rows (a message already journalled stays as it is)
    and the chats' list entries, in bulk, one transaction. Returns how many
    messages were offered."""
    rows = [
        JournalMessage(
            instance_id=instance.pk,
            direction=Direction.INCOMING if m.direction == "incoming" else Direction.OUTGOING,
            chat_id=m.chat_id,
            id_message=m.id_message,
            sender=m.sender,
            sender_name=m.sender_name,
            sender_contact_name=m.sender_contact_name,
            chat_name=m.chat_name,
            type_message=m.type_message,
            message_data=m.message_data,
            timestamp=m.timestamp,
            is_read=event.read,
        )
        for m in event.messages
    ]
    states = [
        ChatState(
            instance_id=instance.pk,
            chat_id=c.chat_id,
            name=c.name,
            archived=c.archived,
            last_activity=c.last_activity or event.timestamp,
        )
        for c in event.chats
    ]
    with transaction.atomic():
        JournalMessage.objects.bulk_create(rows, batch_size=HISTORY_BATCH, ignore_conflicts=True)
        ChatState.objects.bulk_create(
            states,
            batch_size=HISTORY_BATCH,
            update_conflicts=True,
            unique_fields=["instance", "chat_id"],
            update_fields=["name", "archived", "last_activity"],
        )
    return len(rows)
