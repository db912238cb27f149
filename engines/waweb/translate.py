"""whatsmeow's events (neonize protobufs) as Relay's engine events, and chat ids
both ways. Pure functions: the session process feeds them what neonize's dispatcher
hands it, and tests feed them the same serialised events offline.

Imports neonize: only the session process and tests load this module."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from neonize.proto.Neonize_pb2 import JID
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.Neonize_pb2 import Receipt as ReceiptEv
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message, PollVoteMessage, ProtocolMessage
from neonize.proto.waHistorySync.WAWebProtobufsHistorySync_pb2 import HistorySync

from engines.events import HistoryChat, MessageEvent, ReceiptStatus

SERVERS_TO_GREEN = {
    "s.whatsapp.net": "c.us",
    "c.us": "c.us",
    "g.us": "g.us",
    "lid": "lid",
    "broadcast": "broadcast",
}


def chat_id(jid: JID) -> str:
    """A JID as GREEN-API writes chat ids: ``79001234567@c.us``, ``…@g.us``."""
    server = SERVERS_TO_GREEN.get(jid.Server, jid.Server)
    return f"{jid.User}@{server}"


def device_jid(jid: JID) -> str:
    """A JID with its device, as whatsmeow's store keys it (``user:device@server``)."""
    device = f":{jid.Device}" if jid.Device else ""
    return f"{jid.User}{device}@{jid.Server}"


def to_jid(chat: str) -> JID:
    """A GREEN-API chat id as a JID (``…@c.us`` → ``…@s.whatsapp.net``)."""
    user, _, server = chat.partition("@")
    server = {"c.us": "s.whatsapp.net", "": "s.whatsapp.net"}.get(server, server)
    return JID(User=user, Server=server, Device=0, RawAgent=0, Integrator=0, IsEmpty=False)


def sender_jid(jid: JID) -> str:
    """A sender's JID as WhatsApp writes it in ``ContextInfo.participant`` (no
    device): ``79001234567@s.whatsapp.net``."""
    return f"{jid.User}@{jid.Server}"


def from_jid_text(text: str) -> JID:
    """``user[:device]@server`` (as stored) back to a JID."""
    user_device, _, server = text.partition("@")
    user, _, device = user_device.partition(":")
    return JID(User=user, Server=server, Device=int(device or 0), RawAgent=0, Integrator=0, IsEmpty=False)


def unwrap(message: Message) -> Message:
    """The content inside the wrappers whatsmeow hands over as they came
    (disappearing chats, view-once, documents with a caption)."""
    for wrapper in ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "documentWithCaptionMessage"):
        if message.HasField(wrapper):
            return unwrap(getattr(message, wrapper).message)
    return message


def timestamp(value: int) -> datetime:
    """neonize's timestamps are unix seconds (milliseconds in a few events)."""
    seconds = value / 1000 if value > 10**11 else value
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds > 0 else datetime.now(tz=UTC)


def _quoted(context: Any) -> dict[str, Any] | None:
    if context is None or not context.stanzaID:
        return None
    quoted: dict[str, Any] = {"stanzaId": context.stanzaID, "participant": _green(context.participant)}
    inner = message_data(context.quotedMessage) if context.HasField("quotedMessage") else None
    if inner:
        quoted.update(inner)
    return quoted


def _green(jid_text: str) -> str:
    return jid_text.replace("@s.whatsapp.net", "@c.us")


def _file(kind: str, media: Any, file_name: str = "") -> dict[str, Any]:
    return {
        "typeMessage": kind,
        "fileMessageData": {
            # Filled by the session once it has downloaded the file (media.store).
            "downloadUrl": "",
            "caption": getattr(media, "caption", ""),
            "fileName": file_name or getattr(media, "fileName", ""),
            "jpegThumbnail": "",
            "mimeType": getattr(media, "mimetype", ""),
            "isAnimated": bool(getattr(media, "isAnimated", False)),
            "forwardingScore": 0,
            "isForwarded": False,
        },
    }


def message_data(message: Message) -> dict[str, Any] | None:
    """GREEN-API's ``messageData`` for a WhatsApp message (API.md §10.2), or None for
    what GREEN-API does not report (protocol housekeeping, key distribution)."""
    data: dict[str, Any] | None = None
    context = None
    if message.HasField("ephemeralMessage"):
        return message_data(message.ephemeralMessage.message)
    if message.HasField("viewOnceMessage"):
        return message_data(message.viewOnceMessage.message)
    if message.HasField("documentWithCaptionMessage"):
        return message_data(message.documentWithCaptionMessage.message)
    if message.HasField("editedMessage"):
        # An edit as sent (neonize's build_edit); whatsmeow unwraps it on receipt.
        return message_data(message.editedMessage.message)
    if message.conversation:
        data = {"typeMessage": "textMessage", "textMessageData": {"textMessage": message.conversation}}
    elif message.HasField("extendedTextMessage"):
        ext = message.extendedTextMessage
        context = ext.contextInfo if ext.HasField("contextInfo") else None
        data = {
            "typeMessage": "extendedTextMessage",
            "extendedTextMessageData": {
                "text": ext.text,
                "description": ext.description,
                "title": ext.title,
                "previewType": "None",
                "jpegThumbnail": "",
                "forwardingScore": context.forwardingScore if context else 0,
                "isForwarded": bool(context.isForwarded) if context else False,
            },
        }
        if context is not None and context.stanzaID:
            data["typeMessage"] = "quotedMessage"
    elif message.HasField("imageMessage"):
        data = _file("imageMessage", message.imageMessage)
        context = message.imageMessage.contextInfo if message.imageMessage.HasField("contextInfo") else None
    elif message.HasField("videoMessage"):
        data = _file("videoMessage", message.videoMessage)
    elif message.HasField("audioMessage"):
        data = _file("audioMessage", message.audioMessage)
    elif message.HasField("documentMessage"):
        data = _file("documentMessage", message.documentMessage, message.documentMessage.fileName)
    elif message.HasField("stickerMessage"):
        data = _file("stickerMessage", message.stickerMessage)
    elif message.HasField("locationMessage"):
        loc = message.locationMessage
        data = {
            "typeMessage": "locationMessage",
            "locationMessageData": {
                "nameLocation": loc.name,
                "address": loc.address,
                "latitude": loc.degreesLatitude,
                "longitude": loc.degreesLongitude,
                "jpegThumbnail": "",
                "forwardingScore": 0,
                "isForwarded": False,
            },
        }
    elif message.HasField("contactMessage"):
        data = {
            "typeMessage": "contactMessage",
            "contactMessageData": {
                "displayName": message.contactMessage.displayName,
                "vcard": message.contactMessage.vcard,
                "forwardingScore": 0,
                "isForwarded": False,
            },
        }
    elif message.HasField("reactionMessage"):
        reaction = message.reactionMessage
        data = {
            "typeMessage": "reactionMessage",
            "extendedTextMessageData": {"text": reaction.text},
            "quotedMessage": {"stanzaId": reaction.key.ID, "participant": _green(reaction.key.participant)},
        }
        return data
    else:
        for field in ("pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV3"):
            if message.HasField(field):
                poll = getattr(message, field)
                data = {
                    "typeMessage": "pollMessage",
                    "pollMessageData": {
                        "name": poll.name,
                        "options": [{"optionName": o.optionName} for o in poll.options],
                        "multipleAnswers": poll.selectableOptionsCount != 1,
                    },
                }
                break
    if data is None and message.HasField("protocolMessage"):
        return _protocol(message.protocolMessage)
    if data is None:
        return None
    quoted = _quoted(context)
    if quoted is not None:
        data["quotedMessage"] = quoted
    return data


def _protocol(protocol: ProtocolMessage) -> dict[str, Any] | None:
    if protocol.type == ProtocolMessage.REVOKE:
        return {"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": protocol.key.ID}}
    if protocol.type == ProtocolMessage.MESSAGE_EDIT:
        edited = message_data(protocol.editedMessage) or {}
        text = edited.get("textMessageData", {}).get("textMessage") or edited.get(
            "extendedTextMessageData", {}
        ).get("text", "")
        return {
            "typeMessage": "editedMessage",
            "editedMessageData": {"textMessage": text, "stanzaId": protocol.key.ID},
        }
    return None


def message_event(
    event: MessageEv, own_chat_id: str, data: dict[str, Any] | None = None
) -> MessageEvent | None:
    """A message the linked account received (``incoming``) or sent from the phone
    or another device (``outgoing``); None for messages GREEN-API does not report.
    ``data`` is its ``messageData`` when the caller worked it out (a poll vote)."""
    data = message_data(event.Message) if data is None else data
    if data is None:
        return None
    source = event.Info.MessageSource
    chat = chat_id(source.Chat)
    sender = own_chat_id if source.IsFromMe else chat_id(source.Sender)
    return MessageEvent(
        direction="outgoing" if source.IsFromMe else "incoming",
        chat_id=chat,
        id_message=event.Info.ID,
        sender=sender,
        message_data=data,
        timestamp=timestamp(event.Info.Timestamp),
        sender_name="" if source.IsFromMe else event.Info.Pushname,
        chat_name="" if source.IsGroup else ("" if source.IsFromMe else event.Info.Pushname),
    )


def history_chats(
    data: HistorySync, own_chat_id: str, me: JID
) -> tuple[list[HistoryChat], list[MessageEvent], list[MessageEvent], list[dict[str, Any]]]:
    """A history-sync chunk as (chats, read messages, unread messages, originals to
    keep). A chat's newest ``unreadCount`` received messages are the unread ones;
    what GREEN-API does not report (protocol housekeeping) is left out."""
    chats: list[HistoryChat] = []
    read: list[MessageEvent] = []
    unread: list[MessageEvent] = []
    originals: list[dict[str, Any]] = []
    for conversation in data.conversations:
        chat = _green(conversation.ID)
        if not chat or chat.endswith(("@broadcast", "@newsletter")):
            continue
        group = chat.endswith("@g.us")
        name = conversation.name or conversation.displayName
        events: list[MessageEvent] = []
        for entry in conversation.messages:
            info = entry.message
            data_ = message_data(info.message)
            if data_ is None or data_["typeMessage"] in ("deletedMessage", "editedMessage"):
                continue
            key = info.key
            sender = (info.participant or key.participant) if group else key.remoteJID
            when = timestamp(int(info.messageTimestamp))
            events.append(
                MessageEvent(
                    direction="outgoing" if key.fromMe else "incoming",
                    chat_id=chat,
                    id_message=key.ID,
                    sender=own_chat_id if key.fromMe else _green(sender),
                    message_data=data_,
                    timestamp=when,
                    sender_name="" if key.fromMe else info.pushName,
                    chat_name=name,
                )
            )
            originals.append(
                {
                    "wa_id": key.ID,
                    "chat_id": chat,
                    "sender": sender_jid(me) if key.fromMe else sender,
                    "from_me": bool(key.fromMe),
                    "timestamp": when,
                    "message": info.message.SerializeToString(),
                    "read": True,
                }
            )
        events.sort(key=lambda e: e.timestamp)
        received = [e for e in events if e.direction == "incoming"]
        newest = received[max(0, len(received) - conversation.unreadCount) :] if conversation.unreadCount else []
        fresh = {e.id_message for e in newest}
        for event in events:
            (unread if event.id_message in fresh else read).append(event)
        for original in originals:
            if original["wa_id"] in fresh:
                original["read"] = False
        last = conversation.conversationTimestamp or conversation.lastMsgTimestamp
        chats.append(
            HistoryChat(
                chat_id=chat,
                name=name,
                archived=bool(conversation.archived),
                last_activity=timestamp(int(last)) if last else (events[-1].timestamp if events else None),
            )
        )
    return chats, read, unread, originals


RECEIPTS: dict[int, ReceiptStatus] = {
    ReceiptEv.DESCRIPTOR.fields_by_name["Type"].enum_type.values_by_name["DELIVERED"].number: "delivered",
    ReceiptEv.DESCRIPTOR.fields_by_name["Type"].enum_type.values_by_name["READ"].number: "read",
    ReceiptEv.DESCRIPTOR.fields_by_name["Type"].enum_type.values_by_name["PLAYED"].number: "played",
}


READ_SELF = ReceiptEv.DESCRIPTOR.fields_by_name["Type"].enum_type.values_by_name["READ_SELF"].number


def receipt_status(event: ReceiptEv) -> ReceiptStatus | None:
    """What a receipt says about messages this account sent (None: a receipt of
    our own devices, a retry request, …)."""
    if event.MessageSource.IsFromMe:
        return None  # READ_SELF etc.: the account's own devices
    return RECEIPTS.get(event.Type)


class PollVoteError(Exception):
    """A vote that cannot be read: not a vote on this poll, or not for its secret."""


def _non_ad(jid_text: str) -> str:
    """``user[:device]@server`` without the device (whatsmeow's ``ToNonAD``)."""
    user_device, _, server = jid_text.partition("@")
    return f"{user_device.partition(':')[0]}@{server}"


def poll_creator(event: MessageEv) -> str:
    """Who created the poll a vote is on, as whatsmeow works it out from the vote's
    ``pollCreationMessageKey`` (whose ``fromMe`` is the voter's point of view: the
    voter's own poll); ``user@server``."""
    key = unwrap(event.Message).pollUpdateMessage.pollCreationMessageKey
    if key.fromMe:
        return sender_jid(event.Info.MessageSource.Sender)
    if event.Info.MessageSource.Chat.Server in ("s.whatsapp.net", "lid"):
        return _non_ad(key.remoteJID)
    return _non_ad(key.participant)


def decrypt_poll_vote(secret: bytes, poll_id: str, creator: str, voter: str, payload: bytes, iv: bytes) -> list[bytes]:
    """The SHA-256 hashes of the options a vote selects (whatsmeow's msgsecret.go:
    AES-256-GCM under HKDF-SHA256 of the poll's ``messageSecret`` with info
    ``pollID + creator + voter + "Poll Vote"``, additional data
    ``pollID NUL voter``; JIDs as ``user@server``)."""
    info = f"{poll_id}{creator}{voter}Poll Vote".encode()
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(secret)
    try:
        plain = AESGCM(key).decrypt(iv, payload, f"{poll_id}\x00{voter}".encode())
    except InvalidTag as exc:
        raise PollVoteError("the vote does not decrypt with the poll's secret") from exc
    return list(PollVoteMessage.FromString(plain).selectedOptions)


def poll_vote_data(event: MessageEv, poll: Message, voter_chat_id: str) -> dict[str, Any]:
    """GREEN-API's ``pollUpdateMessage`` for a vote (``event``) on a kept poll
    (``poll``, the creation message with its ``messageSecret``): every option, with
    the voter among the ``optionVoters`` of those the vote selects (one webhook per
    voter action, that voter's current choice only, API.md §10)."""
    update = unwrap(event.Message).pollUpdateMessage
    content = unwrap(poll)
    creation = next(
        (
            getattr(content, field)
            for field in ("pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV3")
            if content.HasField(field)
        ),
        None,
    )
    secret = poll.messageContextInfo.messageSecret or content.messageContextInfo.messageSecret
    if creation is None or not secret:
        raise PollVoteError("the kept message is not a poll with a secret")
    poll_id = update.pollCreationMessageKey.ID
    creator = poll_creator(event)
    source = event.Info.MessageSource
    # A LID-addressed chat may name the voter by its other JID: whatsmeow tries both.
    voters = [sender_jid(source.Sender)] + ([sender_jid(source.SenderAlt)] if source.SenderAlt.User else [])
    selected: list[bytes] | None = None
    for voter in voters:
        try:
            selected = decrypt_poll_vote(secret, poll_id, creator, voter, update.vote.encPayload, update.vote.encIV)
            break
        except PollVoteError:
            continue
    if selected is None:
        raise PollVoteError("the vote does not decrypt with the poll's secret")
    chosen = set(selected)
    names = [option.optionName for option in creation.options]
    return {
        "typeMessage": "pollUpdateMessage",
        "pollMessageData": {
            "stanzaId": poll_id,
            "name": creation.name,
            "votes": [
                {
                    "optionName": name,
                    "optionVoters": [voter_chat_id] if hashlib.sha256(name.encode()).digest() in chosen else [],
                }
                for name in names
            ],
            "multipleAnswers": creation.selectableOptionsCount != 1,
        },
    }
