"""Writes to the emulated network that are not instance state (contacts, scripts)."""

from __future__ import annotations

from django.db import transaction

from instances.models import EmuContact, EmuPhone, State
from instances.transport.emulator import ensure_phone

# States the control API and ``manage.py emulator set-state`` may force. Unlinking
# (``notAuthorized``) is ``logout``; ``pendingCode`` comes from ``startAuthorization``.
FORCEABLE_STATES = (State.AUTHORIZED, State.BLOCKED, State.YELLOW_CARD, State.SLEEP_MODE, State.STARTING)


def add_simulated_contact(
    *, owner_phone: str, phone: str, name: str = "", registered: bool = True, script: str = ""
) -> EmuContact:
    """Create (or update) a simulated phone and put it in ``owner_phone``'s contacts."""
    with transaction.atomic():
        owner = ensure_phone(owner_phone)
        contact_phone, created = EmuPhone.objects.get_or_create(
            phone=phone,
            defaults={"name": name or f"Contact {phone[-4:]}", "registered": registered, "script": script},
        )
        if not created:
            contact_phone.registered = registered
            contact_phone.script = script
            if name:
                contact_phone.name = name
            contact_phone.save(update_fields=["registered", "script", "name"])
        contact, _ = EmuContact.objects.update_or_create(
            owner=owner, contact=contact_phone, defaults={"name": name}
        )
    return contact
