"""The emulator engine's session side: what a runner does for the emulated
instances it leases, each tick.

It reads the emulated network like a linked device reads WhatsApp: messages to the
instance's phone become ``incomingMessageReceived``; messages the phone (or another
linked device) sent become ``outgoingMessageReceived``; signals (``EmuSignal``) to the
phone become ``incomingCall`` and ``incomingBlock``. Both go through the one way
in, ``journals.services.ingest_event``. Senders on this server get their delivery
(and, with auto-read, read) receipts from here.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from engines import sink
from engines.contract import SessionHost
from engines.emulator import calls as emulator_calls
from engines.emulator.disappearing import expire
from engines.emulator.groups import subjects
from engines.emulator.models import (
    EmuContact,
    EmuMessage,
    EmuPhone,
    EmuPresence,
    EmuSession,
    EmuSignal,
    PresenceKind,
    SignalKind,
)
from engines.emulator.network import lids_for
from engines.emulator.receipts import emulate_receipts
from engines.emulator.statuses import emulate_status_views, take_statuses
from engines.events import BlockEvent, CallEvent, GroupEvent, MessageEvent, ReceiptEvent
from instances import events, services
from instances.models import Engine, Instance, State

log = logging.getLogger(__name__)

BATCH = 500


def _names(phones: set[str]) -> dict[str, str]:
    return dict(EmuPhone.objects.filter(phone__in=phones).values_list("phone", "name"))


def _contact_names(owners: set[str], phones: set[str]) -> dict[tuple[str, str], str]:
    rows = EmuContact.objects.filter(owner__phone__in=owners, contact__phone__in=phones).values_list(
        "owner__phone", "contact__phone", "name"
    )
    return {(owner, phone): name for owner, phone, name in rows if name}


def network_head() -> tuple[int, int]:
    """The newest message and signal ids on the network (0 when empty)."""
    head = EmuMessage.objects.aggregate(head=Max("id"))["head"] or 0
    signal_head = EmuSignal.objects.aggregate(head=Max("id"))["head"] or 0
    return head, signal_head


def start_at_head(instance_id: int) -> int:
    """A newly linked device takes in messages from now on (the phone's history
    comes as a sync, ``engines.emulator.history``). Returns the message head."""
    head, signal_head = network_head()
    EmuSession.objects.update_or_create(
        instance_id=instance_id, defaults={"cursor": head, "signal_cursor": signal_head}
    )
    return head


class Cursors(NamedTuple):
    """An instance's place on the network: the last message and signal ids it took in."""

    cursor: int
    signal_cursor: int


def session_cursors(instance_ids: list[int]) -> dict[int, Cursors]:
    """Each instance's cursors; an instance without a row yet (linked before the
    emulator kept them apart) starts at the network head. Plain values: a runner
    reads them for every instance it leases, every tick."""

    def read(ids: list[int]) -> dict[int, Cursors]:
        rows = EmuSession.objects.filter(instance_id__in=ids).values_list("instance_id", "cursor", "signal_cursor")
        return {pk: Cursors(cursor, signal_cursor) for pk, cursor, signal_cursor in rows}

    found = read(instance_ids)
    missing = [i for i in instance_ids if i not in found]
    if missing:
        head, signal_head = network_head()
        EmuSession.objects.bulk_create(
            [EmuSession(instance_id=i, cursor=head, signal_cursor=signal_head) for i in missing],
            ignore_conflicts=True,
        )
        found.update(read(missing))
    return found


def take_inbox(runner_id: str) -> int:
    """Ingest what the network carried for every authorized emulator instance this
    runner leases: messages (to or from its phone) and signals (calls, blocks), in
    network order. Returns how many events were produced. Cursors advance under the
    lease (a runner that lost it cannot move them).

    The instances are read as (id, phone) pairs first; full rows are loaded only for
    the ones that get an event this tick. Most of what a busy runner reads is the
    network's copy of what its own instances sent through the API, which produces
    nothing (a runner leasing thousands of instances built a model per instance
    and per cursor row every tick for it)."""
    leased = Instance.objects.filter(
        lease__runner_id=runner_id, engine=Engine.EMULATOR, state=State.AUTHORIZED, is_deleted=False
    ).exclude(phone="")
    served = list(leased.values_list("pk", "phone"))
    if not served:
        return 0
    ids_by_phone: dict[str, list[int]] = defaultdict(list)
    for pk, phone in served:
        ids_by_phone[phone].append(pk)
    phones = set(ids_by_phone)
    ids = [pk for pk, _ in served]
    cursors = session_cursors(ids)
    messages = list(
        EmuMessage.objects.filter(id__gt=min(cursors[i].cursor for i in ids))
        .filter(Q(recipient__in=phones) | Q(sender__in=phones))
        .order_by("id")[:BATCH]
    )
    signals = list(
        EmuSignal.objects.filter(
            id__gt=min(cursors[i].signal_cursor for i in ids), to_phone__in=phones
        ).order_by("id")[:BATCH]
    )
    messages = _arrived(messages)
    messages, signals = _in_horizon(messages, signals)
    if not messages and not signals:
        return 0
    receivers = _receivers(ids_by_phone, cursors, messages, signals)
    produced = 0
    if receivers:
        produced = _ingest(leased.filter(pk__in=receivers), cursors, messages, signals)
    # Everyone this runner serves has now seen the network up to here.
    mine = EmuSession.objects.filter(instance_id__in=ids, instance__lease__runner_id=runner_id)
    if messages:
        last = messages[-1].id
        mine.filter(cursor__lt=last).update(cursor=last)
    if signals:
        last = signals[-1].id
        mine.filter(signal_cursor__lt=last).update(signal_cursor=last)
    return produced


def _receivers(
    ids_by_phone: dict[str, list[int]],
    cursors: dict[int, Cursors],
    messages: list[EmuMessage],
    signals: list[EmuSignal],
) -> set[int]:
    """The instances ``_Inbox`` will produce an event for (the same tests it applies)."""
    out: set[int] = set()
    for message in messages:
        out.update(i for i in ids_by_phone.get(message.recipient, ()) if message.id > cursors[i].cursor)
        if message.chat_id.endswith("@g.us") and message.recipient:
            continue  # a member's copy: only members take it in
        out.update(
            i
            for i in ids_by_phone.get(message.sender, ())
            if message.id > cursors[i].cursor and message.via_instance != i
        )
    for signal in signals:
        out.update(i for i in ids_by_phone.get(signal.to_phone, ()) if signal.id > cursors[i].signal_cursor)
    return out


def _ingest(
    receivers: QuerySet[Instance],
    cursors: dict[int, Cursors],
    messages: list[EmuMessage],
    signals: list[EmuSignal],
) -> int:
    """Hand the batch to the instances in ``receivers`` (a queryset of the leased
    instances that get an event), in network order. Returns how many events."""
    instances = list(receivers)
    if not instances:
        return 0  # they left the lease or were logged out since the first read
    by_phone: dict[str, list[Instance]] = defaultdict(list)
    for instance in instances:
        by_phone[instance.phone].append(instance)
    others = {m.sender for m in messages} | {m.recipient for m in messages if m.recipient}
    inbox = _Inbox(by_phone, cursors, _names(others), _contact_names(set(by_phone), others))
    inbox.lid_mode = {i.pk for i in instances if i.setting("enableLidMode")}
    if inbox.lid_mode:
        inbox.lids = lids_for(others | {s.from_phone for s in signals})
    group_ids = {m.chat_id for m in messages if m.chat_id.endswith("@g.us")}
    if group_ids:
        inbox.subjects = subjects(group_ids)
    for item in _network_order(messages, signals):
        if isinstance(item, EmuMessage):
            inbox.message(item)
        else:
            inbox.signal(item)
    return inbox.produced


def _arrived(messages: list[EmuMessage]) -> list[EmuMessage]:
    """Messages up to the first one still on its way: a sender typing it first
    (typingTime, autoTyping) puts it on the network with ``created_at`` when the
    typing ends. Later rows wait behind it, so every session keeps network order
    (and its cursor never passes a message it has not taken in)."""
    now = timezone.now()
    for index, message in enumerate(messages):
        if message.created_at > now:
            return messages[:index]
    return messages


def _in_horizon(
    messages: list[EmuMessage], signals: list[EmuSignal]
) -> tuple[list[EmuMessage], list[EmuSignal]]:
    """Cut both batches at the earliest moment a full batch reaches: past it the
    other table may hold rows this tick has not read, which would come out of order."""
    horizon = None
    if len(messages) == BATCH:
        horizon = messages[-1].created_at
    if len(signals) == BATCH and (horizon is None or signals[-1].created_at < horizon):
        horizon = signals[-1].created_at
    if horizon is None:
        return messages, signals
    return [m for m in messages if m.created_at <= horizon], [s for s in signals if s.created_at <= horizon]


def _network_order(messages: list[EmuMessage], signals: list[EmuSignal]) -> Iterator[EmuMessage | EmuSignal]:
    """Merge the two id-ordered batches by time (a message first on a tie)."""
    i = j = 0
    while i < len(messages) or j < len(signals):
        if j >= len(signals) or (i < len(messages) and messages[i].created_at <= signals[j].created_at):
            yield messages[i]
            i += 1
        else:
            yield signals[j]
            j += 1


class _Inbox:
    """One tick's ingestion for the instances of a runner, keyed by phone."""

    def __init__(
        self,
        by_phone: dict[str, list[Instance]],
        cursors: dict[int, Cursors],
        names: dict[str, str],
        contact_names: dict[tuple[str, str], str],
    ) -> None:
        self.by_phone = by_phone
        self.cursors = cursors
        self.names = names
        self.contact_names = contact_names
        self.subjects: dict[str, str] = {}
        self.produced = 0
        # enableLidMode: these instances see personal chats by the peer's LID.
        self.lid_mode: set[int] = set()
        self.lids: dict[str, str] = {}

    def _peer_id(self, instance: Instance, phone: str) -> str:
        if instance.pk in self.lid_mode and phone in self.lids:
            return self.lids[phone]
        return f"{phone}@c.us"

    def message(self, message: EmuMessage) -> None:
        # A group message is one row per member (``recipient``) plus the sender's
        # copy (``recipient=""``): members take theirs in the group chat, the
        # sender's other devices see the copy.
        in_group = message.chat_id.endswith("@g.us")
        for instance in self.by_phone.get(message.recipient, []):
            if message.id <= self.cursors[instance.pk].cursor:
                continue
            sender_wid = self._peer_id(instance, message.sender)
            contact_name = self.contact_names.get((instance.phone, message.sender), "")
            chat_id = message.chat_id if in_group else sender_wid
            chat_name = (
                self.subjects.get(chat_id, "")
                if in_group
                else contact_name or self.names.get(message.sender, "")
            )
            event = MessageEvent(
                direction="incoming",
                chat_id=chat_id,
                id_message=message.id_message,
                sender=sender_wid,
                sender_name=self.names.get(message.sender, ""),
                chat_name=chat_name,
                sender_contact_name=contact_name,
                message_data=message.message_data,
                timestamp=message.created_at,
            )
            # Delivered before the event: the recipient may read the chat at once
            # (markIncomingMessagesReaded), and the sender sees delivered, then read.
            _delivered(message)
            sink.emit(instance, event)
            self.produced += 1
        if in_group and message.recipient:
            return
        for instance in self.by_phone.get(message.sender, []):
            if message.id <= self.cursors[instance.pk].cursor or message.via_instance == instance.id:
                continue
            contact_name = self.contact_names.get((instance.phone, message.recipient), "")
            event = MessageEvent(
                direction="outgoing",
                chat_id=message.chat_id if in_group else self._peer_id(instance, message.recipient),
                id_message=message.id_message,
                sender=instance.wid,
                chat_name=self.subjects.get(message.chat_id, "")
                if in_group
                else contact_name or self.names.get(message.recipient, ""),
                message_data=message.message_data,
                timestamp=message.created_at,
            )
            sink.emit(instance, event)
            self.produced += 1

    def signal(self, signal: EmuSignal) -> None:
        for instance in self.by_phone.get(signal.to_phone, []):
            if signal.id <= self.cursors[instance.pk].signal_cursor:
                continue
            chat_id = self._peer_id(instance, signal.from_phone)
            if signal.kind == SignalKind.CALL:
                duration = signal.payload.get("duration")
                sink.emit(
                    instance,
                    CallEvent(
                        id_call=str(signal.payload["idCall"]),
                        chat_id=chat_id,
                        status=str(signal.payload["status"]),
                        timestamp=signal.created_at,
                        direction=str(signal.payload.get("direction", "incoming")),
                        duration=int(duration) if duration is not None else None,
                        ended=bool(signal.payload.get("ended", False)),
                    ),
                )
            elif signal.kind == SignalKind.BLOCK:
                sink.emit(instance, BlockEvent(chat_id=chat_id, timestamp=signal.created_at))
            elif signal.kind == SignalKind.GROUP:
                group = GroupEvent(
                    chat_id=str(signal.payload["groupId"]),
                    subject=str(signal.payload.get("subject", "")),
                    timestamp=signal.created_at,
                )
                sink.emit(instance, group)
            else:
                log.warning("unknown emulator signal %s (%s)", signal.pk, signal.kind)
                continue
            self.produced += 1


def _delivered(message: EmuMessage) -> None:
    """The recipient's device got it: the sender (if it is one of our instances)
    sees ``delivered``."""
    now = timezone.now()
    if message.delivered_at is None:
        EmuMessage.objects.filter(pk=message.pk, delivered_at__isnull=True).update(delivered_at=now)
    if message.via_instance:
        sink.emit(message.via_instance, ReceiptEvent(message.id_message, "delivered", now))


def read_receipts(reader_phone: str, chat_phone: str, *, up_to_id: int | None = None) -> list[Any]:
    """The reader's phone read a chat: messages from ``chat_phone`` become read and
    their senders (if our instances) see ``read``. Returns the network rows touched."""
    now = timezone.now()
    rows = EmuMessage.objects.filter(sender=chat_phone, recipient=reader_phone, read_at__isnull=True)
    rows = rows.exclude(expires_at__lte=now)  # disappeared from the reader's phone: never read
    if up_to_id is not None:
        rows = rows.filter(id__lte=up_to_id)
    touched = list(rows.values_list("pk", "via_instance", "id_message"))
    if not touched:
        return []
    EmuMessage.objects.filter(pk__in=[t[0] for t in touched]).update(read_at=now)
    sink.emit_many(
        [(via_instance, ReceiptEvent(id_message, "read", now)) for _, via_instance, id_message in touched if via_instance]
    )
    return touched


ONLINE_SECONDS = 30  # how long one tick keeps an instance online (ticks are ~1 s)


def keep_online(runner_id: str) -> int:
    """keepOnlineStatus: every authorized emulator instance of this runner with the
    setting on shows its phone online (an ``available`` presence extended each
    tick); one with the setting off ends its online spell at once, so ``lastSeen``
    is when it stopped. Returns how many phones are shown online."""
    now = timezone.now()
    mine = Instance.objects.filter(
        lease__runner_id=runner_id, engine=Engine.EMULATOR, state=State.AUTHORIZED, is_deleted=False
    ).exclude(phone="")
    online = {
        phone
        for phone, keep in mine.values_list("phone", "settings__keepOnlineStatus")
        if keep is True or keep == "yes"
    }
    current = EmuPresence.objects.filter(chat_id="", kind=PresenceKind.AVAILABLE, until__gte=now)
    # Phones of this runner whose instances no longer keep them online.
    served = set(mine.values_list("phone", flat=True))
    current.filter(phone__in=served - online).update(until=now)
    until = now + timedelta(seconds=ONLINE_SECONDS)
    extended = set(current.filter(phone__in=online).values_list("phone", flat=True))
    current.filter(phone__in=extended).update(until=until)
    EmuPresence.objects.bulk_create(
        EmuPresence(phone=phone, chat_id="", kind=PresenceKind.AVAILABLE, started_at=now, until=until)
        for phone in sorted(online - extended)
    )
    return len(online)


def tick(host: SessionHost) -> None:
    """One runner tick for the emulator instances ``host`` leases (the engine's
    ``EngineSpec.session``): finish connects, receipts, calls, the inbox, statuses
    and presence, in that order."""
    _step_sessions(host)
    _step_receipts(host)
    _step_calls(host)
    _step_inbox(host)
    _step_statuses(host)
    _step_presence(host)
    _step_expiry(host)


def _step_sessions(host: SessionHost) -> None:
    """Finish connects: ``starting`` becomes ``authorized`` (linked) or
    ``notAuthorized`` once the emulated startup delay has passed."""
    ready_before = timezone.now() - timedelta(seconds=settings.EMULATOR_STARTUP_SECONDS)
    starting = Instance.objects.filter(
        lease__runner_id=host.runner_id,
        engine=Engine.EMULATOR,
        state=State.STARTING,
        state_changed_at__lte=ready_before,
    )
    for instance in starting:
        if instance.pk not in host.owned:
            continue
        target = State.AUTHORIZED if instance.wid else State.NOT_AUTHORIZED
        services.change_state(instance, target, fence=host.fence(instance.pk))


def _step_receipts(host: SessionHost) -> None:
    """Emulated recipients acknowledge what our instances sent them (delivered,
    then read) after the configured delays."""
    emulate_receipts(
        host.runner_id,
        delivered_after=settings.EMULATOR_DELIVERED_AFTER_SECONDS,
        read_after=settings.EMULATOR_READ_AFTER_SECONDS,
    )


def _step_presence(host: SessionHost) -> None:
    """keepOnlineStatus: connected instances that keep themselves online show
    so to their contacts; the others are seen online no longer."""
    keep_online(host.runner_id)


def _step_expiry(host: SessionHost) -> None:
    """Disappearing messages whose time is up leave both sides' chats."""
    expire()


def _step_inbox(host: SessionHost) -> None:
    """Take in what the emulated network carried to (or from) our instances."""
    take_inbox(host.runner_id)


def _step_statuses(host: SessionHost) -> None:
    """Statuses: our instances take in what was posted to them; simulated
    viewers deliver and view what our instances posted."""
    take_statuses(host.runner_id)
    emulate_status_views(
        host.runner_id,
        delivered_after=settings.EMULATOR_STATUS_DELIVERED_AFTER_SECONDS,
        read_after=settings.EMULATOR_STATUS_READ_AFTER_SECONDS,
    )


def _step_calls(host: SessionHost) -> None:
    """Simulated contacts take the calls ringing them (by their call rule) and
    unanswered calls time out; the instances on either side are told."""
    for call in emulator_calls.step():
        with transaction.atomic():
            # Wake the callsRtc sockets of the instances on either side.
            ids = Instance.objects.filter(phone__in=[call.caller, call.callee], is_deleted=False)
            events.calls_changed(sorted(ids.values_list("pk", flat=True)))
