"""The send queue. The queue *is* the ``OutgoingMessage`` table: rows in ``queued``
state are waiting, Redis only carries wake-ups for the drain task."""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from instances.models import Instance


def new_id_message() -> str:
    """An opaque uppercase hex id like the ones WhatsApp Web clients generate."""
    return "BAE5" + secrets.token_hex(6).upper()


class OutgoingStatus(models.TextChoices):
    """Internal states; ``wire_status`` maps them to GREEN-API's statusMessage."""

    QUEUED = "queued"  # waiting in the send queue
    SENDING = "sending"  # claimed by a worker; handed to the transport
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    NO_ACCOUNT = "noAccount"
    NOT_IN_GROUP = "notInGroup"
    YELLOW_CARD = "yellowCard"


PENDING_STATUSES = (OutgoingStatus.QUEUED, OutgoingStatus.SENDING)
FINAL_FAILURES = (OutgoingStatus.FAILED, OutgoingStatus.NO_ACCOUNT, OutgoingStatus.NOT_IN_GROUP)


class OutgoingMessage(models.Model):
    """One message sent through the API. ``method`` and ``request`` keep the original
    call (showMessagesQueue echoes them); ``payload`` is what the transport sends."""

    # No index of its own: every index of this table leads with the instance already,
    # and each one more is written on every insert and status change.
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="outgoing_messages", db_index=False)
    id_message = models.CharField(max_length=64, default=new_id_message)
    chat_id = models.CharField(max_length=100)
    method = models.CharField(max_length=40)
    type_message = models.CharField(max_length=40)
    request = models.JSONField(default=dict)
    payload = models.JSONField(default=dict)
    is_file = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=OutgoingStatus.choices, default=OutgoingStatus.QUEUED)
    description = models.CharField(max_length=500, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "id_message"], name="unique_outgoing_id"),
            # Idempotency keys are cleared after 24 h by housekeeping, so reuse after
            # that window creates a new message.
            models.UniqueConstraint(
                fields=["instance", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="unique_outgoing_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["instance", "status", "id"], name="outgoing_queue_idx"),
            models.Index(fields=["status", "claimed_at"], name="outgoing_stuck_idx"),
            # Journal reads (getChatHistory, lastOutgoingMessages) walk these newest first.
            models.Index(fields=["instance", "chat_id", "-created_at", "-id"], name="outgoing_journal_chat_idx"),
            models.Index(fields=["instance", "-created_at", "-id"], name="outgoing_journal_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id_message} → {self.chat_id} ({self.status})"


class MessageStatusChange(models.Model):
    """Every status an outgoing message reached, in order: the source of
    ``outgoingMessageStatus`` notifications."""

    # No database constraint: PostgreSQL checked it per inserted row, taking a key
    # share lock (a heap write and a WAL record) on the message row each time, twice
    # per message sent. Deleting a message still deletes its changes (Django's
    # CASCADE runs in the ORM), and nothing deletes messages with raw SQL.
    message = models.ForeignKey(
        OutgoingMessage, on_delete=models.CASCADE, related_name="status_changes", db_constraint=False
    )
    status = models.CharField(max_length=16, choices=OutgoingStatus.choices)
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)


class SendAttempt(models.Model):
    """One message handed to the engine by the send drain, logged whatever the engine
    answered: its send status (``sent``, ``noAccount``, …) or ``error`` for a
    transient failure (the message went back to the queue and is handed again).

    Deliberately without a unique constraint: it is the evidence for "sent exactly
    once" (``messaging.selectors.send_attempt_tally``). A message handed twice with
    a success both times (two workers racing past a lease, a re-queue of a row that
    had gone out) shows up here as two rows, where the status log cannot see it (a
    repeated status is not a change). Rows are written with the batch's statuses,
    in the same transaction and one INSERT per batch; a crash between the engine
    call and that commit leaves no row and is covered by the engines' idempotency
    per idMessage instead. No foreign keys and no index: nothing reads it on the hot
    path, and deleting a message keeps its attempts."""

    message_id = models.BigIntegerField()
    instance_id = models.BigIntegerField()
    id_message = models.CharField(max_length=64)
    attempt = models.PositiveIntegerField()  # the message's claim count: 1 for its first hand-over
    outcome = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.id_message} #{self.attempt}: {self.outcome}"


class HeldReceipt(models.Model):
    """An engine receipt (delivered, read, failed) that overtook its message's
    hand-over: the engine took the message and its peer acknowledged it before the
    drain committed ``sent`` (on a real network the acknowledgement can come back in
    a few hundred milliseconds), or the worker died in between and recovery has not
    handed the message over again yet.

    Moving the message on at once would make it final with no attempt logged (the
    attempt log is the evidence for "sent exactly once"), so the receipt waits here
    and is applied in the transaction that records the hand-over
    (``messaging.services.release_held_receipts``). The beat's ``recover_queues``
    releases any held for a message no longer pending and forgets those older than
    the queue's retention (their message failed or expired unsent)."""

    message_id = models.BigIntegerField(db_index=True)
    status = models.CharField(max_length=16, choices=OutgoingStatus.choices)
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"message {self.message_id}: {self.status} (held)"


class SendCursor(models.Model):
    """Per-instance drain lock and pacing clock.

    A worker drains an instance's queue only while it holds ``locked_by`` with an
    unexpired ``locked_until`` (taken by a conditional UPDATE, renewed per message).
    ``last_sent_at`` paces sends by delaySendMessagesMilliseconds across workers.
    """

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, primary_key=True, related_name="send_cursor")
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_was_file = models.BooleanField(default=False)


class PacedSend(models.Model):
    """A message that left the queue of an instance with a cap on (messaging.pacing:
    ``warmUpDailyLimit`` counts these per warm-up day, ``newChatsPerHour`` the first
    contacts among them per rolling hour).

    Written by the drain after the engine took the message, stamped by the pacing
    clock; a day's worth is kept (older rows go as new ones are written)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="paced_sends", db_index=False)
    chat_id = models.CharField(max_length=100)
    id_message = models.CharField(max_length=64)
    # The chat had no message either way before this one (pacing.is_new_chat).
    first_contact = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["instance", "created_at"], name="paced_send_recent_idx")]

    def __str__(self) -> str:
        return f"{self.chat_id} {self.created_at:%Y-%m-%d %H:%M}"


class TypingShown(models.Model):
    """'typing…' the send queue has shown before a queued message (messaging.pacing,
    for engines with ``EngineSpec.types_in_queue``): the message leaves at ``until``.
    Keeps the message's id, not a foreign key: the queue's deletes stay one
    statement. Removed when the message leaves; strays go after a day."""

    message_id = models.BigIntegerField(unique=True)
    until = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"message {self.message_id} until {self.until:%H:%M:%S}"


def new_media_key() -> str:
    """The random part of a stored file's name and link (128 bits)."""
    return secrets.token_hex(16)


class MediaFile(models.Model):
    """A file held for sending: uploaded (uploadFile, sendFileByUpload) or fetched for
    sendFileByUrl. Lives in the ``files`` storage under ``storage_name``, a name made
    only of the instance id and ``key`` (no user input). Reachable only through its
    signed link (``messaging.media.signed_url``) until ``expires_at``; housekeeping
    deletes the row and the stored file after that."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="media_files")
    key = models.CharField(max_length=32, unique=True, default=new_media_key)
    storage_name = models.CharField(max_length=255)
    file_name = models.CharField(max_length=255)
    mime_type = models.CharField(max_length=127)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    source_url = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="media_file_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.mime_type}, {self.size} bytes)"
