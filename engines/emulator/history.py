"""enableMessagesHistory: when an instance with the setting on pairs, the phone
syncs its earlier messages to the new linked device, as WhatsApp does: the
network's messages to and from the phone (newest ``HISTORY_LIMIT``) reach the
journals as one ``HistoryEvent`` (journal rows and chat list entries, no
notifications). Without the setting a new device sees messages from pairing on
(``session.start_at_head``)."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from engines import sink
from engines.emulator.groups import subjects as group_subjects
from engines.emulator.models import EmuContact, EmuMessage, EmuPhone
from engines.emulator.network import lids_for
from engines.events import HistoryChat, HistoryEvent, MessageEvent
from instances.models import Instance

HISTORY_LIMIT = 2000


def sync_history(instance: Instance, *, up_to_id: int) -> int:
    """Emit the phone's network messages up to ``up_to_id`` (the network head at
    pairing; later ones the session takes in live). Returns how many."""
    phone = instance.phone
    if not phone:
        return 0
    mine = Q(recipient=phone) | (Q(sender=phone) & (Q(recipient="") | ~Q(chat_id__endswith="@g.us")))
    # Disappearing messages whose time is up are gone from the phone: not synced.
    alive = EmuMessage.objects.filter(mine, id__lte=up_to_id).exclude(expires_at__lte=timezone.now())
    rows = list(alive.order_by("-id")[:HISTORY_LIMIT])
    rows.reverse()
    if not rows:
        return 0
    others = {r.sender for r in rows} | {r.recipient for r in rows if r.recipient}
    names = dict(EmuPhone.objects.filter(phone__in=others).values_list("phone", "name"))
    saved = dict(
        EmuContact.objects.filter(owner__phone=phone, contact__phone__in=others).values_list("contact__phone", "name")
    )
    # enableLidMode: the synced chats are named as the live ones will be.
    lids = lids_for(others) if instance.setting("enableLidMode") else {}
    group_ids = {r.chat_id for r in rows if r.chat_id.endswith("@g.us")}
    subjects: dict[str, str] = {}
    if group_ids:
        subjects = group_subjects(group_ids)
    wid = f"{phone}@c.us"
    messages: list[MessageEvent] = []
    chats: dict[str, HistoryChat] = {}
    for row in rows:
        incoming = row.recipient == phone and row.sender != phone
        in_group = row.chat_id.endswith("@g.us")
        peer = row.sender if incoming else row.recipient
        chat_id = row.chat_id if in_group else lids.get(peer, f"{peer}@c.us")
        chat_name = subjects.get(chat_id, "") if in_group else saved.get(peer) or names.get(peer, "")
        messages.append(
            MessageEvent(
                direction="incoming" if incoming else "outgoing",
                chat_id=chat_id,
                id_message=row.id_message,
                sender=lids.get(row.sender, f"{row.sender}@c.us") if incoming else wid,
                sender_name=names.get(row.sender, "") if incoming else "",
                chat_name=chat_name,
                sender_contact_name=saved.get(row.sender, "") if incoming else "",
                message_data=row.message_data,
                timestamp=row.created_at,
            )
        )
        chats[chat_id] = HistoryChat(chat_id=chat_id, name=chat_name, last_activity=row.created_at)
    sink.emit(instance, HistoryEvent(messages=tuple(messages), chats=tuple(chats.values()), timestamp=timezone.now()))
    return len(messages)
