"""Disappearing messages on the emulated network (setDisappearingChat).

A timer belongs to the chat on both sides: setting it writes an ``EmuChatTimer``
for each side (every member of a group) and tells their devices
(``DisappearingEvent``). Messages put on the network in a timed chat carry
``expires_at``; each runner tick (``expire``) takes the due ones off the network
and reports them gone to the devices of both sides (``ExpiredEvent``), so they
leave the journals, getChatHistory and the cabinet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from engines import sink
from engines.emulator.models import EmuChatTimer, EmuGroupMember, EmuMessage
from engines.events import DisappearingEvent, EngineEvent, ExpiredEvent
from instances.models import Engine, Instance

BATCH = 1000


def _devices(phones: Iterable[str]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = defaultdict(list)
    rows = Instance.objects.filter(phone__in=set(phones), engine=Engine.EMULATOR, is_deleted=False)
    for pk, phone in rows.values_list("pk", "phone"):
        found[phone].append(pk)
    return found


def set_timer(phone: str, chat_id: str, expiration: int) -> None:
    """``phone`` sets the chat's timer; both sides (every member) get it."""
    now = timezone.now()
    sides = [(phone, chat_id)]
    if chat_id.endswith("@c.us"):
        sides.append((chat_id.split("@", 1)[0], f"{phone}@c.us"))
    elif chat_id.endswith("@g.us"):
        members = EmuGroupMember.objects.filter(group__group_id=chat_id).exclude(phone=phone)
        sides += [(member, chat_id) for member in members.values_list("phone", flat=True)]
    with transaction.atomic():
        for side, chat in sides:
            EmuChatTimer.objects.update_or_create(
                phone=side, chat_id=chat, defaults={"expiration": expiration, "set_at": now}
            )
        devices = _devices(side for side, _ in sides)
        sink.emit_many(
            [
                (pk, DisappearingEvent(chat_id=chat, expiration=expiration, timestamp=now))
                for side, chat in sides
                for pk in devices.get(side, [])
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
    """Take the messages due by ``now`` off the network and tell both sides'
    devices. Safe with several runners: rows are claimed with SKIP LOCKED (one
    writer at a time on SQLite) and deleted in the same transaction."""
    moment = now or timezone.now()
    with transaction.atomic():
        due = list(
            EmuMessage.objects.select_for_update(skip_locked=True)
            .filter(expires_at__lte=moment)
            .order_by("id")[:BATCH]
        )
        if not due:
            return 0
        devices = _devices({m.sender for m in due} | {m.recipient for m in due if m.recipient})
        pairs: list[tuple[Instance | int, EngineEvent]] = []
        for message in due:
            in_group = message.chat_id.endswith("@g.us")
            if not in_group or not message.recipient:  # the sender's side, once
                pairs += [
                    (pk, ExpiredEvent(chat_id=message.chat_id, id_message=message.id_message, timestamp=moment))
                    for pk in devices.get(message.sender, [])
                ]
            if message.recipient:
                chat_id = message.chat_id if in_group else f"{message.sender}@c.us"
                pairs += [
                    (pk, ExpiredEvent(chat_id=chat_id, id_message=message.id_message, timestamp=moment))
                    for pk in devices.get(message.recipient, [])
                ]
        sink.emit_many(pairs)
        EmuMessage.objects.filter(pk__in=[m.pk for m in due]).delete()
    return len(due)
