"""What the waweb engine keeps about each account beside whatsmeow's own store."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class WawebSession(models.Model):
    """One waweb instance's session as the product sees it: the linked device
    (``device_jid``, whatsmeow's key into its store), the newest QR and pairing
    code, and honest health (last event, reconnects, keep-alive failures, the last
    error, why and until when the supervisor waits before restarting it)."""

    instance_id = models.BigIntegerField(primary_key=True)
    device_jid = models.CharField(
        max_length=100, blank=True, help_text="user:device@server of the linked device"
    )
    push_name = models.CharField(max_length=100, blank=True)
    qr_text = models.CharField(max_length=600, blank=True)
    qr_png = models.TextField(blank=True)
    qr_count = models.IntegerField(default=0)
    qr_at = models.DateTimeField(null=True, blank=True)
    pairing_code = models.CharField(max_length=16, blank=True)
    pairing_phone = models.CharField(max_length=20, blank=True)
    pairing_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    # The session says it is connected (whatsmeow's Connected, until Disconnected or
    # the process ends: the supervisor clears it when it starts or reaps a child).
    connected = models.BooleanField(default=False)
    # The last proof that the connection carries traffic: an event other than a
    # failure, or an answered liveness probe (see engines.waweb.health).
    alive_at = models.DateTimeField(null=True, blank=True)
    reconnects = models.IntegerField(default=0)
    keepalive_failures = models.IntegerField(default=0)
    restarts = models.IntegerField(default=0)
    # Restarts because the session said it was connected but stayed silent.
    silent_restarts = models.IntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Why the supervisor is not running the session now, and until when.
    parked_reason = models.CharField(max_length=40, blank=True)
    parked_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"waweb session of {self.instance_id}"


class WawebMessage(models.Model):
    """Our ``idMessage`` and the id WhatsApp gave the same message (whatsmeow cannot
    send with an id we choose). Written *before* the send with ``wa_id`` empty and
    completed right after it, so a retry after a crash can tell "certainly sent"
    (``wa_id`` set: answered without sending again) from "maybe sent" (empty: the
    crash fell inside the one send call; see docs/engines/waweb.md)."""

    instance_id = models.BigIntegerField()
    id_message = models.CharField(max_length=64)
    wa_id = models.CharField(max_length=64, blank=True)
    chat_id = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance_id", "id_message"], name="unique_waweb_id_message")
        ]
        indexes = [models.Index(fields=["instance_id", "wa_id"], name="waweb_wa_id_idx")]

    def __str__(self) -> str:
        return f"{self.id_message} = {self.wa_id or '?'}"


class WawebOriginal(models.Model):
    """A WhatsApp message as whatsmeow carried it (the serialised ``waE2E.Message``)
    and its key: what quoting (``ContextInfo.quotedMessage``), forwarding (the
    message again, media keys and all) and read receipts (``mark_read`` needs the
    WhatsApp id and the sender) need, none of which the journal's ``messageData``
    holds. Kept for ``WAWEB_KEEP_MESSAGES_DAYS``; the session prunes older rows."""

    instance_id = models.BigIntegerField()
    wa_id = models.CharField(max_length=64, help_text="WhatsApp's message id")
    chat_id = models.CharField(max_length=100, help_text="GREEN-API chat id (…@c.us, …@g.us)")
    sender = models.CharField(max_length=100, help_text="the sender's JID as WhatsApp writes it")
    from_me = models.BooleanField(default=False)
    timestamp = models.DateTimeField()
    message = models.BinaryField()
    read = models.BooleanField(default=False, help_text="a read receipt went out (or it is ours)")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance_id", "wa_id"], name="unique_waweb_original")
        ]
        indexes = [
            models.Index(fields=["instance_id", "chat_id", "read"], name="waweb_original_unread_idx"),
            models.Index(fields=["timestamp"], name="waweb_original_age_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.wa_id} in {self.chat_id}"
