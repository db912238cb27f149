"""The sandbox's "send as contact" forms, generated from the engine's sandbox.

One list: the sandbox's ``kind_fields`` (the emulator's control API serializers, what
``POST /api/v1/emulator/instances/{id}/incoming/{typeMessage}`` and ``phone-sent/…``
accept); every typeMessage there gets a form here, and a submitted form is validated
by that very serializer (same rules, same words) before the sandbox puts the event
on the simulated network. The cabinet reaches the engine only through
``engines.sandbox``."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from rest_framework import serializers

from dashboard import chats
from engines.sandbox import Sandbox
from instances.http import ValidationFailed, validate
from instances.models import Instance

# Friendlier names for the picker; a kind missing here still works under its wire name.
LABELS = {
    "textMessage": "Text",
    "extendedTextMessage": "Text with link preview",
    "quotedMessage": "Reply (quote)",
    "imageMessage": "Picture",
    "videoMessage": "Video",
    "audioMessage": "Voice / audio",
    "documentMessage": "Document",
    "stickerMessage": "Sticker",
    "locationMessage": "Location",
    "contactMessage": "Contact card",
    "contactsArrayMessage": "Several contact cards",
    "reactionMessage": "Reaction",
    "groupInviteMessage": "Group invite",
    "pollMessage": "Poll",
    "pollUpdateMessage": "Poll vote",
    "editedMessage": "Edit a message",
    "deletedMessage": "Delete a message",
    "buttonsResponseMessage": "Button reply",
    "listResponseMessage": "List reply",
    "templateButtonsReplyMessage": "Template button reply",
    "interactiveButtonsReply": "Interactive buttons",
}
# Fields that name another message of the chat: the form offers recent ones.
MESSAGE_REFS = ("stanzaId", "quotedMessageId")
WIRE_NAME_RE = re.compile(r"'([A-Za-z][A-Za-z0-9]*)(?:\[\d+\])?(?:\.[A-Za-z]+)?'")
WHO = (("contact", "A contact writes to my number"), ("phone", "My phone writes to a contact"))
RECENT_MESSAGES = 30


@dataclass(frozen=True)
class EventField:
    """One input of an event form; ``kind`` picks the widget and how to parse it."""

    name: str
    kind: str  # text | textarea | number | bool | choice | lines | json | file
    required: bool
    help: str = ""
    choices: tuple[str, ...] = ()

    @property
    def refers_to_message(self) -> bool:
        return self.name in MESSAGE_REFS


@dataclass(frozen=True)
class EventKind:
    name: str
    label: str
    fields: tuple[EventField, ...]


def _field_kind(name: str, f: serializers.Field[Any, Any, Any, Any]) -> tuple[str, tuple[str, ...]]:
    if name == "file":
        return "file", ()  # base64 on the wire; an upload here
    if isinstance(f, serializers.ListField) and isinstance(f.child, serializers.CharField):
        return "lines", ()
    if isinstance(f, serializers.BooleanField):
        return "bool", ()
    if isinstance(f, serializers.ChoiceField):
        return "choice", tuple(str(c) for c in f.choices)
    if isinstance(f, serializers.IntegerField | serializers.FloatField):
        return "number", ()
    if isinstance(f, serializers.CharField):
        return ("textarea" if f.max_length is None or f.max_length > 1000 else "text"), ()
    return "json", ()  # nested objects: contacts, buttons


def _kind(name: str, serializer: type[serializers.Serializer[Any]]) -> EventKind:
    fields = []
    for field_name, f in serializer().fields.items():
        kind, choices = _field_kind(field_name, f)
        fields.append(EventField(field_name, kind, bool(f.required), str(f.help_text or ""), choices))
    fields.sort(key=lambda ef: not ef.required)  # required first, serializer order kept
    return EventKind(name=name, label=LABELS.get(name, name), fields=tuple(fields))


def kinds(box: Sandbox) -> list[EventKind]:
    """Every typeMessage the sandbox can send, in its own order."""
    return [_kind(name, serializer) for name, serializer in box.kind_fields.items()]


def kind_by_name(box: Sandbox, name: str) -> EventKind | None:
    return next((k for k in kinds(box) if k.name == name), None)


class EventInputError(Exception):
    """The form cannot become an event: ``errors`` maps form field names (or "")
    to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _parse(field: EventField, raw: str, files: Any, errors: dict[str, str]) -> Any:
    if field.kind == "file":
        upload = files.get(f"f-{field.name}")
        if isinstance(upload, UploadedFile):
            return base64.b64encode(upload.read()).decode()
        return None
    if field.kind == "lines":
        lines = [line.strip() for line in raw.splitlines() if line.strip()]
        # An empty list means something for some fields (a retracted vote).
        return lines if lines or field.required else None
    if raw.strip() == "":
        return None
    if field.kind == "number":
        try:
            return int(raw) if raw.strip().lstrip("-").isdigit() else float(raw)
        except ValueError:
            errors[field.name] = "Enter a number."
            return None
    if field.kind == "bool":
        return raw == "true"
    if field.kind == "json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            errors[field.name] = f"This is not valid JSON: {exc.msg} (column {exc.colno})."
            return None
    return raw


def event_fields(box: Sandbox, kind: EventKind, data: Any, files: Any) -> dict[str, Any]:
    """The submitted form (inputs named ``f-<wireName>``) as the control API's body
    for ``kind``, validated by the control API's serializer."""
    errors: dict[str, str] = {}
    body: dict[str, Any] = {}
    for field in kind.fields:
        value = _parse(field, str(data.get(f"f-{field.name}", "")), files, errors)
        if value is not None:
            body[field.name] = value
    if errors:
        raise EventInputError(errors)
    try:
        return validate(box.kind_fields[kind.name], body)
    except ValidationFailed as exc:
        names = [n for n in WIRE_NAME_RE.findall(exc.detail) if any(f.name == n for f in kind.fields)]
        raise EventInputError({names[0] if names else "": exc.detail}) from exc


def send_event(
    box: Sandbox, instance: Instance, *, who: str, phone: str, name: str, kind: EventKind, fields: dict[str, Any]
) -> str:
    """A contact writes to the instance's phone, or the phone writes to a contact;
    returns the message id."""
    if who == "phone":
        return box.phone_sends(instance, phone=phone, kind=kind.name, fields=fields)
    return box.contact_sends(instance, phone=phone, kind=kind.name, fields=fields, name=name)


# --- What the forms offer -------------------------------------------------------------


@dataclass(frozen=True)
class RecentMessage:
    id_message: str
    label: str


def recent_messages(box: Sandbox, instance: Instance) -> list[RecentMessage]:
    """Messages of the instance's phone on the network, newest first, for the
    "which message" fields (replies, reactions, edits, deletes, votes)."""
    phone = instance.phone
    result = []
    for m in box.recent_messages(instance, limit=RECENT_MESSAGES):
        arrow = f"me → +{m.recipient}" if m.sender == phone else f"+{m.sender} → me"
        text = chats.describe(m.type_message, m.message_data)
        result.append(RecentMessage(m.id_message, f"{arrow}: {text[:60]}"))
    return result


@dataclass(frozen=True)
class SentPoll:
    id_message: str
    voter: str  # the contact the poll went to
    question: str
    options: tuple[str, ...]
    multiple: bool


def sent_polls(box: Sandbox, instance: Instance, limit: int = 5) -> list[SentPoll]:
    """Polls the instance's phone sent (through the API or the phone) that their
    recipient can vote in."""
    polls = []
    for m in box.sent_polls(instance, limit=limit):
        data = m.message_data.get("pollMessageData") or {}
        options = tuple(str(o.get("optionName", "")) for o in data.get("options", []) if isinstance(o, dict))
        polls.append(SentPoll(m.id_message, m.recipient, str(data.get("name", "")), options, bool(data.get("multipleAnswers"))))
    return polls
