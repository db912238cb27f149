"""Seed an emulated instance in bulk (Relay extension): address-book contacts, chats
and a message history, as if WhatsApp had synced them when the phone was linked.

``POST /api/v1/emulator/instances/{id}/seed``. History sync produces no
notifications (WhatsApp sends none for it either): rows go straight into the
journal with bulk inserts, and every chat gets its ``ChatState``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engines import sink
from engines.emulator.api import ControlView, access_instance, digits
from engines.emulator.models import EmuPhone
from engines.emulator.services import add_simulated_contact
from engines.emulator.transport import ensure_phone
from engines.events import HistoryChat, HistoryEvent, MessageEvent
from instances.http import Bool, Int, Str, validate
from instances.models import Instance

MAX_CONTACTS = 10_000
MAX_CHATS = 10_000
MAX_MESSAGES = 100_000
BATCH = 2_000


@dataclass(frozen=True)
class SeedChat:
    phone: str
    name: str = ""
    messages: int = 10
    archived: bool = False


@dataclass(frozen=True)
class Seeded:
    contacts: int
    chats: int
    messages: int


class SeedError(Exception):
    """The seed request cannot be carried out (too big, instance not paired)."""


def new_id_message() -> str:
    return secrets.token_hex(16).upper()


def seed(
    instance: Instance,
    *,
    contacts: Sequence[tuple[str, str]] = (),
    chats: Sequence[SeedChat] = (),
    span: timedelta = timedelta(days=1),
) -> Seeded:
    """Put contacts in the instance phone's address book and give it chats with a
    history: ``messages`` texts per chat, alternately received and sent from the
    phone, spread evenly over ``span`` up to now. One transaction."""
    if not instance.phone:
        raise SeedError("pair the instance with a phone first")
    total = sum(chat.messages for chat in chats)
    if len(contacts) > MAX_CONTACTS or len(chats) > MAX_CHATS or total > MAX_MESSAGES:
        raise SeedError(f"at most {MAX_CONTACTS} contacts, {MAX_CHATS} chats and {MAX_MESSAGES} messages per request")
    now = timezone.now()
    with transaction.atomic():
        ensure_phone(instance.phone)
        for phone, name in contacts:
            add_simulated_contact(account_id=instance.account_id, owner_phone=instance.phone, phone=phone, name=name)
        known = dict(EmuPhone.objects.filter(phone__in=[c.phone for c in chats]).values_list("phone", "name"))
        EmuPhone.objects.bulk_create(
            [EmuPhone(phone=c.phone, name=c.name or f"Contact {c.phone[-4:]}") for c in chats if c.phone not in known],
            ignore_conflicts=True,
            batch_size=BATCH,
        )
        messages: list[MessageEvent] = []
        listed: list[HistoryChat] = []
        for chat in chats:
            wid = f"{chat.phone}@c.us"
            name = chat.name or known.get(chat.phone, "") or f"Contact {chat.phone[-4:]}"
            step = span / max(chat.messages, 1)
            last = now - span
            for i in range(chat.messages):
                moment = now - span + step * (i + 1)
                incoming = i % 2 == 0
                last = moment
                messages.append(
                    MessageEvent(
                        direction="incoming" if incoming else "outgoing",
                        chat_id=wid,
                        id_message=new_id_message(),
                        sender=wid if incoming else instance.wid,
                        sender_name=name if incoming else "",
                        chat_name=name,
                        message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": f"Message {i + 1}"}},
                        timestamp=moment,
                    )
                )
            listed.append(HistoryChat(chat_id=wid, name=name, archived=chat.archived, last_activity=last))
        # The phone's history, as a linked device syncs it: journals, no notifications.
        sink.emit(instance, HistoryEvent(messages=tuple(messages), chats=tuple(listed), timestamp=now))
    return Seeded(contacts=len(contacts), chats=len(chats), messages=len(messages))


# --- Control API -----------------------------------------------------------------------


class SeedContactInput(serializers.Serializer[Any]):
    phoneNumber = Str(min_length=7, max_length=15)
    name = Str(required=False, allow_blank=True, max_length=100)

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class SeedChatInput(serializers.Serializer[Any]):
    phoneNumber = Str(min_length=7, max_length=15)
    name = Str(required=False, allow_blank=True, max_length=100)
    messages = Int(required=False, min_value=0, max_value=MAX_MESSAGES)
    archived = Bool(required=False)

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class SeedInput(serializers.Serializer[Any]):
    contacts = SeedContactInput(many=True, required=False)
    chats = SeedChatInput(many=True, required=False)
    spanMinutes = Int(required=False, min_value=1, max_value=60 * 24 * 3650)


class SeedOutput(serializers.Serializer[Any]):
    contacts = serializers.IntegerField()
    chats = serializers.IntegerField()
    messages = serializers.IntegerField()


class Seed(ControlView):
    """Seed contacts, chats and a history in bulk."""

    @extend_schema(request=SeedInput, responses=SeedOutput, tags=["emulator"])
    def post(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(SeedInput, request.data)
        try:
            done = seed(
                instance,
                contacts=[(c["phoneNumber"], c.get("name", "")) for c in data.get("contacts", [])],
                chats=[
                    SeedChat(
                        phone=c["phoneNumber"],
                        name=c.get("name", ""),
                        messages=c.get("messages", 10),
                        archived=c.get("archived", False),
                    )
                    for c in data.get("chats", [])
                ],
                span=timedelta(minutes=data.get("spanMinutes", 1440)),
            )
        except SeedError as exc:
            raise serializers.ValidationError(str(exc), code="joi") from exc
        return Response({"contacts": done.contacts, "chats": done.chats, "messages": done.messages}, status=201)
