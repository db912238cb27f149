"""Disappearing messages on the emulated network (setDisappearingChat).

A timer belongs to the chat on both sides: setting it writes an ``EmuChatTimer``
for each side (every member of a group) and tells their devices
(``DisappearingEvent``). Messages put on the network in a timed chat carry
``expires_at`` (sending time + timer); each runner tick (``expire``) reports the
due ones gone (``ExpiredEvent``) to the devices that have them, so they leave the
journals, getChatHistory and the cabinet. A message whose recipient's device has
not taken it in yet is kept for that device, which drops it on arrival.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from engines import sink
from engines.emulator.models import EmuChatTimer, EmuGroupMember, EmuMessage
from engines.emulator.network import lids_for, phones_of_lids
from engines.events import DisappearingEvent, EngineEvent, ExpiredEvent
from instances.models import Engine, Instance

BATCH = 1000
# WhatsApp keeps a message its recipient's device has not taken in for 30 days.
UNDELIVERED_KEPT = timedelta(days=30)


@dataclass(frozen=True)
class _Device:
    """An instance linked to a phone, and whether it sees personal chats by the
    peer's LID (enableLidMode) or by ``@c.us``."""

    pk: int
    lid_mode: bool


def _devices(phones: Iterable[str]) -> dict[str, list[_Device]]:
    found: dict[str, list[_Device]] = defaultdict(list)
    rows = Instance.objects.filter(phone__in=set(phones), engine=Engine.EMULATOR, is_deleted=False)
    for instance in rows.only("pk", "phone", "settings"):
        found[instance.phone].append(_Device(instance.pk, bool(instance.setting("enableLidMode"))))
    return found


class _Views:
    """How each device names a personal chat: the peer's ``@lid`` in enableLidMode,
    its ``@c.us`` id otherwise (as the session shows the chat's messages)."""

    def __init__(self, devices: dict[str, list[_Device]], peers: Iterable[str]) -> None:
        lid_mode = any(d.lid_mode for found in devices.values() for d in found)
        self.lids = lids_for(peers) if lid_mode else {}

    def chat(self, device: _Device, peer: str) -> str:
        if device.lid_mode and peer in self.lids:
            return self.lids[peer]
        return f"{peer}@c.us"


def set_timer(phone: str, chat_id: str, expiration: int) -> None:
    """``phone`` sets the chat's timer; both sides (every member) get it. A
    personal chat named by the peer's ``@lid`` is the same chat as its ``@c.us``
    id: the timer is kept under the phone numbers (as the network carries the
    messages) and each side's devices are told under the id they see it by."""
    now = timezone.now()
    if chat_id.endswith("@lid"):
        peer = phones_of_lids([chat_id]).get(chat_id)
        if peer is not None:
            chat_id = f"{peer}@c.us"
    if chat_id.endswith("@c.us"):
        peer = chat_id.split("@", 1)[0]
        personal = [(phone, peer), (peer, phone)]
        with transaction.atomic():
            for side, other in personal:
                EmuChatTimer.objects.update_or_create(
                    phone=side, chat_id=f"{other}@c.us", defaults={"expiration": expiration, "set_at": now}
                )
            devices = _devices([phone, peer])
            views = _Views(devices, [phone, peer])
            sink.emit_many(
                [
                    (
                        device.pk,
                        DisappearingEvent(
                            chat_id=views.chat(device, other), expiration=expiration, timestamp=now
                        ),
                    )
                    for side, other in personal
                    for device in devices.get(side, [])
                ]
            )
        return
    sides = [(phone, chat_id)]
    if chat_id.endswith("@g.us"):
        members = EmuGroupMember.objects.filter(group__group_id=chat_id).exclude(phone=phone)
        sides += [(member, chat_id) for member in members.values_list("phone", flat=True)]
    with transaction.atomic():
        for side, chat in sides:
            EmuChatTimer.objects.update_or_create(
                phone=side, chat_id=chat, defaults={"expiration": expiration, "set_at": now}
            )
        group_devices = _devices(side for side, _ in sides)
        sink.emit_many(
            [
                (device.pk, DisappearingEvent(chat_id=chat, expiration=expiration, timestamp=now))
                for side, chat in sides
                for device in group_devices.get(side, [])
            ]
        )


def apply_timers(rows: Iterable[EmuMessage]) -> None:
    """Stamp ``expires_at`` on new (unsaved) network rows sent in timed chats."""
    rows = list(rows)
    if not rows:
        return
    either = Q()
    for sender, chat_id in {(row.sender, row.chat_id) for row in rows}:
        either |= Q(phone=sender, chat_id=chat_id)
    timers = {
        (t.phone, t.chat_id): t.expiration for t in EmuChatTimer.objects.filter(either, expiration__gt=0)
    }
    for row in rows:
        seconds = timers.get((row.sender, row.chat_id))
        if seconds:
            row.expires_at = row.created_at + timedelta(seconds=seconds)


def expire(now: datetime | None = None) -> int:
    """Disappearing messages whose time (counted from sending) is up by ``now``
    leave the devices that have them: the sender's at once, the recipient's once
    its device has taken the message in. WhatsApp delivers a disappearing message
    like any other and the devices enforce the timer: one whose recipient was
    offline past its time still reaches that device when it comes back (a
    ``delivered`` receipt, an incoming notification) and is gone from it in the
    same tick, never read. Until then the network keeps it (``expired_at`` marks
    that the sender's side was told), for at most ``UNDELIVERED_KEPT`` like any
    undelivered WhatsApp message; then it is dropped, never delivered (the sender
    keeps ``sent``). Returns how many rows were handled. Safe with several
    runners: rows are claimed with SKIP LOCKED (one writer at a time on SQLite)."""
    moment = now or timezone.now()
    with transaction.atomic():
        due = list(
            EmuMessage.objects.select_for_update(skip_locked=True)
            .filter(expires_at__lte=moment)
            .filter(
                Q(expired_at__isnull=True)
                | Q(delivered_at__isnull=False)
                | Q(created_at__lte=moment - UNDELIVERED_KEPT)
            )
            .order_by("id")[:BATCH]
        )
        if not due:
            return 0
        phones = {m.sender for m in due} | {m.recipient for m in due if m.recipient}
        devices = _devices(phones)
        views = _Views(devices, phones)
        pairs: list[tuple[Instance | int, EngineEvent]] = []
        held: set[int] = set()
        for message in due:
            in_group = message.chat_id.endswith("@g.us")
            sender_side = not in_group or not message.recipient  # a group message's copies share one
            if sender_side and message.expired_at is None:
                pairs += [
                    (
                        device.pk,
                        _gone(
                            message,
                            message.chat_id if in_group else views.chat(device, message.recipient),
                            moment,
                        ),
                    )
                    for device in devices.get(message.sender, [])
                ]
            if not message.recipient:
                continue
            if message.delivered_at is not None:
                pairs += [
                    (
                        device.pk,
                        _gone(
                            message,
                            message.chat_id if in_group else views.chat(device, message.sender),
                            moment,
                        ),
                    )
                    for device in devices.get(message.recipient, [])
                ]
            elif message.created_at > moment - UNDELIVERED_KEPT:
                held.add(message.pk)
        sink.emit_many(pairs)
        EmuMessage.objects.filter(pk__in=held).update(expired_at=moment)
        EmuMessage.objects.filter(pk__in=[m.pk for m in due if m.pk not in held]).delete()
    return len(due)


def _gone(message: EmuMessage, chat_id: str, moment: datetime) -> ExpiredEvent:
    return ExpiredEvent(chat_id=chat_id, id_message=message.id_message, timestamp=moment)
