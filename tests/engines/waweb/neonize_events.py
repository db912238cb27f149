"""Real neonize events, serialised the way whatsmeow hands them to Python, fed
through neonize's own dispatcher (``client.event.execute``) exactly as the Go side
calls it: a pointer, a size and the event's code. proto2: required fields filled."""

from __future__ import annotations

import ctypes
from typing import Any

from neonize.events import EVENT_TO_INT
from neonize.proto.Neonize_pb2 import (
    JID,
    BasicCallMeta,
    CallOffer,
    CallRemoteMeta,
    Connected,
    LoggedOut,
    MessageInfo,
    MessageSource,
    Node,
    Receipt,
    TemporaryBan,
)
from neonize.proto.Neonize_pb2 import Message as MessageEv
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

EMPTY = JID(User="", RawAgent=0, Device=0, Integrator=0, Server="", IsEmpty=True)


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> JID:
    return JID(User=user, RawAgent=0, Device=device, Integrator=0, Server=server, IsEmpty=False)


def source(chat: JID, sender: JID, *, from_me: bool = False) -> MessageSource:
    return MessageSource(
        Chat=chat,
        Sender=sender,
        IsFromMe=from_me,
        IsGroup=chat.Server == "g.us",
        SenderAlt=EMPTY,
        RecipientAlt=EMPTY,
        BroadcastListOwner=EMPTY,
    )


def message(
    wa_id: str, peer: str, content: Message, *, from_me: bool = False, me: str = "", push_name: str = "John"
) -> MessageEv:
    chat = jid(peer)
    sender = jid(me) if from_me else chat
    info = MessageInfo(
        MessageSource=source(chat, sender, from_me=from_me),
        ID=wa_id,
        ServerID=0,
        Type="text",
        Pushname=push_name,
        Timestamp=1_767_000_000,
        Category="",
        Multicast=False,
        MediaType="",
        Edit="",
    )
    return MessageEv(
        Info=info,
        Message=content,
        IsEphemeral=False,
        IsViewOnce=False,
        IsViewOnceV2=False,
        IsViewOnceV2Extension=False,
        IsDocumentWithCaption=False,
        IsLottieSticker=False,
        IsEdit=False,
        UnavailableRequestID="",
        RetryCount=0,
    )


def receipt(peer: str, wa_ids: list[str], kind: str) -> Receipt:
    type_enum = Receipt.DESCRIPTOR.fields_by_name["Type"].enum_type.values_by_name[kind].number
    return Receipt(
        MessageSource=source(jid(peer), jid(peer)), MessageIDs=wa_ids, Timestamp=1_767_000_100, Type=type_enum
    )


def connected() -> Connected:
    return Connected(status=True)


def logged_out() -> LoggedOut:
    return LoggedOut(
        OnConnect=False, Reason=LoggedOut.DESCRIPTOR.fields_by_name["Reason"].enum_type.values[0].number
    )


def temporary_ban(expire: int = 3600) -> TemporaryBan:
    code = TemporaryBan.DESCRIPTOR.fields_by_name["Code"].enum_type.values[0].number
    return TemporaryBan(Code=code, Expire=expire)


def call_offer(peer: str, call_id: str) -> CallOffer:
    meta = BasicCallMeta(timestamp=1_767_000_200, callCreator=jid(peer), callCreatorAlt=EMPTY, callID=call_id)
    getattr(meta, "from").CopyFrom(jid(peer))
    remote = CallRemoteMeta(remotePlatform="android", remoteVersion="2.24")
    return CallOffer(basicCallMeta=meta, callRemoteMeta=remote, data=Node(Tag="offer"))


def feed(client: Any, event: Any) -> None:
    """Hand ``event`` to neonize's dispatcher as whatsmeow does."""
    data = event.SerializeToString()
    buffer = ctypes.create_string_buffer(data, len(data))
    client.event.execute(client.uuid, ctypes.addressof(buffer), len(data), EVENT_TO_INT[type(event)])


def feed_qr(client: Any, code: str) -> None:
    """A QR code, through neonize's QR callback path (a C string pointer)."""
    buffer = ctypes.create_string_buffer(code.encode())
    client._NewClient__onQr(client.uuid, ctypes.addressof(buffer))


def history(*conversations: Any, progress: int = 40) -> Any:
    """whatsmeow's ``HistorySync`` event: one chunk of the phone's history."""
    from neonize.proto.Neonize_pb2 import HistorySync as HistorySyncEv
    from neonize.proto.waHistorySync.WAWebProtobufsHistorySync_pb2 import HistorySync

    data = HistorySync(syncType=HistorySync.INITIAL_BOOTSTRAP, conversations=conversations, progress=progress)
    return HistorySyncEv(Data=data)


def conversation(chat: str, *entries: tuple[str, str, bool, int], name: str = "", unread: int = 0) -> Any:
    """A chat of a history sync; ``entries``: (WhatsApp id, text, from me, unix time),
    newest first as the phone sends them."""
    from neonize.proto.waCommon.WACommon_pb2 import MessageKey
    from neonize.proto.waHistorySync.WAWebProtobufsHistorySync_pb2 import Conversation, HistorySyncMsg
    from neonize.proto.waWeb.WAWebProtobufsWeb_pb2 import WebMessageInfo

    messages = [
        HistorySyncMsg(
            message=WebMessageInfo(
                key=MessageKey(remoteJID=chat, fromMe=from_me, ID=wa_id),
                message=Message(conversation=text),
                messageTimestamp=when,
                pushName="" if from_me else "John",
            ),
            msgOrderID=index,
        )
        for index, (wa_id, text, from_me, when) in enumerate(entries)
    ]
    return Conversation(ID=chat, name=name, unreadCount=unread, messages=messages, conversationTimestamp=entries[0][3])
