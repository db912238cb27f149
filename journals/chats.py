"""Chats, contacts, read marks and changes to sent messages (API.md §9.8–9.10).

Per-chat state (activity, archive, disappearing timer) lives in ``ChatState``;
edits, deletes and poll votes in ``MessageChange``, which the journal methods apply
to the message they point at. Both are written here only: by the services below for
API calls, and by ``record_journal_message`` for what an engine reported (called from
``journals.services.ingest_event``, inside its transaction).

Everything that needs the linked account (receipts, the directory, the address book,
revokes and edits on the network) goes through the instance's transport.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from engines import sink
from engines.contract import STATUS_BROADCAST, Avatar, Contact, PeerInfo, WhatsappCheck
from engines.events import DisappearingEvent, ExpiredEvent, MessageEvent, StatusEvent
from engines.registry import get_transport
from instances.guards import ChatError, NotAuthorized, check_authorized
from instances.models import Instance
from journals.models import ChangeKind, ChatState, Direction, JournalMessage, MessageChange
from messaging.models import OutgoingMessage, new_id_message

log = logging.getLogger(__name__)

__all__ = ["ChatError", "NotAuthorized", "check_authorized"]  # their home is instances.guards

# Engine messages that change another message rather than add one to the chat: the
# journal lists show their effect on the target (edited text, isDeleted, poll tally).
CHANGE_TYPES = ("editedMessage", "deletedMessage", "pollUpdateMessage")
TEXT_TYPES = ("textMessage", "extendedTextMessage", "quotedMessage")
EDIT_WINDOW = timedelta(minutes=15)
EPHEMERAL_EXPIRATIONS = (0, 86_400, 604_800, 7_776_000)


def chat_type(chat_id: str) -> str:
    return "group" if chat_id.endswith("@g.us") else "user"


# --- What ingestion records ------------------------------------------------------------


def touch_chat(instance_id: int, chat_id: str, moment: datetime, name: str = "") -> None:
    """The chat saw a message at ``moment``: it moves up in getChats. Creates the
    chat's row on its first message. Safe under concurrent ingestion."""
    rows = ChatState.objects.filter(instance_id=instance_id, chat_id=chat_id)
    changes: dict[str, Any] = {"last_activity": moment}
    if name:
        changes["name"] = name
    if rows.filter(last_activity__lt=moment).update(**changes) or rows.exists():
        return
    try:
        with transaction.atomic():
            ChatState.objects.create(instance_id=instance_id, chat_id=chat_id, name=name, last_activity=moment)
    except IntegrityError:
        pass  # created meanwhile by another ingestion of this chat


def touch_chats(touches: Sequence[tuple[int, str, datetime, str]]) -> None:
    """``touch_chat`` for many chats (instance id, chat id, moment, name): the drain
    touches one chat per instance per sweep, a statement each cost an eighth of its
    CPU. On PostgreSQL every chat that exists and is older moves with one UPDATE;
    the rest (a first message, or a chat already newer) go one by one as before.
    Callers hold the instances' notification cursor locks (journals.services), so
    two such UPDATEs never lock the same chat rows in opposite orders."""
    latest: dict[tuple[int, str], tuple[datetime, str]] = {}
    for instance_id, chat_id, moment, name in touches:
        seen = latest.get((instance_id, chat_id))
        if seen is None or moment > seen[0]:
            latest[(instance_id, chat_id)] = (moment, name or (seen[1] if seen else ""))
        elif name and not seen[1]:
            latest[(instance_id, chat_id)] = (seen[0], name)
    rest = list(latest)
    if connection.vendor == "postgresql" and len(latest) > 1:
        table = ChatState._meta.db_table
        rows = ", ".join(["(%s, %s, %s::timestamptz, %s)"] * len(latest))
        params: list[Any] = []
        for (instance_id, chat_id), (moment, name) in latest.items():
            params += [instance_id, chat_id, moment, name]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS c SET last_activity = v.moment,"
                " name = CASE WHEN v.name <> '' THEN v.name ELSE c.name END"
                f" FROM (VALUES {rows}) AS v(instance_id, chat_id, moment, name)"
                " WHERE c.instance_id = v.instance_id AND c.chat_id = v.chat_id AND c.last_activity < v.moment"
                " RETURNING c.instance_id, c.chat_id",
                params,
            )
            moved = set(cursor.fetchall())
        rest = [key for key in latest if key not in moved]
    for instance_id, chat_id in rest:
        moment, name = latest[(instance_id, chat_id)]
        touch_chat(instance_id, chat_id, moment, name)


def _record_change(
    instance_id: int, chat_id: str, id_message: str, kind: str, moment: datetime, actor: str = "", **values: Any
) -> None:
    """Upsert one change, keeping the newest when changes arrive out of order."""
    key = {"instance_id": instance_id, "chat_id": chat_id, "id_message": id_message, "kind": kind, "actor": actor}
    if MessageChange.objects.filter(**key, timestamp__lte=moment).update(timestamp=moment, **values):
        return
    if MessageChange.objects.filter(**key).exists():
        return  # a newer change is already recorded
    try:
        with transaction.atomic():
            MessageChange.objects.create(**key, timestamp=moment, **values)
    except IntegrityError:
        pass


def record_journal_message(instance: Instance, event: MessageEvent) -> None:
    """Side effects of a journalled engine message: chat activity, and for edits,
    revokes and poll votes the change they make to their target message."""
    data = event.message_data
    kind = event.type_message
    if event.chat_id != STATUS_BROADCAST:  # statuses are not a chat of the chat list
        touch_chat(instance.pk, event.chat_id, event.timestamp, event.chat_name)
    if kind == "editedMessage":
        edited = data.get("editedMessageData") or {}
        text = edited.get("textMessage", edited.get("caption", ""))
        if edited.get("stanzaId"):
            _record_change(
                instance.pk, event.chat_id, str(edited["stanzaId"]), ChangeKind.EDITED, event.timestamp, text=str(text)
            )
    elif kind == "deletedMessage":
        deleted = data.get("deletedMessageData") or {}
        if deleted.get("stanzaId"):
            _record_change(instance.pk, event.chat_id, str(deleted["stanzaId"]), ChangeKind.DELETED, event.timestamp)
    elif kind == "pollUpdateMessage":
        poll = data.get("pollMessageData") or {}
        voter = event.sender if event.direction == Direction.INCOMING else instance.wid
        if poll.get("stanzaId") and voter:
            chosen = [
                str(vote.get("optionName", ""))
                for vote in poll.get("votes", [])
                if isinstance(vote, dict) and voter in (vote.get("optionVoters") or [])
            ]
            _record_change(
                instance.pk,
                event.chat_id,
                str(poll["stanzaId"]),
                ChangeKind.VOTE,
                event.timestamp,
                actor=voter,
                options=chosen,
            )


# --- Read marks ------------------------------------------------------------------------


def read_chat(instance: Instance, *, chat_id: str, id_message: str = "") -> int:
    """readChat: mark the chat's incoming messages read (all, or up to
    ``id_message``) and send read receipts through the engine. Returns how many
    journal messages changed. An engine error is the answer (nothing is marked
    read then): the receipts are the point of the method."""
    check_authorized(instance)
    transport = get_transport(instance)
    unread = JournalMessage.objects.filter(
        instance_id=instance.pk, chat_id=chat_id, direction=Direction.INCOMING, is_read=False
    )
    with transaction.atomic():
        if not id_message:
            transport.read_chat(chat_id=chat_id)
            return unread.update(is_read=True)
        bound = (
            JournalMessage.objects.filter(instance_id=instance.pk, chat_id=chat_id, id_message=id_message)
            .values_list("timestamp", flat=True)
            .first()
        )
        if bound is not None:
            unread = unread.filter(timestamp__lte=bound)
        transport.read_chat_until(chat_id=chat_id, id_message=id_message)
        return unread.update(is_read=True)


# --- The directory and the address book --------------------------------------------------


CHECK_WHATSAPP_CACHE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class WhatsappAnswer:
    """checkWhatsapp: the engine's answer, and whether it came from the cache."""

    account: WhatsappCheck
    from_cache: bool
    # The id this instance keeps the chat under: the account's @lid with
    # enableLidMode on (as getChats and notifications show it), else @c.us
    # (GREEN-API keeps it for backward compatibility, API.md §2). "" if absent.
    chat_id: str = ""


def check_whatsapp(instance: Instance, *, chat_id: str, force: bool = False) -> WhatsappAnswer:
    """checkWhatsapp for ``<digits>@c.us`` or ``<digits>@lid``. Like GREEN-API,
    answers are cached per instance for a day (a number that joins meanwhile
    still reads as absent; ``fromCache`` says so); ``force`` asks the engine again
    and refreshes the cache."""
    check_authorized(instance)
    # created_at too: ids are reused across databases sharing one Redis.
    key = f"relay:check-whatsapp:v2:{instance.pk}:{instance.created_at.timestamp()}:{chat_id}"
    cached = None if force else cache.get(key)
    from_cache = isinstance(cached, list) and len(cached) == 3
    if isinstance(cached, list) and from_cache:
        account = WhatsappCheck(bool(cached[0]), str(cached[1]), str(cached[2]))
    else:
        account = get_transport(instance).check_whatsapp(chat_id=chat_id)
        cache.set(key, [account.exists, account.phone, account.lid], CHECK_WHATSAPP_CACHE_SECONDS)
    seen_as = ""
    if account.exists:
        seen_as = account.lid if instance.setting("enableLidMode") and account.lid else f"{account.phone}@c.us"
    return WhatsappAnswer(account, from_cache=from_cache, chat_id=seen_as)


def get_avatar(instance: Instance, *, chat_id: str) -> Avatar:
    check_authorized(instance)
    if chat_id == instance.wid and instance.avatar_url:
        return Avatar(exists=True, url=instance.avatar_url)
    return get_transport(instance).get_avatar(chat_id=chat_id)


@dataclass(frozen=True)
class ContactInfo:
    """getContactInfo: the user's profile plus how this account keeps the chat."""

    chat_id: str
    peer: PeerInfo | None
    chat: ChatState | None


def get_contact_info(instance: Instance, *, chat_id: str) -> ContactInfo:
    check_authorized(instance)
    if chat_id.endswith("@g.us"):
        raise ChatError("The method GetContactInfo does not support group chats")
    peer = get_transport(instance).contact_info(chat_id=chat_id)
    chat = ChatState.objects.filter(instance_id=instance.pk, chat_id=chat_id).first()
    return ContactInfo(chat_id=chat_id, peer=peer, chat=chat)


@dataclass(frozen=True)
class ContactItem:
    chat_id: str
    name: str
    contact_name: str
    type: str


def get_contacts(instance: Instance, *, group: bool | None = None, count: int | None = None) -> list[ContactItem]:
    """getContacts: address-book users, then the groups the account is in (``group``
    true: groups only; false: users only)."""
    check_authorized(instance)
    items: list[ContactItem] = []
    if group is not True:
        users: list[Contact] = get_transport(instance).contacts()
        items += [ContactItem(c.chat_id, c.name, c.contact_name, "user") for c in users]
    if group is not False:
        groups = ChatState.objects.filter(instance_id=instance.pk, chat_id__endswith="@g.us").order_by("-last_activity")
        items += [ContactItem(g.chat_id, g.name, "", "group") for g in groups.only("chat_id", "name")]
    return items[:count] if count is not None else items


def _not_on_whatsapp(chat_id: str) -> ChatError:
    return ChatError(f"{chat_id} is not on WhatsApp", status=404)


def save_contact(
    instance: Instance, *, chat_id: str, first_name: str, last_name: str = "", in_addressbook: bool = True
) -> None:
    """addContact / editContact: save the number under a name in WhatsApp, and
    (``in_addressbook``, the default) in the phone's own address book too."""
    check_authorized(instance)
    name = " ".join(part for part in (first_name, last_name) if part)
    if not get_transport(instance).save_contact(chat_id=chat_id, name=name, in_addressbook=in_addressbook):
        raise _not_on_whatsapp(chat_id)


def delete_contact(instance: Instance, *, chat_id: str) -> bool:
    check_authorized(instance)
    return get_transport(instance).delete_contact(chat_id=chat_id)


# --- Chats --------------------------------------------------------------------------------


def get_chats(instance: Instance, *, count: int | None = None) -> list[ChatState]:
    """getChats: the account's chats, most recently active first."""
    check_authorized(instance)
    rows = ChatState.objects.filter(instance_id=instance.pk).order_by("-last_activity", "-id")
    return list(rows[:count] if count is not None else rows)


def _chat_row(instance: Instance, chat_id: str) -> ChatState:
    row, _ = ChatState.objects.get_or_create(instance_id=instance.pk, chat_id=chat_id)
    return row


def archive_chat(instance: Instance, *, chat_id: str, archived: bool) -> None:
    """archiveChat / unarchiveChat. WhatsApp refuses to archive a chat with no
    messages; unarchiving one is a no-op."""
    check_authorized(instance)
    row = ChatState.objects.filter(instance_id=instance.pk, chat_id=chat_id).first()
    if row is None:
        # Both refuse a chat without messages (unarchive would otherwise answer a
        # success that changed nothing).
        verb = "ArchiveChatError: cannot archive" if archived else "UnarchiveChatError: cannot unarchive"
        raise ChatError(f"{verb} chat cause last message not found in chat")
    get_transport(instance).archive_chat(chat_id=chat_id, archived=archived)
    # The chat list belongs to the account: every device linked to the phone sees it.
    linked = Instance.objects.filter(phone=instance.phone, is_deleted=False).values_list("pk", flat=True)
    ChatState.objects.filter(instance_id__in=list(linked), chat_id=chat_id).update(archived=archived)


def archive_on_send(instance: Instance, *, chat_id: str) -> None:
    """The send methods' ``archiveChat``: the chat the message goes to is archived
    on every device of the account (created, as sending creates it, if new).
    Called inside the send's transaction."""
    touch_chat(instance.pk, chat_id, timezone.now())
    linked = [instance.pk]
    if instance.phone:
        linked = list(Instance.objects.filter(phone=instance.phone, is_deleted=False).values_list("pk", flat=True))
    ChatState.objects.filter(instance_id__in=linked, chat_id=chat_id).update(archived=True)


def set_disappearing(instance: Instance, *, chat_id: str, expiration: int) -> ChatState:
    """setDisappearingChat: set the chat's timer (one of EPHEMERAL_EXPIRATIONS)."""
    check_authorized(instance)
    get_transport(instance).set_disappearing(chat_id=chat_id, expiration=expiration)
    row = _chat_row(instance, chat_id)
    row.ephemeral_expiration = expiration
    row.ephemeral_set_at = timezone.now()
    row.save(update_fields=["ephemeral_expiration", "ephemeral_set_at"])
    return row


# --- Deleting and editing messages ------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """A message of the chat as the journals know it."""

    direction: str  # incoming | outgoing
    type_message: str
    sent_at: datetime
    by_api: bool


def _find(instance: Instance, chat_id: str, id_message: str) -> Found | None:
    sent = (
        OutgoingMessage.objects.filter(instance_id=instance.pk, chat_id=chat_id, id_message=id_message)
        .values_list("type_message", "sent_at", "created_at", "payload")
        .first()
    )
    if sent is not None:
        type_message, sent_at, created_at, payload = sent
        if type_message in ("textMessage", "extendedTextMessage") and (payload or {}).get("quotedMessageId"):
            type_message = "quotedMessage"
        return Found(Direction.OUTGOING, type_message, sent_at or created_at, True)
    row = (
        JournalMessage.objects.filter(instance_id=instance.pk, chat_id=chat_id, id_message=id_message)
        .values_list("direction", "type_message", "timestamp")
        .first()
    )
    if row is None:
        return None
    return Found(row[0], row[1], row[2], False)


def delete_message(instance: Instance, *, chat_id: str, id_message: str, only_me: bool = False) -> None:
    """deleteMessage. For everyone (our own messages only): the other side receives
    a revoke (``deletedMessage``) and the journals show the message ``isDeleted``.
    For me (``onlySenderDelete``): it leaves this instance's journals, nothing is
    sent."""
    check_authorized(instance)
    found = _find(instance, chat_id, id_message)
    if found is None:
        raise ChatError("message not found")
    now = timezone.now()
    if only_me:
        with transaction.atomic():
            JournalMessage.objects.filter(instance_id=instance.pk, chat_id=chat_id, id_message=id_message).delete()
            _record_change(instance.pk, chat_id, id_message, ChangeKind.HIDDEN, now)
        return
    if found.direction != Direction.OUTGOING:
        raise ChatError("only your own messages can be deleted for everyone; use onlySenderDelete")
    get_transport(instance).delete_message(chat_id=chat_id, id_message=id_message)
    _record_change(instance.pk, chat_id, id_message, ChangeKind.DELETED, now)


def consume_disappearing(pairs: Sequence[tuple[Instance | int, DisappearingEvent | ExpiredEvent]]) -> None:
    """What the engine says of disappearing messages: a chat's timer changed (set
    here, on another device or by the other side), or a message expired. An
    expired message leaves the journals as a delete-for-me does (the row goes, a
    ``hidden`` change keeps an API-sent copy out of the history); idempotent."""
    for target, event in pairs:
        instance_id = target.pk if isinstance(target, Instance) else target
        if isinstance(event, DisappearingEvent):
            row, _ = ChatState.objects.get_or_create(instance_id=instance_id, chat_id=event.chat_id)
            row.ephemeral_expiration = event.expiration
            row.ephemeral_set_at = event.timestamp
            row.save(update_fields=["ephemeral_expiration", "ephemeral_set_at"])
            continue
        with transaction.atomic():
            JournalMessage.objects.filter(
                instance_id=instance_id, chat_id=event.chat_id, id_message=event.id_message
            ).delete()
            _record_change(instance_id, event.chat_id, event.id_message, ChangeKind.HIDDEN, event.timestamp)


def edit_message(instance: Instance, *, chat_id: str, id_message: str, text: str) -> str:
    """editMessage: replace the text of one of our text messages for everyone.
    Returns the edit's idMessage. As on WhatsApp, an edit later than 15 minutes
    after sending is answered with an id but not applied: the instance gets a
    ``failed`` outgoingMessageStatus for it instead."""
    check_authorized(instance)
    found = _find(instance, chat_id, id_message)
    if found is None or found.direction != Direction.OUTGOING:
        raise ChatError("message not found")
    if found.type_message not in TEXT_TYPES:
        raise ChatError("only text messages can be edited")
    now = timezone.now()
    if now - found.sent_at > EDIT_WINDOW:
        refused = new_id_message()
        status = StatusEvent(
            chat_id=chat_id,
            id_message=refused,
            status="failed",
            timestamp=now,
            description="The message was not edited: WhatsApp allows edits within 15 minutes of sending",
        )
        sink.emit(instance, status)  # journals.services ingests it (outgoingMessageStatus)
        return refused
    edit_id = get_transport(instance).edit_message(chat_id=chat_id, id_message=id_message, text=text)
    _record_change(instance.pk, chat_id, id_message, ChangeKind.EDITED, now, text=text)
    return edit_id
