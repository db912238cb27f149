"""The cloud engine's own tables: an instance's Meta credentials, the map between
Meta's message ids (``wamid…``) and ours, and the users known only by a
business-scoped user id."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from engines.cloud.crypto import EncryptedField
from instances.models import Instance


class CloudAccount(models.Model):
    """The Cloud API credentials of one ``cloud`` instance. ``access_token``,
    ``app_secret`` and ``verify_token`` are encrypted at rest (engines.cloud.crypto)
    and shown masked after creation. ``problem`` is why the last credentials check
    failed (empty once it passed): the cabinet shows it."""

    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, primary_key=True, related_name="cloud")
    phone_number_id = models.CharField(max_length=64, db_index=True)
    access_token = EncryptedField()
    app_secret = EncryptedField()
    verify_token = EncryptedField()
    display_phone_number = models.CharField(max_length=32, blank=True)
    verified_name = models.CharField(max_length=200, blank=True)
    problem = models.CharField(max_length=500, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"cloud {self.phone_number_id} ({self.instance_id})"


class Direction(models.TextChoices):
    INCOMING = "in"
    OUTGOING = "out"


class CloudMessage(models.Model):
    """One message between our id and Meta's: outgoing ones are written when Meta
    accepted them (a retry of the same idMessage finds it and sends nothing), incoming
    ones when their webhook is taken in (a re-delivery finds it and records nothing).
    ``to`` is the recipient as Meta addressed it (digits or a BSUID), for pacing."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+", db_index=False)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    id_message = models.CharField(max_length=64)
    wamid = models.CharField(max_length=255)
    chat_id = models.CharField(max_length=100)
    to = models.CharField(max_length=140, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "wamid"], name="cloud_unique_wamid"),
            models.UniqueConstraint(fields=["instance", "direction", "id_message"], name="cloud_unique_id_message"),
        ]
        indexes = [
            models.Index(fields=["instance", "direction", "to", "-created_at"], name="cloud_pacing_idx"),
            models.Index(fields=["instance", "direction", "-created_at"], name="cloud_rate_idx"),
            models.Index(fields=["instance", "chat_id", "direction", "-created_at"], name="cloud_chat_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.id_message} = {self.wamid}"


class CloudInbox(models.Model):
    """A webhook delivery Meta posted, kept until it is taken in.

    The webhook answers Meta as soon as this row is committed; a worker takes it in
    (fetching received media from Graph, which can take seconds) in arrival order per
    instance and deletes it in the same transaction (``engines.cloud.inbound
    .take_in_queued``). So a slow download never makes Meta time out and re-post, and
    a worker that dies mid-way leaves the row for the next one (the beat re-offers
    rows left behind). A row that keeps failing is set aside (``dead``) after
    ``CLOUD_INBOX_MAX_ATTEMPTS`` instead of blocking the instance's later deliveries;
    it stays here, with its error, for the operator (admin)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+", db_index=False)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    dead = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["instance", "dead", "id"], name="cloud_inbox_idx")]

    def __str__(self) -> str:
        return f"cloud delivery {self.pk} for {self.instance_id}"


class CloudUser(models.Model):
    """A user Meta named by a business-scoped user id (BSUID, e.g. ``US.1349…``)
    without a phone number: their chatId is ``<digits>@lid`` (stable per instance
    and BSUID), and replies to that chat go to the BSUID."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+", db_index=False)
    chat_id = models.CharField(max_length=100)
    bsuid = models.CharField(max_length=140)
    username = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "chat_id"], name="cloud_unique_user_chat"),
            models.UniqueConstraint(fields=["instance", "bsuid"], name="cloud_unique_user_bsuid"),
        ]

    def __str__(self) -> str:
        return f"{self.bsuid} = {self.chat_id}"
