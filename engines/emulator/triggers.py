"""Events on the emulated network, as a phone would cause them.

A simulated contact writes to an instance's phone (any typeMessage an engine can
report), the linked phone itself writes to someone (``outgoingMessageReceived``), a
contact calls (offer, then pickUp / hungUp / declined) or blocks the account. These
functions only put rows on the network (``EmuMessage``, ``EmuSignal``); the session
runner that leases the instance takes them in (``emulator_session.take_inbox``) and
produces the notifications through ``journals.services.ingest_event``, exactly as a
real engine session would.

``message_data`` built here is GREEN-API's webhook ``messageData`` object (API.md
§10.4); field names of the ``fields`` dicts are the control API's wire names.
"""

from __future__ import annotations

import base64
import binascii
import io
import mimetypes
import secrets
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q
from PIL import Image

from engines import media
from engines.contract import CallError
from engines.emulator import calls as emulator_calls
from engines.emulator import groups
from engines.emulator.disappearing import apply_timers
from engines.emulator.groups import audiences, create_group, find_group_message, group_rows, groups_of
from engines.emulator.messages import echo_reply
from engines.emulator.models import EmuCall, EmuMessage, EmuSignal, SignalKind
from engines.emulator.network import EventError as EventError  # re-exported: control API, tests
from engines.emulator.network import _peer, quoted_object, sample_file, wid
from instances import events
from instances.images import UnsafeImage, check_image
from instances.models import Engine, Instance, State

Fields = dict[str, Any]
MessageData = dict[str, Any]

CALL_OUTCOMES = ("pickUp", "hungUp", "declined")
FILE_KINDS = ("imageMessage", "videoMessage", "audioMessage", "documentMessage", "stickerMessage")


def new_id_message() -> str:
    """A WhatsApp-phone style message id (32 uppercase hex digits)."""
    return secrets.token_hex(16).upper()


# --- Who talks to whom ----------------------------------------------------------------


def _own_phone(instance: Instance) -> str:
    if instance.engine != Engine.EMULATOR or not instance.phone or instance.state != State.AUTHORIZED:
        raise EventError("the instance must be authorized on the emulator (pair it first)")
    return instance.phone


def find_message(owner_phone: str, peer_phone: str, id_message: str) -> EmuMessage | None:
    """A message of the personal chat between two phones, whoever sent it."""
    return (
        EmuMessage.objects.filter(id_message=id_message)
        .filter(Q(sender=owner_phone, recipient=peer_phone) | Q(sender=peer_phone, recipient=owner_phone))
        .order_by("-id")
        .first()
    )


class _Chat:
    """The personal chat an event happens in: ``author`` writes to ``other``."""

    def __init__(self, *, instance: Instance, owner: str, peer: str, author: str) -> None:
        self.instance = instance
        self.owner = owner
        self.peer = peer
        self.author = author

    def known(self, id_message: str, *, what: str = "message") -> EmuMessage:
        found = find_message(self.owner, self.peer, id_message)
        if found is None:
            raise EventError(f"{what} {id_message} is not in the chat with +{self.peer}")
        return found

    def own(self, id_message: str) -> EmuMessage:
        """A message the author sent (only those can be edited or deleted)."""
        found = self.known(id_message)
        if found.sender != self.author:
            raise EventError(f"message {id_message} was not sent by +{self.author}")
        return found


# --- messageData builders, one per typeMessage ---------------------------------------


def _forwarded(fields: Fields) -> Fields:
    return {
        "forwardingScore": int(fields.get("forwardingScore", 0)),
        "isForwarded": bool(fields.get("isForwarded", False)),
    }


def _with_quote(chat: _Chat, fields: Fields, data: MessageData) -> MessageData:
    """Any message may be a reply: it then carries a ``quotedMessage`` object."""
    quoted_id = fields.get("quotedMessageId")
    if quoted_id:
        data["quotedMessage"] = quoted_object(chat.known(str(quoted_id)))
    return data


def vcard(display_name: str, phone: str) -> str:
    return f"BEGIN:VCARD\nVERSION:3.0\nFN:{display_name}\nitem1.TEL;waid={phone}:+{phone}\nEND:VCARD"


def _text(chat: _Chat, fields: Fields) -> MessageData:
    return {"typeMessage": "textMessage", "textMessageData": {"textMessage": fields["message"]}}


def _extended_text(chat: _Chat, fields: Fields) -> MessageData:
    data = {
        "text": fields["message"],
        "description": fields.get("description", ""),
        "title": fields.get("title", ""),
        "previewType": fields.get("previewType", "None"),
        "jpegThumbnail": fields.get("jpegThumbnail", ""),
        **_forwarded(fields),
    }
    return {"typeMessage": "extendedTextMessage", "extendedTextMessageData": data}


def _quoted(chat: _Chat, fields: Fields) -> MessageData:
    quoted = quoted_object(chat.known(fields["quotedMessageId"]))
    return {
        "typeMessage": "quotedMessage",
        "extendedTextMessageData": {
            "text": fields["message"],
            "stanzaId": quoted["stanzaId"],
            "participant": quoted["participant"],
        },
        "quotedMessage": quoted,
    }


def _location(chat: _Chat, fields: Fields) -> MessageData:
    data = {
        "nameLocation": fields.get("nameLocation", ""),
        "address": fields.get("address", ""),
        "latitude": fields["latitude"],
        "longitude": fields["longitude"],
        "jpegThumbnail": "",
        **_forwarded(fields),
    }
    return _with_quote(chat, fields, {"typeMessage": "locationMessage", "locationMessageData": data})


def _contact(chat: _Chat, fields: Fields) -> MessageData:
    name = fields["displayName"]
    data = {
        "displayName": name,
        "vcard": fields.get("vcard") or vcard(name, fields["phoneContact"]),
        **_forwarded(fields),
    }
    return _with_quote(chat, fields, {"typeMessage": "contactMessage", "contactMessageData": data})


def _contacts_array(chat: _Chat, fields: Fields) -> MessageData:
    contacts = [
        {
            "displayName": c["displayName"],
            "vcard": c.get("vcard") or vcard(c["displayName"], c["phoneContact"]),
        }
        for c in fields["contacts"]
    ]
    data = {"contacts": contacts, **_forwarded(fields)}
    # The nested key really is "messageData" (API.md §14).
    return _with_quote(chat, fields, {"typeMessage": "contactsArrayMessage", "messageData": data})


def _reaction(chat: _Chat, fields: Fields) -> MessageData:
    target = chat.known(fields["quotedMessageId"])
    return {
        "typeMessage": "reactionMessage",
        # An empty text removes the reaction.
        "extendedTextMessageData": {"text": fields.get("reaction", "")},
        "quotedMessage": {"stanzaId": target.id_message, "participant": wid(target.sender)},
    }


def _group_invite(chat: _Chat, fields: Fields) -> MessageData:
    code = fields.get("inviteCode") or base64.b64encode(secrets.token_bytes(12)).decode()[:16]
    data = {
        "groupJid": fields.get("groupJid") or f"120363{secrets.randbelow(10**12):012d}@g.us",
        "inviteCode": code,
        "inviteExpiration": str(fields.get("inviteExpiration", "0")),
        "groupName": fields["groupName"],
        "caption": fields.get("caption", ""),
        "name": fields.get("name", ""),
        "jpegThumbnail": "",
    }
    return {"typeMessage": "groupInviteMessage", "groupInviteMessageData": data}


def _poll(chat: _Chat, fields: Fields) -> MessageData:
    data = {
        "name": fields["message"],
        "options": [{"optionName": name} for name in fields["options"]],
        "multipleAnswers": bool(fields.get("multipleAnswers", False)),
    }
    return {"typeMessage": "pollMessage", "pollMessageData": data}


def _poll_update(chat: _Chat, fields: Fields) -> MessageData:
    poll_message = chat.known(fields["stanzaId"], what="poll")
    poll = (poll_message.message_data or {}).get("pollMessageData")
    if poll_message.type_message != "pollMessage" or not isinstance(poll, dict):
        raise EventError(f"message {poll_message.id_message} is not a poll")
    if poll_message.sender == chat.author:
        raise EventError("a vote comes from the other side of the chat")
    names = [str(o.get("optionName", "")) for o in poll.get("options", []) if isinstance(o, dict)]
    chosen = list(dict.fromkeys(fields.get("votes", [])))
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise EventError(f"the poll has no option {unknown[0]!r}")
    multiple = bool(poll.get("multipleAnswers", False))
    if len(chosen) > 1 and not multiple:
        raise EventError("the poll allows one answer")
    voter = wid(chat.author)
    # One webhook per voter action, holding that voter's current choice only.
    votes = [{"optionName": name, "optionVoters": [voter] if name in chosen else []} for name in names]
    data = {
        "stanzaId": poll_message.id_message,
        "name": poll.get("name", ""),
        "votes": votes,
        "multipleAnswers": multiple,
    }
    return {"typeMessage": "pollUpdateMessage", "pollMessageData": data}


def _edited(chat: _Chat, fields: Fields) -> MessageData:
    original = chat.own(fields["stanzaId"])
    return {
        "typeMessage": "editedMessage",
        "editedMessageData": {"textMessage": fields["message"], "stanzaId": original.id_message},
    }


def _deleted(chat: _Chat, fields: Fields) -> MessageData:
    original = chat.own(fields["stanzaId"])
    return {"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": original.id_message}}


def _buttons_response(chat: _Chat, fields: Fields) -> MessageData:
    target = chat.known(fields["stanzaId"])
    data = {
        "stanzaId": target.id_message,
        "selectedButtonId": fields["selectedButtonId"],
        "selectedButtonText": fields.get("selectedButtonText", ""),
    }
    return {"typeMessage": "buttonsResponseMessage", "buttonsResponseMessage": data}


def _list_response(chat: _Chat, fields: Fields) -> MessageData:
    target = chat.known(fields["stanzaId"])
    data = {
        "stanzaId": target.id_message,
        "title": fields.get("title", ""),
        "listType": 1,  # SINGLE_SELECT
        "singleSelectReply": fields["singleSelectReply"],
    }
    return {"typeMessage": "listResponseMessage", "listResponseMessage": data}


def _template_reply(chat: _Chat, fields: Fields) -> MessageData:
    target = chat.known(fields["stanzaId"])
    data = {
        "stanzaId": target.id_message,
        "selectedIndex": int(fields.get("selectedIndex", 0)),
        "selectedId": fields["selectedId"],
        "selectedDisplayText": fields.get("selectedDisplayText", ""),
    }
    # Plural typeMessage, singular data key (API.md §14).
    return {"typeMessage": "templateButtonsReplyMessage", "templateButtonReplyMessage": data}


def _interactive_reply(chat: _Chat, fields: Fields) -> MessageData:
    data = {
        "header": fields.get("header", ""),
        "body": fields["body"],
        "footer": fields.get("footer", ""),
        "buttons": [{"buttonId": b["buttonId"], "buttonText": b["buttonText"]} for b in fields["buttons"]],
    }
    return {"typeMessage": "interactiveButtonsReply", "interactiveButtonsReply": data}


# --- Files ---------------------------------------------------------------------------


def _thumbnail(content: bytes) -> str:
    try:
        check_image(content)  # a decompression bomb gets no thumbnail, and no decode
    except UnsafeImage:
        return ""
    try:
        with Image.open(io.BytesIO(content)) as img:
            img.draft("RGB", (32, 32))
            img.thumbnail((32, 32))
            buf = io.BytesIO()
            img.convert("RGB").save(buf, format="JPEG")
    except Exception:  # noqa: BLE001 - not a picture Pillow reads: no thumbnail
        return ""
    return base64.b64encode(buf.getvalue()).decode()


def _file(chat: _Chat, fields: Fields, kind: str) -> MessageData:
    """Store the file (the one given as base64, or a generated sample) in the
    instance's media and point ``downloadUrl`` at its signed link."""
    sample, sample_mime, extension = sample_file(kind)
    content = sample
    if fields.get("file"):
        try:
            content = base64.b64decode(str(fields["file"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EventError("'file' must be base64") from exc
    file_name = str(fields.get("fileName") or f"{secrets.token_hex(8)}{extension}")
    mime_hint = fields.get("mimeType")
    try:
        stored = media.store(
            instance_id=chat.instance.pk,
            content=content,
            file_name=file_name,
            mime_hints=(str(mime_hint) if mime_hint else None, mimetypes.guess_type(file_name)[0], sample_mime),
        )
    except media.MediaUnavailable as exc:
        raise EventError(str(exc)) from exc
    thumbnail = _thumbnail(content) if kind in ("imageMessage", "videoMessage") else ""
    data: Fields = {"downloadUrl": stored.url}
    if kind == "stickerMessage":
        data.update(
            jpegThumbnail=thumbnail,
            isAnimated=bool(fields.get("isAnimated", False)),
            mimeType=stored.mime_type,
        )
    else:
        data.update(
            caption=fields.get("caption", ""),
            fileName=stored.file_name,
            jpegThumbnail=thumbnail,
            mimeType=stored.mime_type,
            isAnimated=False,
        )
    data.update(_forwarded(fields))
    return _with_quote(chat, fields, {"typeMessage": kind, "fileMessageData": data})


def _file_builder(kind: str) -> Callable[[_Chat, Fields], MessageData]:
    return lambda chat, fields: _file(chat, fields, kind)


BUILDERS: dict[str, Callable[[_Chat, Fields], MessageData]] = {
    "textMessage": _text,
    "extendedTextMessage": _extended_text,
    "quotedMessage": _quoted,
    **{kind: _file_builder(kind) for kind in FILE_KINDS},
    "locationMessage": _location,
    "contactMessage": _contact,
    "contactsArrayMessage": _contacts_array,
    "reactionMessage": _reaction,
    "groupInviteMessage": _group_invite,
    "pollMessage": _poll,
    "pollUpdateMessage": _poll_update,
    "editedMessage": _edited,
    "deletedMessage": _deleted,
    "buttonsResponseMessage": _buttons_response,
    "listResponseMessage": _list_response,
    "templateButtonsReplyMessage": _template_reply,
    "interactiveButtonsReply": _interactive_reply,
}
MESSAGE_KINDS: tuple[str, ...] = tuple(BUILDERS)


def _put(*, sender: str, recipient: str, message_data: MessageData) -> EmuMessage:
    message = EmuMessage(
        sender=sender,
        chat_id=wid(recipient),
        recipient=recipient,
        id_message=new_id_message(),
        type_message=str(message_data["typeMessage"]),
        message_data=message_data,
    )
    apply_timers([message])
    message.save(force_insert=True)
    return message


# --- Services ------------------------------------------------------------------------


def contact_sends(instance: Instance, *, phone: str, kind: str, fields: Fields, name: str = "") -> EmuMessage:
    """A simulated contact (created if new) sends the instance's phone a message of
    ``kind`` (a typeMessage). The instance's session turns it into
    ``incomingMessageReceived``. Raises ``EventError`` for impossible events."""
    owner = _own_phone(instance)
    if phone == owner:
        raise EventError("a phone cannot message itself here; use phone-sent")
    with transaction.atomic():
        _peer(phone, name, author_for=instance)
        chat = _Chat(instance=instance, owner=owner, peer=phone, author=phone)
        message_data = BUILDERS[kind](chat, fields)
        return _put(sender=phone, recipient=owner, message_data=message_data)


def phone_sends(instance: Instance, *, phone: str, kind: str, fields: Fields) -> EmuMessage:
    """The instance's own phone (or another linked device) sends ``phone`` a message:
    the instance sees ``outgoingMessageReceived``; an instance linked to ``phone``
    receives it; a scripted contact answers."""
    owner = _own_phone(instance)
    if phone == owner:
        raise EventError("a phone cannot message itself here")
    with transaction.atomic():
        peer = _peer(phone)
        chat = _Chat(instance=instance, owner=owner, peer=phone, author=owner)
        message_data = BUILDERS[kind](chat, fields)
        message = _put(sender=owner, recipient=phone, message_data=message_data)
        if peer.script == "echo":
            echo_reply(peer, owner, message_data)
    return message


def contact_calls(instance: Instance, *, phone: str, outcome: str = "", name: str = "") -> str:
    """A contact calls the instance's phone: an ``offer`` now (the instance's
    callsState becomes ``inc-call``) and, with ``outcome``, what happens next right
    after (``call_ends``). Returns the call id (the notifications' idMessage)."""
    owner = _own_phone(instance)
    if outcome and outcome not in CALL_OUTCOMES:
        raise EventError(f"outcome must be one of {', '.join(CALL_OUTCOMES)}")
    if phone == owner:
        raise EventError("a phone cannot call itself")
    with transaction.atomic():
        _peer(phone, name, author_for=instance)
        try:
            call = emulator_calls.contact_dials(phone, owner)
            if outcome:
                emulator_calls.settle(call.id_call, owner, outcome)
        except CallError as exc:
            raise EventError(str(exc)) from exc
        events.calls_changed([instance.pk])
    return call.id_call


def call_ends(instance: Instance, *, id_call: str, outcome: str) -> None:
    """What happens to a call between a contact and the instance's phone: the phone
    answers (``pickUp``) or declines (``declined``) it while it rings, or the contact
    hangs up (``hungUp``, before or after an answer)."""
    owner = _own_phone(instance)
    if outcome not in CALL_OUTCOMES:
        raise EventError(f"outcome must be one of {', '.join(CALL_OUTCOMES)}")
    with transaction.atomic():
        call = EmuCall.objects.filter(id_call=id_call).filter(Q(caller=owner) | Q(callee=owner)).first()
        # pickUp / declined of a call ringing the owner are its own phone's doing; any
        # other step is the other side's, which must be a simulated contact we may act as.
        if call is not None and (call.caller == owner or outcome == "hungUp"):
            peer = call.callee if call.caller == owner else call.caller
            if not emulator_calls.is_simulated(peer):
                raise EventError(f"+{peer} is an instance: it answers through the API")
            _peer(peer, author_for=instance)
        try:
            emulator_calls.settle(id_call, owner, outcome)
        except CallError as exc:
            raise EventError(str(exc)) from exc
        events.calls_changed([instance.pk])


def contact_blocks(instance: Instance, *, phone: str) -> EmuSignal:
    """A contact blocks the instance's phone: ``incomingBlock``."""
    owner = _own_phone(instance)
    _peer(phone, author_for=instance)
    return EmuSignal.objects.create(kind=SignalKind.BLOCK, from_phone=phone, to_phone=owner, payload={})


# --- Groups: simulated members act in the instance's groups -----------------------------

GROUP_ACTIONS = ("add", "remove", "promote", "demote", "rename", "picture", "settings", "leave")


class _GroupChat(_Chat):
    """A group chat an event happens in: ``author`` writes to the group."""

    def __init__(self, *, instance: Instance, group_id: str, author: str) -> None:
        super().__init__(instance=instance, owner=instance.phone, peer="", author=author)
        self.group_id = group_id

    def known(self, id_message: str, *, what: str = "message") -> EmuMessage:
        found = find_group_message(self.group_id, id_message)
        if found is None:
            raise EventError(f"{what} {id_message} is not in the group {self.group_id}")
        return found


def _instance_group(instance: Instance, group_id: str) -> str:
    """The instance's phone, if the group is one it is or was in: a tenant drives
    only groups its own instance has seen (a group id alone is no key)."""
    owner = _own_phone(instance)
    seen = EmuSignal.objects.filter(kind=SignalKind.GROUP, to_phone=owner, payload__groupId=group_id).exists()
    if not seen:
        raise EventError(f"the instance has never been in the group {group_id}")
    return owner


def contact_creates_group(
    instance: Instance, *, phone: str, subject: str, participants: list[str], name: str = ""
) -> str:
    """A simulated contact creates a group with the instance's phone (and other
    contacts) in it. Returns the group id."""
    owner = _own_phone(instance)
    if phone == owner:
        raise EventError("the creator is a contact; use createGroup for the instance's own groups")
    with transaction.atomic():
        _peer(phone, name, author_for=instance)
        for other in participants:
            _peer(other)
        return create_group(actor=phone, subject=subject, participants=[owner, *participants]).group_id


def contact_posts_in_group(
    instance: Instance, *, group_id: str, phone: str, kind: str, fields: Fields, name: str = ""
) -> EmuMessage:
    """A simulated member posts a message of ``kind`` in the group: every current
    member (the instance's phone among them) receives it."""
    _instance_group(instance, group_id)
    with transaction.atomic():
        _peer(phone, name, author_for=instance)
        audience = audiences([(phone, group_id)])[(phone, group_id)]
        if audience.status != "sent":
            raise EventError(f"+{phone}: {audience.description}")
        chat = _GroupChat(instance=instance, group_id=group_id, author=phone)
        message_data = BUILDERS[kind](chat, fields)
        rows = group_rows(
            sender=phone,
            group_id=group_id,
            id_message=new_id_message(),
            type_message=str(message_data["typeMessage"]),
            message_data=message_data,
            recipients=audience.recipients,
        )

        apply_timers(rows)
        EmuMessage.objects.bulk_create(rows)
    return rows[0]


def contact_acts_in_group(
    instance: Instance,
    *,
    group_id: str,
    phone: str,
    action: str,
    participant: str = "",
    subject: str = "",
    picture: bytes = b"",
    only_admins_send: bool | None = None,
    only_admins_edit: bool | None = None,
) -> None:
    """A simulated member changes the group as WhatsApp lets it (``GROUP_ACTIONS``):
    add, remove, promote or demote ``participant`` (default: the instance's phone),
    rename, set the picture (checked image bytes), change the settings, or leave."""
    owner = _instance_group(instance, group_id)
    target = participant or owner
    _peer(phone, author_for=instance)
    try:
        if action == "add":
            groups.add_participant(group_id, actor=phone, phone=target)
        elif action == "remove":
            groups.remove_participant(group_id, actor=phone, phone=target)
        elif action in ("promote", "demote"):
            groups.set_admin(group_id, actor=phone, phone=target, admin=action == "promote")
        elif action == "rename":
            groups.rename_group(group_id, actor=phone, subject=subject)
        elif action == "picture":
            groups.set_picture(group_id, actor=phone, data=picture)
        elif action == "settings":
            groups.update_settings(
                group_id, actor=phone, only_admins_send=only_admins_send, only_admins_edit=only_admins_edit
            )
        elif action == "leave":
            groups.leave_group(group_id, actor=phone)
        else:
            raise EventError(f"action must be one of {', '.join(GROUP_ACTIONS)}")
    except groups.GroupError as exc:
        raise EventError(f"{exc.reason}: {exc}") from exc


def instance_groups(instance: Instance) -> list[Any]:
    """The groups the instance's phone is in now (emulator_groups.GroupView)."""
    return list(groups_of(_own_phone(instance)))


CONTACT_CALL_ACTIONS = ("answer", "reject", "hangup")


def contact_acts_on_call(instance: Instance, *, action: str) -> str:
    """The simulated contact on the other end of the instance's current call acts:
    answers or rejects the instance's ringing call, or hangs up. Returns the call id."""
    owner = _own_phone(instance)
    if action not in CONTACT_CALL_ACTIONS:
        raise EventError(f"action must be one of {', '.join(CONTACT_CALL_ACTIONS)}")
    with transaction.atomic():
        call = emulator_calls.current(owner)
        if call is None:
            raise EventError("the phone is not in a call")
        peer = call.callee if call.caller == owner else call.caller
        if not emulator_calls.is_simulated(peer):
            raise EventError(f"+{peer} is an instance: it answers through the API")
        _peer(peer, author_for=instance)  # another tenant's number is not ours to act as
        try:
            if action == "answer":
                emulator_calls.accept(peer)
            elif action == "reject":
                emulator_calls.reject(peer)
            else:
                emulator_calls.hang_up(peer)
        except CallError as exc:
            raise EventError(str(exc)) from exc
        events.calls_changed([instance.pk])
    return call.id_call
