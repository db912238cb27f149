"""Statuses on the emulated network, seen from the viewers' side, plus simulated
contacts posting statuses (the sandbox and the control API).

Each tick of a session runner:

- ``take_statuses``: the instances it leases take in the statuses posted to their
  phone (``EmuStatusView`` rows not yet delivered) as ``incomingMessageReceived`` in
  the chat ``status@broadcast``, and the revokes of statuses they took in, through
  the engines' sink like any message. Taking one in is the viewer's
  delivery receipt; with ``markIncomingMessagesReaded`` the instance views it at
  once (read receipt).
- ``emulate_status_views``: viewers that are simulated phones (no instance on this
  server is linked to them) deliver and view the statuses of the instances it
  leases after ``EMULATOR_STATUS_DELIVERED_AFTER_SECONDS`` and
  ``EMULATOR_STATUS_READ_AFTER_SECONDS``.

Receipts reach the poster's statistics through ``statuses.services``. Expired
(24 h) and deleted statuses are neither taken in nor viewed any more.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from engines import media, sink
from engines.contract import STATUS_BROADCAST
from engines.emulator.models import EmuContact, EmuPhone, EmuStatus, EmuStatusView
from engines.emulator.network import EventError, _peer, sample_file
from engines.emulator.status_posts import STATUS_AUDIENCE_LIMIT, STATUS_LIFETIME
from engines.events import MessageEvent, StatusViewEvent
from instances.models import Engine, Instance, State

BATCH = 500
FONTS = ("SERIF", "SANS_SERIF", "NORICAN_REGULAR", "BRYNDAN_WRITE", "OSWALD_HEAVY")


def _wid(phone: str) -> str:
    return f"{phone}@c.us"


def revoke_id(id_message: str) -> str:
    """The id of the revoke a viewer receives: derived, so taking it in twice
    journals it once."""
    return hashlib.sha256(f"revoke:{id_message}".encode()).hexdigest()[:32].upper()


def _linked_phones() -> QuerySet[Instance, Any]:
    return Instance.objects.filter(engine=Engine.EMULATOR, is_deleted=False).exclude(wid="").values("phone")


def _live(views: QuerySet[EmuStatusView]) -> QuerySet[EmuStatusView]:
    return views.filter(status__deleted_at__isnull=True, status__expires_at__gt=timezone.now())


def _report(status: EmuStatus, viewer: str, receipt: str, moment: Any) -> None:
    """Tell the poster (one of our instances) that ``viewer`` delivered / read it."""
    if status.via_instance:
        sink.emit(
            status.via_instance,
            StatusViewEvent(id_message=status.id_message, viewer=_wid(viewer), status=receipt, timestamp=moment),  # type: ignore[arg-type]
        )


def take_statuses(runner_id: str) -> int:
    """Ingest statuses (and revokes) posted to the phones of the authorized
    emulator instances this runner leases. Returns how many events were produced."""
    instances = list(
        Instance.objects.filter(
            lease__runner_id=runner_id, engine=Engine.EMULATOR, state=State.AUTHORIZED, is_deleted=False
        ).exclude(phone="")
    )
    if not instances:
        return 0
    by_phone: dict[str, list[Instance]] = defaultdict(list)
    for instance in instances:
        by_phone[instance.phone].append(instance)
    fresh = list(
        _live(EmuStatusView.objects.filter(viewer__in=list(by_phone), delivered_at__isnull=True))
        .select_related("status")
        .order_by("status__created_at", "id")[:BATCH]
    )
    revoked = list(
        EmuStatusView.objects.filter(
            viewer__in=list(by_phone),
            delivered_at__isnull=False,
            revoke_seen_at__isnull=True,
            status__deleted_at__isnull=False,
        )
        .select_related("status")
        .order_by("status__deleted_at", "id")[:BATCH]
    )
    if not fresh and not revoked:
        return 0
    posters = {v.status.poster for v in fresh + revoked}
    names = dict(EmuPhone.objects.filter(phone__in=posters).values_list("phone", "name"))
    contact_names = {
        (owner, phone): name
        for owner, phone, name in EmuContact.objects.filter(
            owner__phone__in=list(by_phone), contact__phone__in=posters
        ).values_list("owner__phone", "contact__phone", "name")
        if name
    }
    produced = 0
    for view in fresh:
        status, now = view.status, timezone.now()
        read = False
        for instance in by_phone[view.viewer]:
            contact_name = contact_names.get((instance.phone, status.poster), "")
            sink.emit(
                instance,
                MessageEvent(
                    direction="incoming",
                    chat_id=STATUS_BROADCAST,
                    id_message=status.id_message,
                    sender=_wid(status.poster),
                    sender_name=names.get(status.poster, ""),
                    chat_name=contact_name or names.get(status.poster, ""),
                    sender_contact_name=contact_name,
                    message_data=status.message_data,
                    timestamp=status.created_at,
                ),
            )
            produced += 1
            read = read or bool(instance.setting("markIncomingMessagesReaded"))
        changed = EmuStatusView.objects.filter(pk=view.pk, delivered_at__isnull=True).update(
            delivered_at=now, read_at=now if read else None
        )
        if changed:
            _report(status, view.viewer, "delivered", now)
            if read:
                _report(status, view.viewer, "read", now)
    for view in revoked:
        status, now = view.status, timezone.now()
        for instance in by_phone[view.viewer]:
            sink.emit(
                instance,
                MessageEvent(
                    direction="incoming",
                    chat_id=STATUS_BROADCAST,
                    id_message=revoke_id(status.id_message),
                    sender=_wid(status.poster),
                    sender_name=names.get(status.poster, ""),
                    chat_name=names.get(status.poster, ""),
                    sender_contact_name=contact_names.get((instance.phone, status.poster), ""),
                    message_data={"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": status.id_message}},
                    timestamp=status.deleted_at or now,
                ),
            )
            produced += 1
        EmuStatusView.objects.filter(pk=view.pk).update(revoke_seen_at=now)
    return produced


def emulate_status_views(runner_id: str, *, delivered_after: float, read_after: float) -> int:
    """Simulated viewers of the statuses posted by instances this runner leases
    deliver them after ``delivered_after`` seconds and view them after
    ``read_after``. Returns how many receipts were produced."""
    now = timezone.now()
    mine = Instance.objects.filter(lease__runner_id=runner_id, engine=Engine.EMULATOR, is_deleted=False).values("pk")
    views = _live(EmuStatusView.objects.filter(status__via_instance__in=mine)).exclude(viewer__in=_linked_phones())
    produced = 0
    steps = (
        ("delivered", views.filter(delivered_at__isnull=True), delivered_after),
        ("read", views.filter(delivered_at__isnull=False, read_at__isnull=True), read_after),
    )
    for receipt, due, after in steps:
        rows = list(
            due.filter(status__created_at__lte=now - timedelta(seconds=after))
            .select_related("status")
            .order_by("status__created_at", "id")[:BATCH]
        )
        for view in rows:
            stamp = {"delivered_at": now} if receipt == "delivered" else {"read_at": now}
            column = next(iter(stamp))
            if EmuStatusView.objects.filter(pk=view.pk, **{f"{column}__isnull": True}).update(**stamp):
                _report(view.status, view.viewer, receipt, now)
                produced += 1
    return produced


# --- A simulated contact posts a status --------------------------------------------------


class StatusEventError(Exception):
    """The status cannot be posted (the control API answers 400 with this text)."""


def contact_posts_status(
    instance: Instance,
    *,
    phone: str,
    kind: str,
    fields: dict[str, Any],
    name: str = "",
) -> EmuStatus:
    """A simulated contact (created if new) posts a status that the instance's phone
    may see, as may the contact's own contacts. ``kind``: ``text`` (``message``,
    ``backgroundColor``, ``font``) or a picture/video (``imageMessage``,
    ``videoMessage``: ``caption``, optional base64 ``file``, else a generated one)."""

    if instance.engine != Engine.EMULATOR or not instance.phone or instance.state != State.AUTHORIZED:
        raise StatusEventError("the instance must be authorized on the emulator (pair it first)")
    if phone == instance.phone:
        raise StatusEventError("use sendTextStatus to post the instance's own statuses")
    try:
        # As for messages: another tenant's number cannot be made to post.
        poster = _peer(phone, name, author_for=instance)
    except EventError as exc:
        raise StatusEventError(str(exc)) from exc
    color = str(fields.get("backgroundColor") or "#000000")
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
        raise StatusEventError("backgroundColor must be #RRGGBB")
    if fields.get("font") and fields["font"] not in FONTS:
        raise StatusEventError(f"font must be one of {', '.join(FONTS)}")
    if kind == "text":
        type_message = "extendedTextMessage"
        message_data: dict[str, Any] = {
            "typeMessage": type_message,
            "extendedTextMessageData": {
                "text": str(fields.get("message", "")),
                "backgroundColor": color,
                "font": str(fields.get("font") or "SANS_SERIF"),
            },
        }
    elif kind in ("imageMessage", "videoMessage"):
        type_message = kind
        message_data = {"typeMessage": kind, "fileMessageData": _stored_file(instance, kind, fields, sample_file)}
    else:
        raise StatusEventError("kind must be text, imageMessage or videoMessage")
    audience = [instance.phone] + list(
        EmuContact.objects.filter(owner=poster, contact__registered=True)
        .exclude(contact__phone__in=[instance.phone, phone])
        .order_by("id")
        .values_list("contact__phone", flat=True)[: STATUS_AUDIENCE_LIMIT - 1]
    )
    now = timezone.now()
    with transaction.atomic():
        status = EmuStatus.objects.create(
            poster=phone,
            id_message=secrets.token_hex(16).upper(),
            type_message=type_message,
            message_data=message_data,
            created_at=now,
            expires_at=now + STATUS_LIFETIME,
        )
        EmuStatusView.objects.bulk_create([EmuStatusView(status=status, viewer=v) for v in audience])
    return status


def _stored_file(instance: Instance, kind: str, fields: dict[str, Any], sample_file: Any) -> dict[str, Any]:
    content, mime, extension = sample_file(kind)
    if fields.get("file"):
        try:
            content = base64.b64decode(str(fields["file"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StatusEventError("'file' must be base64") from exc
    try:
        stored = media.store(
            instance_id=instance.pk, content=content, file_name=f"status{extension}", mime_hints=(mime,)
        )
    except media.MediaUnavailable as exc:
        raise StatusEventError(str(exc)) from exc
    return {
        "downloadUrl": stored.url,
        "caption": str(fields.get("caption", "")),
        "fileName": stored.file_name,
        "jpegThumbnail": "",
        "mimeType": stored.mime_type,
        "isAnimated": False,
    }


def prune_network_statuses() -> int:
    """Network housekeeping: statuses (and their views) 30 days after they expired."""
    deleted, _ = EmuStatus.objects.filter(expires_at__lt=timezone.now() - timedelta(days=30)).delete()
    return deleted
