"""Sending one queued message through whatsmeow, idempotently per ``idMessage``.

whatsmeow picks the message id itself, so our ``idMessage`` is mapped to it
(``WawebMessage``). The map row is written *before* the send and completed right
after it: a retry that finds the row completed answers ``sent`` without sending
again; one that finds it incomplete knows the previous attempt died inside the one
``send_message`` call and sends again (the only window in which a message can go out
twice; docs/engines/waweb.md).

Imports neonize: only the session process loads this module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    ContactMessage,
    ExtendedTextMessage,
    LocationMessage,
    Message,
)
from neonize.utils.enum import VoteType

from engines import media
from engines.contract import STATUS_BROADCAST, OutgoingPayload, TransportError
from engines.waweb.models import WawebMessage
from engines.waweb.translate import to_jid

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


def build(session: Session, payload: OutgoingPayload) -> Message | str:
    """The whatsmeow message for a queued payload; raises a permanent
    ``TransportError`` for what this engine cannot send."""
    data = payload.data
    kind = payload.type_message
    client = session.client
    if data.get("quotedMessageId"):
        # whatsmeow needs the quoted message itself, which this engine does not keep
        # yet: fail visibly rather than send a reply that quotes nothing.
        raise TransportError("quotedMessageId is not supported by the waweb engine yet", permanent=True)
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
            return client.build_audio_message(content)
        return client.build_document_message(
            content, caption=caption, filename=stored.file_name, mimetype=stored.mime_type
        )
    raise TransportError(f"{kind} is not supported by the waweb engine", permanent=True)


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
    if earlier is None:
        WawebMessage.objects.create(
            instance_id=instance_id, id_message=payload.id_message, chat_id=payload.chat_id
        )
    message = build(session, payload)
    link_preview = bool(payload.data.get("linkPreview", False)) and isinstance(message, str)
    response = session.client.send_message(to_jid(payload.chat_id), message, link_preview=link_preview)
    WawebMessage.objects.filter(instance_id=instance_id, id_message=payload.id_message).update(
        wa_id=str(response.ID)
    )
    return {"status": "sent"}
