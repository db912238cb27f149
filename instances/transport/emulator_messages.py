"""Message delivery on the emulated network (the emulator's ``send_message``)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from instances.models import EmuMessage, EmuPhone
from instances.transport.base import OutgoingPayload, SendResult


def emulator_send(*, sender_phone: str, payload: OutgoingPayload) -> SendResult:
    """Put a message on the emulated network. Idempotent per (sender, id_message)."""
    chat_id = payload.chat_id
    if chat_id.endswith("@c.us"):
        recipient = chat_id.split("@", 1)[0]
        if not EmuPhone.objects.filter(phone=recipient, registered=True).exists():
            return SendResult("noAccount", "The number has no WhatsApp account")
    elif chat_id.endswith("@g.us"):
        # Groups arrive with the groups issue; until then every group is unknown.
        return SendResult("notInGroup", "The instance is not a member of this group")
    else:  # @lid: resolve through the emulated directory later; accept for now
        recipient = ""
    try:
        with transaction.atomic():
            EmuMessage.objects.create(
                sender=sender_phone,
                chat_id=chat_id,
                recipient=recipient,
                id_message=payload.id_message,
                type_message=payload.type_message,
                payload=dict(payload.data),
            )
    except IntegrityError:
        pass  # already on the network: a retry after a crash; do not deliver twice
    return SendResult("sent")
