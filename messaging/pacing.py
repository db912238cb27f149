"""Pacing that protects a real WhatsApp number (Relay extensions of the settings).

WhatsApp bans numbers that behave like bulk senders. What its classifiers are known
to weigh, and what each setting here answers (docs/engines/waweb.md, "Protecting the
number"):

- a metronome: sends at the exact same interval → ``sendJitterPercent`` adds a
  random 0..N % to every paced pause;
- unsolicited first contacts: messages to people who never wrote to the number and
  never got a message from it → ``newChatsPerHour`` caps them per rolling hour;
- a fresh number that sends at full volume at once → ``warmUpDailyLimit`` /
  ``warmUpDays`` cap each day's sends, growing day by day, until the number has a
  history;
- texts that arrive with nobody typing them → for engines that do not type while
  they send (``EngineSpec.types_in_queue``: waweb), the queue shows 'typing…' for
  the message's typingTime, or autoTyping's time for its length, and holds it that
  long.

A message over a cap is not failed and not dropped: it stays ``queued`` (so
``showMessagesQueue`` lists it) at the head of its queue, and the drain comes back
when the cap allows it. The queue keeps its order: what is queued behind it waits
too (per-instance FIFO, docs/architecture.md invariant 5).

The drain calls this module at one point, ``messaging.services._send_paced``, and only
for instances whose ``policy`` is not None; an instance with every protection off
(the emulator's and the cloud engine's defaults) costs one settings read per round
and no query. Clock and randomness are injectable (``use``) so tests are exact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from engines import registry
from engines.contract import TransportError
from engines.shapes import typing_ms
from instances.models import Instance, InstanceStateChange, State
from messaging.models import OutgoingMessage, OutgoingStatus, PacedSend, TypingShown

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LEFT = (OutgoingStatus.SENT, OutgoingStatus.DELIVERED, OutgoingStatus.READ)
# Only person-to-person chats can be first contacts: a group the number is in, or its
# own status, is not an unsolicited approach.
PERSONAL_SUFFIXES = ("@c.us", "@lid")


def _now() -> datetime:
    return timezone.now()


def _draw(instance_id: int, message_id: int) -> float:
    """A number in [0, 1) fixed per message, so a pause computed again on a later
    wake-up is the same pause (a fresh draw each time would keep moving it)."""
    digest = hashlib.blake2b(f"{instance_id}:{message_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


_clock: Callable[[], datetime] = _now
_rng: Callable[[int, int], float] = _draw


@contextmanager
def use(
    *, clock: Callable[[], datetime] | None = None, rng: Callable[[int, int], float] | None = None
) -> Iterator[None]:
    """Replace the clock and/or the jitter's random source (tests)."""
    global _clock, _rng  # noqa: PLW0603 - swapped only by tests, restored on exit
    saved = _clock, _rng
    _clock = clock or _clock
    _rng = rng or _rng
    try:
        yield
    finally:
        _clock, _rng = saved


def now() -> datetime:
    return _clock()


@dataclass(frozen=True, slots=True)
class Policy:
    """An instance's protections, read from its settings."""

    jitter_percent: int
    new_chats_per_hour: int
    warm_up_daily_limit: int
    warm_up_days: int
    # The queue shows 'typing…' before texts for this engine (EngineSpec.types_in_queue),
    # with autoTyping's level for texts without their own typingTime.
    queue_typing: bool = False
    auto_typing: int = 0


def _types_in_queue(engine: str) -> bool:
    try:
        return registry.spec(engine).types_in_queue
    except registry.UnknownEngine:
        return False


def policy(instance: Instance) -> Policy | None:
    """The instance's protections, or None when all are off and its engine types for
    itself (the drain then does nothing extra). Reads settings only, never the
    database."""
    jitter = int(instance.setting("sendJitterPercent") or 0)
    new_chats = int(instance.setting("newChatsPerHour") or 0)
    warm_up = int(instance.setting("warmUpDailyLimit") or 0)
    queue_typing = _types_in_queue(instance.engine)
    if not (jitter or new_chats or warm_up or queue_typing):
        return None
    return Policy(
        jitter,
        new_chats,
        warm_up,
        int(instance.setting("warmUpDays") or 1),
        queue_typing,
        int(instance.setting("autoTyping") or 0) if queue_typing else 0,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """When the head message may leave: ``wait`` seconds from now (<= 0: now), and
    whether it is a first contact (``sent`` records it)."""

    wait: float
    first_contact: bool = False
    reason: str = ""
    typed: bool = False  # 'typing…' was shown for it (``sent`` forgets the mark)


def check(
    rules: Policy,
    instance: Instance,
    message: OutgoingMessage,
    *,
    last_sent_at: datetime | None,
    due: datetime | None,
) -> Verdict:
    """The head message's verdict: the paced moment ``due`` (last send + delay, None
    for the first send) stretched by the jitter, then the warm-up and new-chat caps."""
    moment = now()
    if due is not None and last_sent_at is not None and rules.jitter_percent:
        due += (due - last_sent_at) * (rules.jitter_percent / 100 * _rng(instance.pk, message.pk))
    paced = 0.0 if due is None else (due - moment).total_seconds()
    if paced > 0:
        return Verdict(paced, reason="delay")
    if rules.warm_up_daily_limit:
        held = warm_up_wait(rules, instance, moment)
        if held > 0:
            return Verdict(held, reason="warmUp")
    first_contact = False
    if rules.new_chats_per_hour and is_new_chat(instance, message):
        held = new_chat_wait(rules, instance, moment)
        if held > 0:
            return Verdict(held, reason="newChatsPerHour")
        first_contact = True
    typed = False
    if rules.queue_typing:
        held, typed = typing_wait(rules, instance, message, moment)
        if held > 0:
            return Verdict(held, reason="typing")
    return Verdict(paced, first_contact=first_contact, typed=typed)


def sent(rules: Policy, instance: Instance, message: OutgoingMessage, verdict: Verdict) -> None:
    """After the engine took the message: count it for the caps (a day's worth of
    rows is all they read; older ones go here). Nothing without a cap on."""
    if verdict.typed:
        TypingShown.objects.filter(message_id=message.pk).delete()
    if not (rules.new_chats_per_hour or rules.warm_up_daily_limit):
        return
    moment = now()
    PacedSend.objects.filter(instance_id=instance.pk, created_at__lt=moment - DAY).delete()
    PacedSend.objects.create(
        instance_id=instance.pk,
        chat_id=message.chat_id,
        id_message=message.id_message,
        first_contact=verdict.first_contact,
        created_at=moment,
    )


def holding_queues(instance_ids: set[int]) -> list[int]:
    """Of these instances, the authorized ones with a cap on (warm-up or new chats):
    their old queued messages are held on purpose, so housekeeping must not expire
    them (services.recover_queues)."""
    if not instance_ids:
        return []
    held = []
    for instance in Instance.objects.filter(pk__in=instance_ids, state=State.AUTHORIZED, is_deleted=False):
        rules = policy(instance)
        if rules is not None and (rules.new_chats_per_hour or rules.warm_up_daily_limit):
            held.append(instance.pk)
    return held


# --- Typing ---------------------------------------------------------------------


def typing_wait(
    rules: Policy, instance: Instance, message: OutgoingMessage, moment: datetime
) -> tuple[float, bool]:
    """For an engine the queue types for: the first time a message with a typing
    time (its typingTime, or autoTyping's for a text, ``engines.shapes.typing_ms``)
    is due, show 'typing…' in its chat and hold it that long; once that time is over
    it may leave. Returns (seconds to hold, whether typing was shown). An engine
    that refuses the presence for good sends without it; a transient refusal is
    raised (the drain retries the message later, as for a failed send)."""
    milliseconds = typing_ms(message.type_message, message.payload, rules.auto_typing)
    if milliseconds <= 0:
        return 0.0, False
    shown = TypingShown.objects.filter(message_id=message.pk).values_list("until", flat=True).first()
    if shown is not None:
        return (shown - moment).total_seconds(), True
    try:
        registry.get_transport(instance).send_presence(
            chat_id=message.chat_id, milliseconds=milliseconds, recording=False
        )
    except TransportError as exc:
        if not exc.permanent:
            raise
        return 0.0, False
    TypingShown.objects.filter(created_at__lt=moment - DAY).delete()  # strays of cleared messages
    until = moment + timedelta(milliseconds=milliseconds)
    TypingShown.objects.create(message_id=message.pk, until=until, created_at=moment)
    return milliseconds / 1000, True


# --- Warm-up ------------------------------------------------------------------------


def linked_at(instance: Instance) -> datetime | None:
    """When the instance was first authorized with its current number (its state
    history): the start of the number's warm-up. None when never authorized."""
    if not instance.phone:
        return None
    return (
        InstanceStateChange.objects.filter(
            instance_id=instance.pk, state=State.AUTHORIZED, phone=instance.phone
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )


def warm_up_limit(rules: Policy, linked: datetime, moment: datetime) -> tuple[int, datetime] | None:
    """The cap of the warm-up day ``moment`` falls in and when that day started:
    day 1 allows ``warmUpDailyLimit``, day n n times it; None once the warm-up is over."""
    day = max(0, (moment - linked) // DAY)
    if day >= rules.warm_up_days:
        return None
    return rules.warm_up_daily_limit * (day + 1), linked + day * DAY


def warm_up_wait(rules: Policy, instance: Instance, moment: datetime) -> float:
    """Seconds until the warm-up lets one more message out (0.0: now)."""
    linked = linked_at(instance)
    if linked is None:
        return 0.0
    limit = warm_up_limit(rules, linked, moment)
    if limit is None:
        return 0.0
    cap, day_start = limit
    if PacedSend.objects.filter(instance_id=instance.pk, created_at__gte=day_start).count() < cap:
        return 0.0
    return max(1.0, (day_start + DAY - moment).total_seconds())


# --- New chats ----------------------------------------------------------------------

# journals (above messaging) answers whether a chat has any journalled message, in
# either direction: provided in JournalsConfig.ready (messaging never imports journals).
_journal_has_messages: Callable[[int, str], bool] = lambda instance_id, chat_id: False  # noqa: E731


def provide_journal_lookup(lookup: Callable[[int, str], bool]) -> None:
    global _journal_has_messages  # noqa: PLW0603 - one lookup per process, set at start-up
    _journal_has_messages = lookup


def is_new_chat(instance: Instance, message: OutgoingMessage) -> bool:
    """A first contact: a personal chat in which the instance has no message either
    way — none received, none sent from the phone (both journalled), none sent
    through the API that left the queue. Groups and statuses never are."""
    if not message.chat_id.endswith(PERSONAL_SUFFIXES):
        return False
    if (
        OutgoingMessage.objects.filter(instance_id=instance.pk, chat_id=message.chat_id, status__in=LEFT)
        .exclude(pk=message.pk)
        .exists()
    ):
        return False
    return not _journal_has_messages(instance.pk, message.chat_id)


def new_chat_wait(rules: Policy, instance: Instance, moment: datetime) -> float:
    """Seconds until the rolling hour has room for one more first contact."""
    recent = list(
        PacedSend.objects.filter(instance_id=instance.pk, first_contact=True, created_at__gt=moment - HOUR)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[: rules.new_chats_per_hour]
    )
    if len(recent) < rules.new_chats_per_hour:
        return 0.0
    return max(1.0, (recent[-1] + HOUR - moment).total_seconds())
