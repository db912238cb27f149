"""Chats as the cabinet shows them: the journal (what the engine reported) merged with
the send queue (what went out through the API), one bubble per message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Max

from engines.contract import TransportError
from engines.registry import get_transport
from instances.models import Instance
from journals.models import Call, ChatState, Direction, JournalMessage
from messaging.models import OutgoingMessage, OutgoingStatus

CHAT_LIST_LIMIT = 100
CHAT_VIEW_LIMIT = 200
FILE_TYPES = ("imageMessage", "videoMessage", "audioMessage", "documentMessage", "stickerMessage")


@dataclass
class Media:
    kind: str  # image | video | audio | document | sticker
    url: str
    name: str = ""
    mime: str = ""
    thumbnail: str = ""  # base64 JPEG


@dataclass
class Poll:
    question: str
    options: list[tuple[str, int]]  # (option, votes)
    multiple: bool = False

    @property
    def total(self) -> int:
        return sum(v for _, v in self.options)


@dataclass
class Bubble:
    id_message: str
    outgoing: bool
    origin: str  # "api" (sent through Relay), "phone" (sent from the phone), "contact"
    type_message: str
    text: str
    at: datetime
    sender: str = ""
    status: str = ""  # API messages: queued … read / failed
    description: str = ""
    media: Media | None = None
    poll: Poll | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatRow:
    chat_id: str
    name: str
    last_at: datetime
    count: int
    preview: str = ""
    archived: bool = False  # archiveChat on this account (getChats' ``archive``)

    @property
    def is_group(self) -> bool:
        return self.chat_id.endswith("@g.us")


def describe(type_message: str, data: dict[str, Any]) -> str:
    """One line of text for a messageData object (GREEN-API webhook shape)."""
    if type_message == "textMessage":
        return str((data.get("textMessageData") or {}).get("textMessage", ""))
    if type_message in ("extendedTextMessage", "quotedMessage", "reactionMessage"):
        text = str((data.get("extendedTextMessageData") or {}).get("text", ""))
        return f"Reaction {text}" if type_message == "reactionMessage" else text
    if type_message in FILE_TYPES:
        file_data = data.get("fileMessageData") or {}
        label = type_message.removesuffix("Message")
        return str(file_data.get("caption") or file_data.get("fileName") or f"[{label}]")
    if type_message == "locationMessage":
        loc = data.get("locationMessageData") or {}
        return f"Location: {loc.get('nameLocation') or loc.get('address') or 'Location'}"
    if type_message in ("contactMessage", "contactsArrayMessage"):
        contact = data.get("contactMessageData") or {}
        return f"Contact: {contact.get('displayName', '')}"
    if type_message in ("pollMessage", "pollUpdateMessage"):
        return f"Poll: {(data.get('pollMessageData') or {}).get('name', 'Poll')}"
    if type_message == "editedMessage":
        return str((data.get("editedMessageData") or {}).get("textMessage", "")) + " (edited)"
    if type_message == "deletedMessage":
        return "This message was deleted"
    return f"[{type_message}]"


def describe_request(message: OutgoingMessage) -> str:
    request = message.request if isinstance(message.request, dict) else {}
    for key in ("message", "caption", "fileName", "nameLocation", "address"):
        if request.get(key):
            return str(request[key])
    contact = request.get("contact")
    if isinstance(contact, dict):
        return f"Contact: {contact.get('firstName', '')} {contact.get('lastName', '')}".strip()
    return f"[{message.type_message or message.method}]"


def _journal_media(type_message: str, data: dict[str, Any]) -> Media | None:
    if type_message not in FILE_TYPES:
        return None
    file_data = data.get("fileMessageData") or {}
    url = str(file_data.get("downloadUrl") or "")
    if not url:
        return None
    return Media(
        kind=type_message.removesuffix("Message"),
        url=url,
        name=str(file_data.get("fileName") or ""),
        mime=str(file_data.get("mimeType") or ""),
        thumbnail=str(file_data.get("jpegThumbnail") or ""),
    )


def _outgoing_media(message: OutgoingMessage) -> Media | None:
    if not message.is_file:
        return None
    payload = message.payload if isinstance(message.payload, dict) else {}
    url = str(payload.get("urlFile") or "")
    if not url:
        return None
    mime = str(payload.get("mimeType") or "")
    name = str(payload.get("fileName") or "")
    kind = "document"
    lowered = name.lower()
    if mime.startswith("image/") or lowered.endswith((".png", ".jpg", ".jpeg", ".gif", ".webp")):
        kind = "image"
    elif mime.startswith("video/") or lowered.endswith((".mp4", ".mov", ".webm")):
        kind = "video"
    elif mime.startswith("audio/") or lowered.endswith((".mp3", ".ogg", ".oga", ".wav", ".m4a")):
        kind = "audio"
    return Media(kind=kind, url=url, name=name, mime=mime)


def chat_list(instance: Instance) -> list[ChatRow]:
    """Chats with any message, most recent first."""
    rows: dict[str, ChatRow] = {}
    journal = (
        JournalMessage.objects.filter(instance=instance)
        .exclude(type_message="pollUpdateMessage")
        .values("chat_id")
        .annotate(last=Max("timestamp"), n=Count("id"))
    )
    for row in journal:
        rows[row["chat_id"]] = ChatRow(chat_id=row["chat_id"], name="", last_at=row["last"], count=row["n"])
    sent = OutgoingMessage.objects.filter(instance=instance).values("chat_id").annotate(last=Max("created_at"), n=Count("id"))
    for row in sent:
        existing = rows.get(row["chat_id"])
        if existing is None:
            rows[row["chat_id"]] = ChatRow(chat_id=row["chat_id"], name="", last_at=row["last"], count=row["n"])
        else:
            existing.count += row["n"]
            existing.last_at = max(existing.last_at, row["last"])
    chats = sorted(rows.values(), key=lambda c: c.last_at, reverse=True)[:CHAT_LIST_LIMIT]
    ids = [c.chat_id for c in chats]
    by_id = {c.chat_id: c for c in chats}
    # Previews: walk the newest rows once per source instead of one query per chat.
    latest: dict[str, tuple[datetime, str]] = {}
    for j in (
        JournalMessage.objects.filter(instance=instance, chat_id__in=ids)
        .exclude(type_message="pollUpdateMessage")
        .order_by("-timestamp")[: len(ids) * 5]
    ):
        if j.chat_id not in latest or latest[j.chat_id][0] < j.timestamp:
            latest.setdefault(j.chat_id, (j.timestamp, describe(j.type_message, j.message_data)))
        chat = by_id[j.chat_id]
        chat.name = chat.name or j.chat_name or (j.sender_name if j.direction == Direction.INCOMING else "")
    for o in OutgoingMessage.objects.filter(instance=instance, chat_id__in=ids).order_by("-created_at")[: len(ids) * 5]:
        if o.chat_id not in latest or latest[o.chat_id][0] < o.created_at:
            latest[o.chat_id] = (o.created_at, describe_request(o))
    archived = set(
        ChatState.objects.filter(instance_id=instance.pk, chat_id__in=ids, archived=True).values_list("chat_id", flat=True)
    )
    for chat in chats:
        chat.preview = latest.get(chat.chat_id, (chat.last_at, ""))[1]
        chat.archived = chat.chat_id in archived
    return chats


def _poll_tallies(instance: Instance, chat_id: str) -> dict[str, dict[str, set[str]]]:
    """poll idMessage → option → voters, from every vote seen (latest vote per voter wins)."""
    tallies: dict[str, dict[str, set[str]]] = {}
    updates = JournalMessage.objects.filter(instance=instance, chat_id=chat_id, type_message="pollUpdateMessage").order_by(
        "timestamp", "id"
    )
    for update in updates:
        data = update.message_data.get("pollMessageData") or {}
        poll_id = str(data.get("stanzaId", ""))
        options = tallies.setdefault(poll_id, {})
        for vote in data.get("votes") or []:
            name = str(vote.get("optionName", ""))
            voters = {str(v) for v in vote.get("optionVoters") or []}
            current = options.setdefault(name, set())
            # A vote carries one voter's whole current choice: drop them where they are
            # not listed any more, add them where they are.
            voter = update.sender or ""
            current.discard(voter)
            current.update(voters)
    return tallies


def chat_messages(instance: Instance, chat_id: str) -> list[Bubble]:
    """The chat's messages, oldest first (the newest ``CHAT_VIEW_LIMIT``)."""
    bubbles: dict[str, Bubble] = {}
    tallies = _poll_tallies(instance, chat_id)
    for j in (
        JournalMessage.objects.filter(instance=instance, chat_id=chat_id)
        .exclude(type_message="pollUpdateMessage")
        .order_by("-timestamp")[:CHAT_VIEW_LIMIT]
    ):
        outgoing = j.direction == Direction.OUTGOING
        bubble = Bubble(
            id_message=j.id_message,
            outgoing=outgoing,
            origin="phone" if outgoing else "contact",
            type_message=j.type_message,
            text=describe(j.type_message, j.message_data),
            at=j.timestamp,
            sender=j.sender_name or j.sender,
            media=_journal_media(j.type_message, j.message_data),
        )
        if j.type_message == "pollMessage":
            data = j.message_data.get("pollMessageData") or {}
            names = [str(o.get("optionName", "")) for o in data.get("options") or []]
            votes = tallies.get(j.id_message, {})
            bubble.text = str(data.get("name", ""))
            bubble.poll = Poll(bubble.text, [(n, len(votes.get(n, set()))) for n in names], bool(data.get("multipleAnswers")))
        bubbles[j.id_message] = bubble
    for o in OutgoingMessage.objects.filter(instance=instance, chat_id=chat_id).order_by("-created_at")[:CHAT_VIEW_LIMIT]:
        bubble = Bubble(
            id_message=o.id_message,
            outgoing=True,
            origin="api",
            type_message=o.type_message,
            text=describe_request(o),
            at=o.sent_at or o.created_at,
            status=o.status,
            description=o.description,
            media=_outgoing_media(o),
        )
        request = o.request if isinstance(o.request, dict) else {}
        if o.method == "sendPoll":
            names = [str(opt.get("optionName", "")) for opt in request.get("options") or [] if isinstance(opt, dict)]
            votes = tallies.get(o.id_message, {})
            bubble.poll = Poll(
                str(request.get("message", "")), [(n, len(votes.get(n, set()))) for n in names], bool(request.get("multipleAnswers"))
            )
        bubbles[o.id_message] = bubble  # the queue's row knows the delivery status
    for c in Call.objects.filter(instance=instance, chat_id=chat_id).order_by("-timestamp")[:CHAT_VIEW_LIMIT]:
        bubbles[f"call:{c.id_call}"] = Bubble(
            id_message=c.id_call,
            outgoing=c.direction == Direction.OUTGOING,
            origin="call",
            type_message="call",
            text=describe_call(c),
            at=c.timestamp,
        )
    ordered = sorted(bubbles.values(), key=lambda b: b.at)
    return ordered[-CHAT_VIEW_LIMIT:]


CALL_OUTCOMES = {"offer": "ringing", "pickUp": "answered", "declined": "declined", "hungUp": "missed"}


def describe_call(call: Call) -> str:
    """One line for a call in the chat view: direction, outcome, talk time."""
    kind = "Outgoing call" if call.direction == Direction.OUTGOING else "Incoming call"
    outcome = CALL_OUTCOMES.get(call.status, call.status)
    if call.status == "hungUp" and call.direction == Direction.OUTGOING:
        outcome = "not answered"
    text = f"{kind} · {outcome}"
    if call.duration is not None:
        text += f" · {call.duration // 60}:{call.duration % 60:02d}"
    return text


TICKS = {
    OutgoingStatus.QUEUED: ("pending", "○", "Waiting in the send queue"),
    OutgoingStatus.SENDING: ("pending", "○", "Sending"),
    OutgoingStatus.SENT: ("sent", "✓", "Sent"),
    OutgoingStatus.DELIVERED: ("delivered", "✓✓", "Delivered"),
    OutgoingStatus.READ: ("read", "✓✓", "Read"),
}


def ticks(status: str) -> tuple[str, str, str]:
    """(css class, glyph, label) of an API message's status."""
    if status in TICKS:
        return TICKS[OutgoingStatus(status)]
    if not status:
        return ("", "", "")
    return ("failed", "!", f"Not delivered ({status})")


def chat_title(instance: Instance, chat_id: str) -> str:
    """The name the chat view's header shows: the chat's or contact's name as the
    journal last recorded it, else the chat list's name, else empty (the page then
    shows the number)."""
    names = (
        JournalMessage.objects.filter(instance=instance, chat_id=chat_id)
        .exclude(chat_name="", sender_name="")
        .order_by("-timestamp")
        .values_list("chat_name", "sender_name", "direction")[:20]
    )
    for chat_name, sender_name, direction in names:
        if chat_name:
            return str(chat_name)
        if direction == Direction.INCOMING and sender_name and not chat_id.endswith("@g.us"):
            return str(sender_name)
    stored = ChatState.objects.filter(instance=instance, chat_id=chat_id).values_list("name", flat=True).first()
    return str(stored or "")


def known_chats(instance: Instance, limit: int = 200) -> list[tuple[str, str]]:
    """(chatId, name) of the chats and contacts this instance knows, most recent
    first: the console's chat picker."""
    seen: dict[str, str] = {}
    for row in chat_list(instance):
        seen.setdefault(row.chat_id, row.name)
    for chat_id, name in ChatState.objects.filter(instance=instance).order_by("-last_activity").values_list("chat_id", "name")[:limit]:
        if not seen.get(chat_id):
            seen[chat_id] = str(name or "")
    if instance.phone:  # the phone's address book (what getContacts lists)
        try:
            book = get_transport(instance).contacts()
        except TransportError:  # an engine without contacts, or unreachable: none offered
            book = []
        for entry in sorted(book, key=lambda c: c.contact_name)[:limit]:
            if not seen.get(entry.chat_id):
                seen[entry.chat_id] = entry.contact_name
    return list(seen.items())[:limit]
