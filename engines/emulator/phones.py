"""Who may use a number of the emulated network: one tenant per number.

The emulated network is shared by every account on the server (instances of
different tenants may message each other), but a number belongs to at most one
account: the first that links an instance to it or adds it as a simulated contact
claims it (``EmuPhone.account``). Another account may message that number and keep
it in its address book, but may not link an instance to it (it would receive the
owner's messages and send as them), script it, rename it or write as it. A number
nobody claimed (it exists because someone messaged it) is free to claim.
"""

from __future__ import annotations

from django.db import transaction

from engines.emulator.models import EmuPhone
from instances.models import Instance


def ensure_phone(phone: str, name: str = "") -> EmuPhone:
    """Get or create an emulated WhatsApp account for ``phone``."""
    obj, created = EmuPhone.objects.get_or_create(
        phone=phone, defaults={"name": name or f"Relay {phone[-4:]}"}
    )
    if not created and name and obj.name != name:
        obj.name = name
        obj.save(update_fields=["name"])
    return obj


class PhoneClaimed(Exception):
    """The number belongs to another account on this server."""

    def __init__(self, phone: str) -> None:
        super().__init__(f"+{phone} belongs to another account on this server")
        self.phone = phone


def _linked_elsewhere(phone: str, account_id: int | None) -> bool:
    """True if a live instance of another account is linked to ``phone`` (numbers
    linked before claims existed, or linked by the demo bootstrap, have no claim)."""
    linked = Instance.objects.filter(phone=phone, is_deleted=False)
    if account_id is not None:
        linked = linked.exclude(account_id=account_id)
    return linked.exists()


def owner_account(phone: str) -> int | None:
    """The account of the oldest live instance linked to ``phone`` (for numbers
    linked without a claim), or None."""
    return (
        Instance.objects.filter(phone=phone, is_deleted=False)
        .order_by("created_at")
        .values_list("account_id", flat=True)
        .first()
    )


def may_use(phone: EmuPhone, account_id: int | None) -> bool:
    """Whether ``account_id`` may link, script or write as ``phone``."""
    if phone.account_id not in (None, account_id):
        return False
    return not _linked_elsewhere(phone.phone, account_id)


def claim_phone(phone: str, account_id: int, *, name: str = "") -> EmuPhone:
    """Get or create ``phone`` for ``account_id``, claiming it if unclaimed; with
    ``name``, also its profile name. Raises ``PhoneClaimed`` if another account owns
    it. Locks the row until the caller's transaction ends, so two accounts racing
    for one number cannot both win."""
    with transaction.atomic():
        ensure_phone(phone)
        row = EmuPhone.objects.select_for_update().get(phone=phone)
        if not may_use(row, account_id):
            raise PhoneClaimed(phone)
        fields = []
        if row.account_id is None:
            row.account_id = account_id
            fields.append("account")
        if name and row.name != name:
            row.name = name
            fields.append("name")
        if fields:
            row.save(update_fields=fields)
    return row


def check_may_act_as(phone: str, account_id: int) -> None:
    """Refuse (``PhoneClaimed``) to put events on the network *from* ``phone`` for
    ``account_id`` when the number is another account's: its instance would take
    them in as messages its own phone sent."""
    row = EmuPhone.objects.filter(phone=phone).first()
    if row is not None and not may_use(row, account_id):
        raise PhoneClaimed(phone)
    if row is None and _linked_elsewhere(phone, account_id):
        raise PhoneClaimed(phone)
