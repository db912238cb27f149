"""What happened on an instance: received (and phone-sent) messages, calls, and the
notification queue that long-polling and webhooks read.

Messages sent through the API are journalled by ``messaging.OutgoingMessage`` itself
(one row, written before the API answers); everything an engine reports lands here
through ``journals.services.ingest_event`` in one transaction with its notification.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from instances.models import Instance


class Direction(models.TextChoices):
    INCOMING = "incoming"
    OUTGOING = "outgoing"  # sent from the phone or another linked device


class JournalMessage(models.Model):
    """A message an engine reported: received, or sent from the linked phone.

    ``message_data`` is the notification's ``messageData`` object (GREEN-API webhook
    shape); journal methods flatten it."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="journal_messages")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    chat_id = models.CharField(max_length=100)
    id_message = models.CharField(max_length=64)
    sender = models.CharField(max_length=100, blank=True)
    sender_name = models.CharField(max_length=200, blank=True)
    sender_contact_name = models.CharField(max_length=200, blank=True)
    chat_name = models.CharField(max_length=200, blank=True)
    type_message = models.CharField(max_length=40)
    message_data = models.JSONField(default=dict)
    timestamp = models.DateTimeField(default=timezone.now)
    is_read = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # The row's journal object (API.md §12, without "type"), encoded once when the row
    # is written (journals.rendering); the columns it is made of never change. Rows
    # written without it (bulk or raw inserts) or by an older renderer
    # (journal_json_version below the current one) are rendered when read. The
    # database defaults make raw INSERT/COPY writers produce such rows.
    journal_json = models.TextField(blank=True, default="", db_default="")
    journal_json_version = models.SmallIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "chat_id", "id_message"], name="unique_journal_message")
        ]
        indexes = [
            models.Index(fields=["instance", "chat_id", "-timestamp"], name="journal_chat_idx"),
            # lastIncomingMessages / lastOutgoingMessages read a whole time window in
            # this order: with the tie-break in the index PostgreSQL needs no sort.
            models.Index(fields=["instance", "direction", "-timestamp", "-id"], name="journal_recent_idx"),
        ]


class Call(models.Model):
    """A voice/video call: offered, then picked up, hung up or declined."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="calls")
    id_call = models.CharField(max_length=64)
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.INCOMING)
    chat_id = models.CharField(max_length=100)
    status = models.CharField(max_length=16, default="offer")
    timestamp = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Seconds from answer to hang-up, once an answered call has ended (None: not
    # answered, still going, or recorded before calls were timed).
    duration = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instance", "id_call"], name="unique_call")]
        indexes = [models.Index(fields=["instance", "direction", "-timestamp"], name="call_recent_idx")]


class NotificationState(models.TextChoices):
    QUEUED = "queued"  # waiting for receiveNotification or webhook delivery
    DONE = "done"  # deleted by the client or delivered by webhook
    EXPIRED = "expired"  # not taken within the retention period, or cleared


class Notification(models.Model):
    """One notification (GREEN-API webhook body) in the instance's FIFO queue.

    ``receipt_id`` increases per instance in commit order (allocated under the
    instance's ``NotificationCursor`` row lock)."""

    # No index of its own: both of this table's indexes lead with the instance.
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="notifications", db_index=False)
    receipt_id = models.BigIntegerField()
    type_webhook = models.CharField(max_length=40)
    body = models.JSONField()
    state = models.CharField(max_length=10, choices=NotificationState.choices, default=NotificationState.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    done_at = models.DateTimeField(null=True, blank=True)
    # Webhook delivery bookkeeping.
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instance", "receipt_id"], name="unique_receipt_id")]
        indexes = [models.Index(fields=["instance", "state", "receipt_id"], name="notification_queue_idx")]


class NotificationCursor(models.Model):
    """Per-instance receiptId counter; its row lock serialises ingestion per instance."""

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, primary_key=True, related_name="notification_cursor")
    last_receipt_id = models.BigIntegerField(default=0)
    cleared_at = models.DateTimeField(null=True, blank=True)


class WebhookAttempt(models.Model):
    """One POST of a notification to the instance's webhookUrl (journals.webhooks),
    logged whatever its outcome: a 2xx (``ok``), another status, or an error before
    any answer (``status_code`` null; refused address, connect failure, timeout)."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="webhook_attempts")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="webhook_attempts")
    receipt_id = models.BigIntegerField()  # the notification's, so ranges need no join
    attempt = models.PositiveIntegerField()  # 1 for the first try of a delivery round
    started_at = models.DateTimeField(default=timezone.now)
    url = models.TextField()
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=1024, blank=True)
    # The X-Webhook-Signature sent (the secret may be rotated later): with the
    # notification's body and started_at (the timestamp header) the cabinet shows
    # the exact request.
    signature = models.CharField(max_length=80, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["instance", "-started_at"], name="webhook_attempt_recent_idx"),
            models.Index(fields=["instance", "receipt_id"], name="webhook_attempt_receipt_idx"),
        ]


class WebhookRedelivery(models.Model):
    """An operator asked to deliver a receiptId range again (``/api/v1/webhooks``).

    Redelivered notifications get a fresh give-up window counted from
    ``requested_at`` instead of their creation time."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="webhook_redeliveries")
    receipt_from = models.BigIntegerField()
    receipt_to = models.BigIntegerField()
    requested_at = models.DateTimeField(default=timezone.now)
    requested_by = models.CharField(max_length=20)  # "instance token" or "partner token"
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "webhook redeliveries"
        indexes = [models.Index(fields=["instance", "-requested_at"], name="webhook_redelivery_idx")]


class ChatState(models.Model):
    """One chat of an instance as its chat list shows it (getChats): last activity,
    archive flag and disappearing-messages timer.

    Touched by ``journals.chats.touch_chat`` whenever a message is journalled, so
    listing chats never scans the journals."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="chat_states")
    chat_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200, blank=True)
    archived = models.BooleanField(default=False)
    ephemeral_expiration = models.PositiveIntegerField(default=0)
    ephemeral_set_at = models.DateTimeField(null=True, blank=True)
    last_activity = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instance", "chat_id"], name="unique_chat_state")]
        indexes = [models.Index(fields=["instance", "-last_activity"], name="chat_state_recent_idx")]


class ChangeKind(models.TextChoices):
    EDITED = "edited"  # new text of a text message (or caption)
    DELETED = "deleted"  # deleted for everyone
    HIDDEN = "hidden"  # deleted for this instance only (onlySenderDelete)
    VOTE = "vote"  # a voter's current choice in a poll


class MessageChange(models.Model):
    """Something that happened to a message after it was sent: an edit, a delete, a
    poll vote (one row per voter, holding that voter's latest choice).

    Journal methods apply these to the message they point at (``id_message``), so a
    poll always shows its current tally and an edited message its latest text."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="message_changes")
    chat_id = models.CharField(max_length=100)
    id_message = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=ChangeKind.choices)
    actor = models.CharField(max_length=100, blank=True)
    text = models.TextField(blank=True)
    options = models.JSONField(default=list)
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "chat_id", "id_message", "kind", "actor"], name="unique_message_change"
            )
        ]
        indexes = [models.Index(fields=["instance", "timestamp"], name="message_change_time_idx")]
