"""Accounts, instances, their state history and runner leases."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from instances import settings_spec


def new_api_token() -> str:
    """A fresh 50-hex-char apiTokenInstance (GREEN-API's shape)."""
    return secrets.token_hex(25)


def new_partner_token() -> str:
    return "gac." + secrets.token_hex(23)


def new_secret() -> str:
    return secrets.token_hex(32)


class Account(models.Model):
    """A customer: a Django user who owns instances and holds a partner token."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="relay_account"
    )
    name = models.CharField(max_length=200, blank=True)
    partner_token = models.CharField(
        max_length=64, unique=True, default=new_partner_token, db_index=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name or self.user.get_username()


class Engine(models.TextChoices):
    EMULATOR = "emulator", "Emulator (sandbox)"
    WAWEB = "waweb", "WhatsApp Web (neonize)"
    CLOUD = "cloud", "Meta Cloud API"


class State(models.TextChoices):
    """stateInstance values of API.md §8.1."""

    NOT_AUTHORIZED = "notAuthorized"
    AUTHORIZED = "authorized"
    BLOCKED = "blocked"
    SLEEP_MODE = "sleepMode"
    STARTING = "starting"
    YELLOW_CARD = "yellowCard"
    PENDING_CODE = "pendingCode"


class Instance(models.Model):
    """One WhatsApp account slot (``idInstance``) addressed by the wire API.

    ``id`` *is* the public idInstance. The token is compared in constant time by
    ``instances.http``. Settings are a JSON object keyed by wire names, described by
    ``instances.settings_spec``.
    """

    id = models.BigIntegerField(primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="instances")
    name = models.CharField(max_length=200, blank=True)
    api_token = models.CharField(max_length=64, default=new_api_token)
    engine = models.CharField(max_length=16, choices=Engine.choices, default=Engine.EMULATOR)
    state = models.CharField(max_length=16, choices=State.choices, default=State.NOT_AUTHORIZED)
    state_changed_at = models.DateTimeField(default=timezone.now)
    wid = models.CharField(max_length=64, blank=True, help_text="Own WhatsApp id, e.g. 79001234567@c.us")
    phone = models.CharField(max_length=20, blank=True)
    profile_name = models.CharField(max_length=100, blank=True)
    avatar_url = models.CharField(max_length=500, blank=True)
    settings = models.JSONField(default=settings_spec.default_settings)
    # Per-instance secrets: HMAC for webhook signatures and for emulator QR codes.
    webhook_secret = models.CharField(max_length=64, default=new_secret)
    qr_secret = models.CharField(max_length=64, default=new_secret)
    # Pairing by code (getAuthorizationCode) and registration by SMS (startAuthorization).
    pairing_code = models.CharField(max_length=16, blank=True)
    pairing_phone = models.CharField(max_length=20, blank=True)
    pairing_expires_at = models.DateTimeField(null=True, blank=True)
    is_suspended = models.BooleanField(default=False)
    is_deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "is_deleted"])]

    def __str__(self) -> str:
        return f"{self.id} {self.name}".strip()

    def setting(self, name: str) -> Any:
        """A setting's stored value (flags are booleans), falling back to the
        default (for some settings, the default of the instance's engine)."""
        if name in self.settings:
            return self.settings[name]
        return settings_spec.BY_NAME[name].default_for(self.engine)


class InstanceStateChange(models.Model):
    """One entry of getStateInstanceHistory: every state the instance passed through."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="state_changes")
    state = models.CharField(max_length=16, choices=State.choices)
    phone = models.CharField(max_length=20, blank=True)
    # Why, when the engine said (e.g. Meta refused a Cloud API token).
    reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["instance", "-created_at"])]


class SessionLease(models.Model):
    """Who runs an instance's engine session: at most one runner, fenced by ``epoch``.

    A runner acquires a lease with a conditional UPDATE (free or expired), which bumps
    ``epoch``. Every write a session makes checks the epoch it holds, so a runner that
    lost its lease (stalled, partitioned) can no longer change the instance.
    """

    instance = models.OneToOneField(
        Instance, on_delete=models.CASCADE, primary_key=True, related_name="lease"
    )
    runner_id = models.CharField(max_length=100, blank=True, db_index=True)
    epoch = models.BigIntegerField(default=0)
    acquired_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)


class LeaseGrant(models.Model):
    """Append-only audit of lease acquisitions (instance, epoch, runner), for operators
    and for the tests that prove no two runners ever held one instance at once."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="lease_grants")
    epoch = models.BigIntegerField()
    runner_id = models.CharField(max_length=100)
    previous_runner_id = models.CharField(max_length=100, blank=True)
    previous_expires_at = models.DateTimeField(null=True, blank=True)
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "epoch"], name="unique_lease_epoch")
        ]
