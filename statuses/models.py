"""Statuses (stories, API.md §9.7). Posting uses the send queue: an outgoing status
*is* an ``OutgoingMessage`` to ``status@broadcast`` (so it gets its idMessage at
once, is journalled and shows in showMessagesQueue); a received status is a
``JournalMessage`` in that chat. What this app adds is who got and saw each of our
statuses (``StatusReceipt``, getStatusStatistic), kept ``STATISTICS_RETENTION``."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone

from instances.models import Instance

STATISTICS_RETENTION = timedelta(days=30)


class ReceiptStatus(models.TextChoices):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"


RECEIPT_ORDER = {ReceiptStatus.SENT: 0, ReceiptStatus.DELIVERED: 1, ReceiptStatus.READ: 2}


class StatusReceipt(models.Model):
    """Where one of our statuses stands with one viewer: ``sent`` when it was
    posted to them, then ``delivered`` and ``read`` as the viewer's receipts
    arrive (never backwards). ``timestamp`` is when it reached ``status``."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="status_receipts")
    id_message = models.CharField(max_length=64)
    participant = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=ReceiptStatus.choices, default=ReceiptStatus.SENT)
    timestamp = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "id_message", "participant"], name="unique_status_receipt")
        ]
        indexes = [models.Index(fields=["created_at"], name="status_receipt_age_idx")]

    def __str__(self) -> str:
        return f"{self.id_message} → {self.participant} ({self.status})"
