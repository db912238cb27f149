"""QR codes and pairing codes a waweb session reported (sink consumers).

The session process emits ``QrEvent``/``PairingCodeEvent``; these handlers keep the
newest in the instance's ``WawebSession`` row, where the transport's ``current_qr``
reads it for the REST ``qr`` method, the ``scanqrcode`` socket and the cabinet, and
wake those sockets (a state-changed push) on commit."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils import timezone

from engines.events import PairingCodeEvent, QrEvent
from engines.waweb.models import WawebSession
from instances import events
from instances.models import Instance


def _id(target: Instance | int) -> int:
    return target if isinstance(target, int) else int(target.pk)


def consume_qr_codes(pairs: Sequence[tuple[Instance | int, QrEvent]]) -> None:
    for target, event in pairs:
        instance_id = _id(target)
        WawebSession.objects.update_or_create(
            instance_id=instance_id,
            defaults={
                "qr_text": event.qr.text,
                "qr_png": event.qr.png_base64,
                "qr_count": event.qr.window,
                "qr_at": event.timestamp,
                "updated_at": timezone.now(),
            },
        )
        events.state_changed(instance_id, "notAuthorized")


def consume_pairing_codes(pairs: Sequence[tuple[Instance | int, PairingCodeEvent]]) -> None:
    for target, event in pairs:
        instance_id = _id(target)
        WawebSession.objects.update_or_create(
            instance_id=instance_id,
            defaults={
                "pairing_code": event.code,
                "pairing_phone": event.phone,
                "pairing_at": event.timestamp,
                "updated_at": timezone.now(),
            },
        )
        events.state_changed(instance_id, "notAuthorized")
