"""Account writes that are not instance writes (kept apart from services.py)."""

from __future__ import annotations

from django.db import transaction

from instances import events
from instances.models import Account, new_partner_token


def rotate_partner_token(account: Account) -> str:
    """Issue a new partner token; the old one stops working at once (the partner
    API, the webhook API and the emulator control API look the token up on every
    request, nothing caches it). Open cabinet pages of the account are told."""
    with transaction.atomic():
        account.partner_token = new_partner_token()
        account.save(update_fields=["partner_token"])
        events.account_changed(account.pk)
    return account.partner_token
