"""Pairing on the emulated network: a phone "scans" the QR code or types the
pairing code (control API, cabinet), registration by SMS code, and forcing a state
for tests. Claims keep one tenant per number (``engines.emulator.phones``)."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from engines.emulator.history import sync_history
from engines.emulator.phones import PhoneClaimed, claim_phone
from engines.emulator.session import start_at_head
from instances import services
from instances.models import Engine, Instance, State
from instances.services import ServiceError


def link_phone(instance: Instance, *, phone: str, name: str = "") -> None:
    """The phone scanned the QR or entered the code: the session runner now brings
    the instance from ``starting`` to ``authorized``."""
    if instance.state not in (State.NOT_AUTHORIZED, State.PENDING_CODE):
        raise ServiceError("instance account already authorized")
    with transaction.atomic():
        try:
            # Another tenant's number would hand this instance their messages.
            account = claim_phone(phone, instance.account_id, name=name)
        except PhoneClaimed as exc:
            raise ServiceError(str(exc)) from exc
        linked = services.change_state(
            instance,
            State.STARTING,
            wid=f"{phone}@c.us",
            profile_name=account.name,
            from_states=(State.NOT_AUTHORIZED, State.PENDING_CODE),
        )
        if not linked:  # another scan or code won the race
            raise ServiceError("instance account already authorized")
    Instance.objects.filter(pk=instance.pk).update(pairing_code="", pairing_phone="", pairing_expires_at=None)
    with transaction.atomic():
        head = start_at_head(instance.pk)
        linked_instance = Instance.objects.get(pk=instance.pk)
        if linked_instance.setting("enableMessagesHistory"):
            sync_history(linked_instance, up_to_id=head)


def confirm_pairing_code(instance: Instance, *, code: str) -> None:
    """The user typed the code on the phone (emulator control API)."""
    fresh = Instance.objects.get(pk=instance.pk)
    expired = fresh.pairing_expires_at is None or fresh.pairing_expires_at < timezone.now()
    if not fresh.pairing_code or expired:
        raise ServiceError("no pairing code is pending or it expired")
    normalized = code.replace("-", "").strip().upper()
    if not secrets.compare_digest(normalized, fresh.pairing_code):
        raise ServiceError("wrong pairing code")
    link_phone(fresh, phone=fresh.pairing_phone)


def set_state_for_testing(instance: Instance, state: str) -> None:
    """Emulator control: force ``blocked``, ``yellowCard`` etc. to test client code."""
    if instance.engine != Engine.EMULATOR:
        raise ServiceError("only emulator instances can be forced into a state")
    if state == State.AUTHORIZED and not instance.wid:
        raise ServiceError("pair the instance first")
    services.change_state(instance, state)
