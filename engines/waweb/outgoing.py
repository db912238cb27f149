"""Sending one queued message through whatsmeow, idempotently per ``idMessage``;
replies quote the kept original (``WawebOriginal``) and forwards send it again.

whatsmeow picks the message id itself, so our ``idMessage`` is mapped to it
(``WawebMessage``). The map row is written *before* the send and completed right
after it: a retry that finds the row completed answers ``sent`` without sending
again; one that finds it incomplete knows the previous attempt died inside the one
``send_message`` call and sends again (the only window in which a message can go out
twice; docs/engines/waweb.md).

Imports neonize: only the session process loads this module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone
from neonize.proto.Neonize_pb2 import StatusPrivacy
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    ContactMessage,
    ContextInfo,
    ExtendedTextMessage,
    LocationMessage,
    Message,
)
from neonize.utils.enum import VoteType

from engines import media
from engines.contract import STATUS_BROADCAST, OutgoingPayload, TransportError
from engines.waweb.models import WawebMessage, WawebOriginal
from engines.waweb.spec import STATUS_PARTICIPANTS
from engines.waweb.translate import chat_id, sender_jid, to_jid, unwrap

if TYPE_CHECKING:
    from engines.waweb.session import Session

FONTS = {"SERIF": 1, "SANS_SERIF": 0, "NORICAN_REGULAR": 2, "BRYNDAN_WRITE": 3, "OSWALD_HEAVY": 6}


def vcard(contact: dict[str, Any]) -> tuple[str, str]:
    name = " ".join(
        p for p in (contact.get("firstName"), contact.get("middleName"), contact.get("lastName")) if p
    ) or str(contact.get("company", ""))
    phone = str(contact.get("phoneContact", ""))
    card = f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nitem1.TEL;waid={phone}:+{phone}\nEND:VCARD"
    return name, card


def original(session: Session, id_message: str) -> WawebOriginal | None:
    """The kept original of a message by its ``idMessage``: ours (mapped to
    WhatsApp's id) or a received one (whose idMessage is WhatsApp's id)."""
    instance_id = session.instance.pk
    wa_id = (
        WawebMessage.objects.filter(instance_id=instance_id, id_message=id_message)
        .exclude(wa_id="")
        .values_list("wa_id", flat=True)
        .first()
        or id_message
    )
    return WawebOriginal.objects.filter(instance_id=instance_id, wa_id=wa_id).first()


def _unknown(what: str, id_message: str) -> TransportError:
    return TransportError(
        f"{what} {id_message} is not known to this instance: the waweb engine quotes and forwards "
        f"only messages its session saw in the last {settings.WAWEB_KEEP_MESSAGES_DAYS} days",
        permanent=True,
    )


def _contents(message: Message) -> list[Any]:
    """The message's parts that carry a ``contextInfo`` (the content itself)."""
    return [
        value
        for field, value in message.ListFields()
        if field.message_type is not None and "contextInfo" in field.message_type.fields_by_name
    ]


def with_context(session: Session, message: Message | str, context: ContextInfo, link_preview: bool) -> Message:
    """``message`` carrying ``context`` (a quote, a forward mark). Text becomes an
    extended text, the only text message with a context, with the mentions and the
    link preview neonize's ``send_message`` would have given the plain string."""
    if isinstance(message, str):
        text = ExtendedTextMessage(text=message)
        text.contextInfo.mentionedJID.extend(session.client._parse_mention(message))  # noqa: SLF001 - neonize 0.5.2 (pinned) has no public one
        if link_preview:
            preview = session.client._generate_link_preview(message)  # noqa: SLF001 - as above
            if preview is not None:
                text.MergeFrom(preview)
        message = Message(extendedTextMessage=text)
    for part in _contents(message):
        part.contextInfo.MergeFrom(context)
    return message


def forwarded(source: WawebOriginal) -> Message:
    """The kept original sent again as a forward (WhatsApp's way: the same content,
    media keys and all, marked forwarded one more time; a reply loses its quote)."""
    message = Message()
    message.CopyFrom(unwrap(Message.FromString(bytes(source.message))))
    message.ClearField("messageContextInfo")  # the sender's device list and secret
    if message.conversation:
        message = Message(extendedTextMessage=ExtendedTextMessage(text=message.conversation))
    for part in _contents(message):
        score = part.contextInfo.forwardingScore if part.HasField("contextInfo") else 0
        part.ClearField("contextInfo")
        part.contextInfo.isForwarded = True
        part.contextInfo.forwardingScore = score + 1
    return message


def build(session: Session, payload: OutgoingPayload) -> Message | str:
    """The whatsmeow message for a queued payload: a reply quotes the kept
    original; a forward (``forwardedFrom``) sends the kept original again, or, when
    it is not kept, the payload rebuilt from the journal marked forwarded. Raises a
    permanent ``TransportError`` for what this engine cannot send."""
    data = payload.data
    link_preview = bool(data.get("linkPreview", False))
    source_id = str(data.get("forwardedFrom") or "")
    if source_id:
        source = original(session, source_id)
        if source is not None:
            return forwarded(source)
    message = build_content(session, payload)
    context = ContextInfo()
    if source_id:
        context.isForwarded = True
        context.forwardingScore = int(data.get("forwardingScore", 1))  # type: ignore[call-overload]
    quoted_id = str(data.get("quotedMessageId") or "")
    if quoted_id:
        quoted = original(session, quoted_id)
        if quoted is None:
            raise _unknown("the quoted message", quoted_id)
        context.stanzaID = quoted.wa_id
        context.participant = quoted.sender
        context.quotedMessage.CopyFrom(unwrap(Message.FromString(bytes(quoted.message))))
        context.quotedMessage.ClearField("messageContextInfo")
    if context.ListFields():
        return with_context(session, message, context, link_preview)
    return message


def build_content(session: Session, payload: OutgoingPayload) -> Message | str:
    data = payload.data
    kind = payload.type_message
    client = session.client
    if payload.chat_id == STATUS_BROADCAST and kind == "extendedTextMessage":
        colour = str(data.get("backgroundColor", "#000000")).lstrip("#") or "000000"
        return Message(
            extendedTextMessage=ExtendedTextMessage(
                text=str(data.get("message", "")),
                backgroundArgb=0xFF000000 | int(colour[:6], 16),
                font=FONTS.get(str(data.get("font", "")), 0),
            )
        )
    if kind in ("textMessage", "extendedTextMessage"):
        return str(data.get("message", ""))
    if kind == "locationMessage":
        return Message(
            locationMessage=LocationMessage(
                degreesLatitude=float(data["latitude"]),  # type: ignore[arg-type]
                degreesLongitude=float(data["longitude"]),  # type: ignore[arg-type]
                name=str(data.get("nameLocation", "")),
                address=str(data.get("address", "")),
            )
        )
    if kind == "contactMessage":
        name, card = vcard(dict(data.get("contact", {})))  # type: ignore[call-overload]
        return Message(contactMessage=ContactMessage(displayName=name, vcard=card))
    if kind == "pollMessage":
        options = [str(o["optionName"]) for o in data.get("options", [])]  # type: ignore[attr-defined]
        vote = VoteType.MULTIPLE if data.get("multipleAnswers") else VoteType.SINGLE
        return client.build_poll_vote_creation(str(data.get("message", "")), options, vote)
    if kind in ("imageMessage", "videoMessage", "audioMessage", "documentMessage", "stickerMessage"):
        try:
            stored, content = media.read(str(data.get("urlFile", "")))
        except media.MediaUnavailable as exc:
            raise TransportError(f"the file cannot be read: {exc}", permanent=True) from exc
        caption = str(data.get("caption", "")) or None
        if kind == "imageMessage":
            return client.build_image_message(content, caption=caption)
        if kind == "videoMessage":
            return client.build_video_message(content, caption=caption)
        if kind == "audioMessage":
            # A voice status is a voice note (push-to-talk), as the phone posts it.
            return client.build_audio_message(content, ptt=payload.chat_id == STATUS_BROADCAST)
        return client.build_document_message(
            content, caption=caption, filename=stored.file_name, mimetype=stored.mime_type
        )
    raise TransportError(f"{kind} is not supported by the waweb engine", permanent=True)


def has_account(session: Session, chat_id: str) -> bool:
    """Whether a user chat has a WhatsApp account. whatsmeow sends to a number
    without one all the same (it reaches no device and nobody says so), so the first
    message to a chat asks WhatsApp; a chat we sent to before is known."""
    if not chat_id.endswith("@c.us"):
        return True
    known = WawebMessage.objects.filter(instance_id=session.instance.pk, chat_id=chat_id).exclude(wa_id="")
    if known.exists():
        return True
    answers = session.client.is_on_whatsapp("+" + chat_id.split("@", 1)[0])
    return bool(answers and answers[0].IsIn)


def send(session: Session, payload: OutgoingPayload) -> dict[str, Any]:
    """Send one payload; the answer is ``SendResult``'s fields as JSON."""
    instance_id = session.instance.pk
    earlier = (
        WawebMessage.objects.filter(instance_id=instance_id, id_message=payload.id_message)
        .values_list("wa_id", flat=True)
        .first()
    )
    if earlier:
        return {"status": "sent"}  # it went out before the crash that made this a retry
    if not has_account(session, payload.chat_id):
        return {"status": "noAccount", "description": "The number has no WhatsApp account"}
    if earlier is None:
        WawebMessage.objects.create(
            instance_id=instance_id, id_message=payload.id_message, chat_id=payload.chat_id
        )
    if payload.chat_id == STATUS_BROADCAST and payload.data.get("participants"):
        # Refused before queueing (statuses.services); kept here for rows queued earlier.
        raise TransportError(STATUS_PARTICIPANTS, permanent=True)
    message = build(session, payload)
    link_preview = bool(payload.data.get("linkPreview", False)) and isinstance(message, str)
    response = session.client.send_message(to_jid(payload.chat_id), message, link_preview=link_preview)
    WawebMessage.objects.filter(instance_id=instance_id, id_message=payload.id_message).update(
        wa_id=str(response.ID)
    )
    sent = response.Message if response.HasField("Message") else message
    keep(session, str(response.ID), payload.chat_id, Message(conversation=sent) if isinstance(sent, str) else sent)
    if payload.chat_id == STATUS_BROADCAST:
        return {"status": "sent", "recipients": status_audience(session)}
    return {"status": "sent"}


def status_audience(session: Session) -> list[str]:
    """Who a status reaches: whatsmeow's own rule (``getStatusBroadcastRecipients``)
    on the same data. The allow-list of the account's status privacy, or else its
    saved contacts (a name on the phone) less the deny-list. Without an answer from
    WhatsApp (a network error), empty: statistics then start with the first viewer."""
    try:
        privacy = session.client.get_status_privacy()[0]
        listed = {chat_id(jid) for jid in privacy.List}
        if privacy.Type == StatusPrivacy.WHITELIST:
            return sorted(listed)
        saved = {
            chat_id(entry.JID) for entry in session.client.contact.get_all_contacts() if entry.Info.FullName
        }
    except Exception:  # noqa: BLE001 - neonize's GetStatusPrivacyError / ContactStoreError
        return []
    return sorted(saved - listed if privacy.Type == StatusPrivacy.BLACKLIST else saved)


def keep(session: Session, wa_id: str, chat_id: str, message: Message) -> None:
    """Keep what we sent, so it can be quoted and forwarded later."""
    me = session.client.get_me()
    WawebOriginal.objects.get_or_create(
        instance_id=session.instance.pk,
        wa_id=wa_id,
        defaults={
            "chat_id": chat_id,
            "sender": sender_jid(me.JID),
            "from_me": True,
            "timestamp": timezone.now(),
            "message": message.SerializeToString(),
            "read": True,
        },
    )
