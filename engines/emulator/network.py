"""What the emulated network's modules share: the peer of an event (created on
first use, refused when unregistered or another tenant's), the refusal an event
raises, reply quotes, generated sample files and pictures as WhatsApp stores them,
and a phone showing its presence (typing, recording, online).
Below every module that builds events or messages, so they form no circle."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from PIL import Image

from engines.emulator.models import EmuLid, EmuMessage, EmuPhone, EmuPresence
from engines.emulator.phones import PhoneClaimed, check_may_act_as, ensure_phone
from instances.images import check_image
from instances.models import Instance

Fields = dict[str, Any]


class EventError(Exception):
    """The event cannot happen on the network (unknown message, not paired…); the
    control API answers 400 with this text."""


def wid(phone: str) -> str:
    return f"{phone}@c.us"


def _peer(phone: str, name: str = "", *, author_for: Instance | None = None) -> EmuPhone:
    """The other phone of an event, created if new. ``author_for``: the event is
    written *as* this phone for that instance's tenant, which another tenant's
    number must refuse (its instance would take the event in as its own)."""
    if author_for is not None:
        try:
            check_may_act_as(phone, author_for.account_id)
        except PhoneClaimed as exc:
            raise EventError(str(exc)) from exc
    peer = ensure_phone(phone, name if author_for is not None else "")
    if not peer.registered:
        raise EventError(f"+{phone} has no WhatsApp account")
    return peer


def quoted_object(message: EmuMessage) -> Fields:
    """The ``quotedMessage`` object of a reply: it mirrors the quoted message
    (API.md §10.4 quotedMessage)."""
    data = message.message_data or {}
    kind = str(data.get("typeMessage", message.type_message))
    quoted: Fields = {"stanzaId": message.id_message, "participant": wid(message.sender), "typeMessage": kind}
    text = data.get("textMessageData")
    ext = data.get("extendedTextMessageData")
    file = data.get("fileMessageData")
    if isinstance(text, dict):
        quoted["textMessage"] = text.get("textMessage", "")
    elif isinstance(ext, dict):
        if kind == "extendedTextMessage":
            quoted["extendedTextMessage"] = {
                k: ext.get(k, "") for k in ("text", "description", "title", "previewType", "jpegThumbnail")
            }
        else:
            quoted["textMessage"] = ext.get("text", "")
    elif isinstance(file, dict):
        quoted.update(
            downloadUrl=file.get("downloadUrl", ""),
            caption=file.get("caption", ""),
            jpegThumbnail=file.get("jpegThumbnail", ""),
        )
    elif isinstance(data.get("contactMessageData"), dict):
        contact = data["contactMessageData"]
        quoted["contact"] = {"displayName": contact.get("displayName", ""), "vcard": contact.get("vcard", "")}
    elif isinstance(data.get("locationMessageData"), dict):
        loc = data["locationMessageData"]
        quoted["location"] = {
            k: loc.get(k) for k in ("nameLocation", "address", "latitude", "longitude", "jpegThumbnail")
        }
    return quoted


def _picture(fmt: str, size: int = 64) -> bytes:
    img = Image.new("RGB", (size, size), (37, 211, 102))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def sample_file(kind: str) -> tuple[bytes, str, str]:
    """A small generated file of the kind: (bytes, MIME type, extension)."""
    if kind == "imageMessage":
        return _picture("JPEG"), "image/jpeg", ".jpg"
    if kind == "stickerMessage":
        return _picture("WEBP", 128), "image/webp", ".webp"
    if kind == "videoMessage":
        box = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
        return box + b"\x00\x00\x00\x08free" + b"\x00\x00\x00\x08mdat", "video/mp4", ".mp4"
    if kind == "audioMessage":
        # A voice note: an Ogg page header is enough for every type sniffer.
        return b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13OpusHead\x01\x01", "audio/ogg", ".ogg"
    body = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    return body, "application/pdf", ".pdf"


def jpeg_thumbnail(data: bytes, size: int = 640) -> bytes:
    """A picture as WhatsApp stores it: at most ``size`` px a side, JPEG. ``data``
    has passed the upload checks (``instances.api.read_image_upload``: an image
    within the pixel limit); ``draft`` lets JPEGs decode at a reduced scale, so a
    large photo never occupies its full size in memory."""
    check_image(data)  # again here: the one guard every caller passes through
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (size, size))
        image.thumbnail((size, size))
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def show_presence(phone: str, *, chat_id: str, kind: str, milliseconds: int, start: datetime | None = None) -> EmuPresence:
    """A phone shows ``kind`` (typing, recording; online with ``chat_id`` empty) from
    ``start`` (now) for ``milliseconds``: the network row its peers read."""
    started = start or timezone.now()
    return EmuPresence.objects.create(
        phone=phone, chat_id=chat_id, kind=kind, started_at=started, until=started + timedelta(milliseconds=milliseconds)
    )


def lid_for(phone: str) -> str:
    """A stable, fake LID for an emulated phone (15 digits, like WhatsApp's),
    recorded so that sending to it reaches the phone (``phones_of_lids``)."""
    return lids_for([phone])[phone]


def lids_for(phones: Iterable[str]) -> dict[str, str]:
    """``lid_for`` of several phones, recorded with one statement."""
    found: dict[str, str] = {}
    for phone in set(phones):
        digest = int(hashlib.sha256(f"lid:{phone}".encode()).hexdigest(), 16)
        found[phone] = f"{100000000000000 + digest % 899999999999999}@lid"
    if found:
        EmuLid.objects.bulk_create(
            [EmuLid(lid=lid, phone=phone) for phone, lid in found.items()], ignore_conflicts=True
        )
    return found


def phones_of_lids(lids: Iterable[str]) -> dict[str, str]:
    """The phones behind LIDs the network has shown (others are unknown)."""
    return dict(EmuLid.objects.filter(lid__in=set(lids)).values_list("lid", "phone"))
