"""Writes to the emulated network that are not instance state (contacts, scripts)."""

from __future__ import annotations

from django.db import transaction

from engines.emulator.models import CallRule, EmuContact, EmuPhone
from engines.emulator.phones import PhoneClaimed, may_use, owner_account
from engines.emulator.transport import ensure_phone
from instances.models import State

# States the control API and ``manage.py emulator set-state`` may force. Unlinking
# (``notAuthorized``) is ``logout``; ``pendingCode`` comes from ``startAuthorization``.
FORCEABLE_STATES = (State.AUTHORIZED, State.BLOCKED, State.YELLOW_CARD, State.SLEEP_MODE, State.STARTING)


def add_simulated_contact(
    *,
    owner_phone: str,
    phone: str,
    name: str = "",
    registered: bool | None = None,
    script: str | None = None,
    account_id: int | None = None,
    call_rule: str | None = None,
) -> EmuContact:
    """Put ``phone`` in ``owner_phone``'s contacts, creating the simulated phone if new.

    The caller acts for ``account_id`` (default: the account ``owner_phone`` belongs
    to). A new or unclaimed number becomes that account's (``engines.emulator.phones``) and takes
    ``registered``/``script`` (None: leave as is; a new phone is registered, unscripted)
    and ``name``. A number of another account may still be added to the address book
    under ``name``, but asking to change its registration, script or ``call_rule``
    (how it takes calls: answer, reject, silent) raises ``PhoneClaimed``: that is its
    owner's to decide."""
    with transaction.atomic():
        owner = ensure_phone(owner_phone)
        if account_id is None:
            account_id = owner.account_id or owner_account(owner_phone)
        contact_phone, created = EmuPhone.objects.get_or_create(
            phone=phone,
            defaults={
                "name": name or f"Contact {phone[-4:]}",
                "registered": True if registered is None else registered,
                "script": script or "",
                "call_rule": call_rule or CallRule.ANSWER,
                "account_id": account_id,
            },
        )
        if not created:
            contact_phone = EmuPhone.objects.select_for_update().get(pk=contact_phone.pk)
            changes: dict[str, object] = {
                key: value
                for key, value in (
                    ("registered", registered),
                    ("script", script),
                    ("call_rule", call_rule),
                    ("name", name or None),
                )
                if value is not None and getattr(contact_phone, key) != value
            }
            if may_use(contact_phone, account_id):
                changes["account_id"] = account_id
                for key, value in changes.items():
                    setattr(contact_phone, key, value)
                contact_phone.save(update_fields=[k.removesuffix("_id") for k in changes])
            elif set(changes) - {"name"}:
                raise PhoneClaimed(phone)
        contact, _ = EmuContact.objects.update_or_create(
            owner=owner, contact=contact_phone, defaults={"name": name}
        )
    return contact
