"""Statuses (stories) on the emulated network: the emulator's side of posting and
deleting them. Posting comes through the send queue like any message (a payload to
``STATUS_BROADCAST``); the viewers' side (taking statuses in, receipts) runs in the
session runner (``engines.emulator.statuses``).

Who may see a status (its audience) is fixed when it is posted:

- with ``participants``: those chat ids that are registered phones of the network;
- without (or empty): the poster's contacts, i.e. its phone's address book
  (``EmuContact``: what ``addContact`` and the control API's contacts fill), the
  registered ones, the first ``STATUS_AUDIENCE_LIMIT`` in the order they were added.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from engines.contract import OutgoingPayload, SendResult
from engines.emulator.models import EmuContact, EmuPhone, EmuStatus, EmuStatusView
from engines.shapes import message_data_from_payload

STATUS_LIFETIME = timedelta(hours=24)
STATUS_AUDIENCE_LIMIT = 1024  # API.md §5: "first 1024 contacts"


def status_audience(poster: str, participants: Sequence[str]) -> list[str]:
    """The phones (digits) a status of ``poster`` reaches (see the module docstring)."""
    if participants:
        wanted = [p.split("@", 1)[0] for p in participants if p.endswith("@c.us")]
        known = set(EmuPhone.objects.filter(phone__in=wanted, registered=True).values_list("phone", flat=True))
        return [p for p in dict.fromkeys(wanted) if p in known and p != poster]
    return list(
        EmuContact.objects.filter(owner__phone=poster, contact__registered=True)
        .exclude(contact__phone=poster)
        .order_by("id")
        .values_list("contact__phone", flat=True)[:STATUS_AUDIENCE_LIMIT]
    )


def post_status(*, poster: str, via_instance: int | None, payload: OutgoingPayload) -> SendResult:
    """Put a status on the network with its audience. Idempotent per (poster,
    id_message): a retry answers the audience of the status already posted."""

    existing = EmuStatus.objects.filter(poster=poster, id_message=payload.id_message).first()
    if existing is None:
        raw = payload.data.get("participants") or []
        participants = [str(p) for p in raw] if isinstance(raw, list) else []
        audience = status_audience(poster, participants)
        now = timezone.now()
        try:
            with transaction.atomic():
                existing = EmuStatus.objects.create(
                    poster=poster,
                    id_message=payload.id_message,
                    type_message=payload.type_message,
                    message_data=message_data_from_payload(payload.type_message, dict(payload.data)),
                    via_instance=via_instance,
                    created_at=now,
                    expires_at=now + STATUS_LIFETIME,
                )
                EmuStatusView.objects.bulk_create([EmuStatusView(status=existing, viewer=v) for v in audience])
        except IntegrityError:
            existing = EmuStatus.objects.get(poster=poster, id_message=payload.id_message)
    viewers = existing.views.order_by("id").values_list("viewer", flat=True)
    return SendResult("sent", recipients=tuple(f"{v}@c.us" for v in viewers))


def delete_status(*, poster: str, id_message: str) -> bool:
    """Revoke a live status: viewers' sessions take the revoke in and stop showing it."""
    return bool(
        EmuStatus.objects.filter(
            poster=poster, id_message=id_message, deleted_at__isnull=True, expires_at__gt=timezone.now()
        ).update(deleted_at=timezone.now())
    )
