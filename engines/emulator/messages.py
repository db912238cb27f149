"""Message delivery on the emulated network (the emulator's ``send_message``)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from engines.contract import STATUS_BROADCAST, OutgoingPayload, SendResult
from engines.emulator.disappearing import apply_timers
from engines.emulator.groups import audiences, find_group_message, group_rows
from engines.emulator.models import EmuMessage, EmuPhone, PresenceKind
from engines.emulator.network import phones_of_lids, quoted_object, show_presence
from engines.emulator.status_posts import post_status
from engines.shapes import message_data_from_payload
from instances.bulk import insert_rows


def emulator_send(*, sender_phone: str, via_instance: int | None, payload: OutgoingPayload) -> SendResult:
    """Put one message on the emulated network (see ``emulator_send_many``)."""
    return emulator_send_many(sender_phone=sender_phone, via_instance=via_instance, payloads=[payload])[0]


def emulator_send_many(
    *, sender_phone: str, via_instance: int | None, payloads: Sequence[OutgoingPayload]
) -> list[SendResult]:
    """Put one sender's messages on the emulated network (see ``emulator_send_senders``)."""
    return emulator_send_senders([(sender_phone, via_instance, payloads)])[0]


def emulator_send_senders(
    batches: Sequence[tuple[str, int | None, Sequence[OutgoingPayload]]],
) -> list[list[SendResult]]:
    """Put several senders' messages on the emulated network (sender phone, sending
    instance, payloads), each sender's in order, with one directory read and one
    INSERT for all of them (a drain sweep). Idempotent per (sender, id_message): a
    retry after a crash delivers nothing twice (rows already on the network are
    skipped, and the unique key drops a racing duplicate). Scripted recipients
    answer once the batch has landed."""
    # enableLidMode clients send to the ``@lid`` ids the network showed them.
    lid_phones = phones_of_lids(
        p.chat_id for _, _, payloads in batches for p in payloads if p.chat_id.endswith("@lid")
    )
    numbers = {
        p.chat_id.split("@", 1)[0] for _, _, payloads in batches for p in payloads if p.chat_id.endswith("@c.us")
    } | set(lid_phones.values())
    directory = {c.phone: c for c in EmuPhone.objects.filter(phone__in=numbers, registered=True)}
    retried: dict[str, list[str]] = {}
    for sender_phone, _, payloads in batches:
        ids = [p.id_message for p in payloads if not p.first_attempt]
        if ids:
            retried.setdefault(sender_phone, []).extend(ids)
    on_network: set[tuple[str, str]] = set()
    if retried:
        # Per sender: the network's unique key (sender, id_message) serves each part.
        either = Q()
        for sender_phone, ids in retried.items():
            either |= Q(sender=sender_phone, id_message__in=ids)
        on_network = set(EmuMessage.objects.filter(either).values_list("sender", "id_message"))

    reach = audiences(
        (sender_phone, p.chat_id) for sender_phone, _, payloads in batches for p in payloads if p.chat_id.endswith("@g.us")
    )
    answers_all: list[list[SendResult]] = []
    rows: list[EmuMessage] = []
    answers: list[tuple[EmuPhone, str, dict[str, object], datetime]] = []
    typist = _Typist([sender for sender, _, payloads in batches if any(typing_ms(p) for p in payloads)])
    for sender_phone, via_instance, payloads in batches:
        results: list[SendResult] = []
        answers_all.append(results)
        for payload in payloads:
            chat_id = payload.chat_id
            if chat_id == STATUS_BROADCAST:
                results.append(post_status(poster=sender_phone, via_instance=via_instance, payload=payload))
                continue
            recipient = ""
            contact: EmuPhone | None = None
            if chat_id.endswith(("@c.us", "@lid")):
                if chat_id.endswith("@lid"):
                    recipient = lid_phones.get(chat_id, "")
                    chat_id = f"{recipient}@c.us"  # the network addresses phones
                else:
                    recipient = chat_id.split("@", 1)[0]
                contact = directory.get(recipient)
                if contact is None:
                    results.append(SendResult("noAccount", "The number has no WhatsApp account"))
                    continue
            elif chat_id.endswith("@g.us"):
                audience = reach[(sender_phone, chat_id)]
                if audience.status != "sent":
                    results.append(SendResult(audience.status, audience.description))  # type: ignore[arg-type]
                    continue
                results.append(SendResult("sent"))
                if (sender_phone, payload.id_message) in on_network:
                    continue
                message_data = message_data_from_payload(payload.type_message, dict(payload.data))
                quoted_id = payload.data.get("quotedMessageId")
                if quoted_id:
                    message_data = with_group_quote(message_data, chat_id, str(quoted_id))
                copies = group_rows(
                    sender=sender_phone,
                    group_id=chat_id,
                    id_message=payload.id_message,
                    type_message=payload.type_message,
                    message_data=message_data,
                    recipients=audience.recipients,
                    payload=dict(payload.data),
                    via_instance=via_instance,
                )
                arrives = typist.arrival(sender_phone, chat_id, typing_ms(payload))
                for copy in copies:
                    copy.created_at = arrives
                rows += copies
                continue
            results.append(SendResult("sent"))
            if (sender_phone, payload.id_message) in on_network:
                continue  # already on the network: a retry after a crash
            message_data = message_data_from_payload(payload.type_message, dict(payload.data))
            quoted_id = payload.data.get("quotedMessageId")
            if quoted_id and recipient:
                message_data = with_quote(message_data, sender_phone, recipient, str(quoted_id))
            arrives = typist.arrival(sender_phone, chat_id, typing_ms(payload))
            rows.append(
                EmuMessage(
                    sender=sender_phone,
                    chat_id=chat_id,
                    recipient=recipient,
                    id_message=payload.id_message,
                    type_message=payload.type_message,
                    payload=dict(payload.data),
                    message_data=message_data,
                    via_instance=via_instance,
                    created_at=arrives,
                )
            )
            if contact is not None and contact.script == "echo":
                answers.append((contact, sender_phone, message_data, arrives))
    if rows:
        apply_timers(rows)
        with transaction.atomic():
            insert_rows(EmuMessage, rows, ignore_conflicts=True)
            typist.show()
    for contact, sender_phone, message_data, arrives in answers:
        echo_reply(contact, sender_phone, message_data, at=arrives)
    return answers_all


def typing_ms(payload: OutgoingPayload) -> int:
    """How long the sender types before this message (typingTime; the transport
    fills it in from autoTyping), 0 for none."""
    value = payload.data.get("typingTime")
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class _Typist:
    """typingTime / autoTyping on the network: the sender shows ``composing`` in
    the chat for that long, and the message arrives when the typing ends (its
    ``created_at``; sessions take in nothing from the future, see
    ``session.take_inbox``). A sender types one message after another, so each
    message arrives no earlier than the sender's previous one (also one of an
    earlier call still being typed)."""

    def __init__(self, typing_senders: Sequence[str]) -> None:
        self.now = timezone.now()
        self.busy_until: dict[str, datetime] = {}
        if typing_senders:
            pending = (
                EmuMessage.objects.filter(sender__in=set(typing_senders), created_at__gt=self.now)
                .values("sender")
                .annotate(last=Max("created_at"))
            )
            self.busy_until = {row["sender"]: row["last"] for row in pending}
        self.presences: list[tuple[str, str, datetime, int]] = []

    def arrival(self, sender: str, chat_id: str, ms: int) -> datetime:
        start = max(self.now, self.busy_until.get(sender, self.now))
        if ms:
            self.presences.append((sender, chat_id, start, ms))
        arrives = start + timedelta(milliseconds=ms)
        self.busy_until[sender] = arrives
        return arrives

    def show(self) -> None:
        for sender, chat_id, start, ms in self.presences:
            show_presence(sender, chat_id=chat_id, kind=PresenceKind.TYPING, milliseconds=ms, start=start)


def with_quote(message_data: dict[str, object], sender: str, recipient: str, quoted_id: str) -> dict[str, object]:
    """A reply as the other side receives it (API.md §10.4): texts become
    ``quotedMessage``, other kinds carry a ``quotedMessage`` object. Unknown quoted
    ids (not in this chat) leave the message as it is."""
    quoted = (
        EmuMessage.objects.filter(id_message=quoted_id)
        .filter(Q(sender=sender, recipient=recipient) | Q(sender=recipient, recipient=sender))
        .order_by("-id")
        .first()
    )
    return _quoting(message_data, quoted, quoted_id)


def with_group_quote(message_data: dict[str, object], group_id: str, quoted_id: str) -> dict[str, object]:
    """``with_quote`` for a reply in a group: the quoted message is the group's."""

    return _quoting(message_data, find_group_message(group_id, quoted_id), quoted_id)


def _quoting(message_data: dict[str, object], quoted: EmuMessage | None, quoted_id: str) -> dict[str, object]:

    if quoted is None:
        return message_data
    obj = quoted_object(quoted)
    kind = message_data.get("typeMessage")
    if kind not in ("textMessage", "extendedTextMessage"):
        return {**message_data, "quotedMessage": obj}
    text_data = message_data.get("textMessageData") or message_data.get("extendedTextMessageData") or {}
    text = text_data.get("textMessage", text_data.get("text", "")) if isinstance(text_data, dict) else ""
    return {
        "typeMessage": "quotedMessage",
        "extendedTextMessageData": {"text": text, "stanzaId": quoted_id, "participant": obj["participant"]},
        "quotedMessage": obj,
    }


def echo_reply(
    contact: EmuPhone, to_phone: str, message_data: dict[str, object], *, at: datetime | None = None
) -> EmuMessage:
    """The echo contact answers every message (``at``: when it arrived): texts with
    the same text, anything else with a line naming what it got."""
    text = ""
    data = message_data.get("textMessageData")
    if isinstance(data, dict):
        text = str(data.get("textMessage", ""))
    ext = message_data.get("extendedTextMessageData")
    if not text and isinstance(ext, dict):
        text = str(ext.get("text", ""))
    if not text:
        text = f"echo: {message_data.get('typeMessage')}"

    reply = EmuMessage(
        sender=contact.phone,
        chat_id=f"{to_phone}@c.us",
        recipient=to_phone,
        id_message=secrets.token_hex(16).upper(),
        type_message="textMessage",
        message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": text}},
        created_at=max(at, timezone.now()) if at else timezone.now(),
    )
    apply_timers([reply])
    reply.save(force_insert=True)
    return reply
