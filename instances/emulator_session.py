"""The emulator engine's session side: what a runner does for the emulated
instances it leases, each tick.

It reads the emulated network like a linked device reads WhatsApp: messages to the
instance's phone become ``incomingMessageReceived``; messages the phone (or another
linked device) sent become ``outgoingMessageReceived``. Both go through the one way
in, ``journals.services.ingest_event``. Senders on this server get their delivery
(and, with auto-read, read) receipts from here.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.db.models import Q

from instances.models import EmuContact, EmuMessage, EmuPhone, Engine, Instance, State

log = logging.getLogger(__name__)

BATCH = 500


def _names(phones: set[str]) -> dict[str, str]:
    return dict(EmuPhone.objects.filter(phone__in=phones).values_list("phone", "name"))


def _contact_names(owners: set[str], phones: set[str]) -> dict[tuple[str, str], str]:
    rows = EmuContact.objects.filter(owner__phone__in=owners, contact__phone__in=phones).values_list(
        "owner__phone", "contact__phone", "name"
    )
    return {(owner, phone): name for owner, phone, name in rows if name}


def take_inbox(runner_id: str) -> int:
    """Ingest new network messages for every authorized emulator instance this runner
    leases. Returns how many events were produced. Cursors advance under the lease
    (a runner that lost it cannot move them)."""
    from journals.notifications import MessageEvent
    from journals.services import ingest_event, mark_chat_read_on_receive

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
    start = min(i.emulator_cursor for i in instances)
    phones = set(by_phone)
    batch = list(
        EmuMessage.objects.filter(id__gt=start)
        .filter(Q(recipient__in=phones) | Q(sender__in=phones))
        .order_by("id")[:BATCH]
    )
    if not batch:
        return 0
    others = {m.sender for m in batch} | {m.recipient for m in batch if m.recipient}
    names = _names(others)
    contact_names = _contact_names(phones, others)
    produced = 0
    for message in batch:
        for instance in by_phone.get(message.recipient, []):
            if message.id <= instance.emulator_cursor:
                continue
            sender_wid = f"{message.sender}@c.us"
            contact_name = contact_names.get((instance.phone, message.sender), "")
            event = MessageEvent(
                direction="incoming",
                chat_id=sender_wid,
                id_message=message.id_message,
                sender=sender_wid,
                sender_name=names.get(message.sender, ""),
                chat_name=contact_name or names.get(message.sender, ""),
                sender_contact_name=contact_name,
                message_data=message.message_data,
                timestamp=message.created_at,
            )
            ingest_event(instance, event)
            produced += 1
            _delivered(message)
            mark_chat_read_on_receive(instance, sender_wid)
        for instance in by_phone.get(message.sender, []):
            if message.id <= instance.emulator_cursor or message.via_instance == instance.id:
                continue
            chat_id = message.chat_id
            event = MessageEvent(
                direction="outgoing",
                chat_id=chat_id,
                id_message=message.id_message,
                sender=instance.wid,
                chat_name=names.get(message.recipient, ""),
                message_data=message.message_data,
                timestamp=message.created_at,
            )
            ingest_event(instance, event)
            produced += 1
    last = batch[-1].id
    # Everyone this runner serves has now seen the network up to ``last``.
    Instance.objects.filter(
        pk__in=[i.pk for i in instances], lease__runner_id=runner_id, emulator_cursor__lt=last
    ).update(emulator_cursor=last)
    return produced


def _delivered(message: EmuMessage) -> None:
    """The recipient's device got it: the sender (if it is one of our instances)
    sees ``delivered``."""
    from django.utils import timezone

    from messaging.models import OutgoingStatus
    from messaging.services import record_status_by_id_message

    if message.delivered_at is None:
        EmuMessage.objects.filter(pk=message.pk, delivered_at__isnull=True).update(delivered_at=timezone.now())
    if message.via_instance:
        record_status_by_id_message(message.via_instance, message.id_message, OutgoingStatus.DELIVERED)


def read_receipts(reader_phone: str, chat_phone: str, *, up_to_id: int | None = None) -> list[Any]:
    """The reader's phone read a chat: messages from ``chat_phone`` become read and
    their senders (if our instances) see ``read``. Returns the network rows touched."""
    from django.utils import timezone

    from messaging.models import OutgoingStatus
    from messaging.services import record_status_by_id_message

    rows = EmuMessage.objects.filter(sender=chat_phone, recipient=reader_phone, read_at__isnull=True)
    if up_to_id is not None:
        rows = rows.filter(id__lte=up_to_id)
    touched = list(rows.values_list("pk", "via_instance", "id_message"))
    if not touched:
        return []
    EmuMessage.objects.filter(pk__in=[t[0] for t in touched]).update(read_at=timezone.now())
    for _, via_instance, id_message in touched:
        if via_instance:
            record_status_by_id_message(via_instance, id_message, OutgoingStatus.READ)
    return touched
