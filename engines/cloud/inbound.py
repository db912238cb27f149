"""What Meta's webhooks report, taken in: messages become ``MessageEvent``s in
GREEN-API's shapes (media fetched from Graph and stored), statuses of our messages
``ReceiptEvent``s. Each message is taken in once (the wamid map's unique key)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from engines import media, sink
from engines.cloud import graph
from engines.cloud.models import CloudAccount, CloudInbox, CloudMessage, CloudUser, Direction
from engines.events import MessageEvent, ReceiptEvent
from instances.models import Instance

log = logging.getLogger(__name__)

MEDIA_KINDS = {
    "image": "imageMessage",
    "video": "videoMessage",
    "audio": "audioMessage",
    "document": "documentMessage",
    "sticker": "stickerMessage",
}


def our_id(wamid: str) -> str:
    """The idMessage of a received message: 32 hex digits like GREEN-API's, the same
    for every delivery of one wamid."""
    return hashlib.sha256(wamid.encode()).hexdigest()[:32].upper()


def lid_for(bsuid: str) -> str:
    """A stable chatId for a user Meta names only by a business-scoped id: 15 digits
    from its hash, on the ``@lid`` server GREEN-API uses for ids that are not phones."""
    return f"{int(hashlib.sha256(bsuid.encode()).hexdigest(), 16) % 10**15:015d}@lid"


def _when(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError):
        return timezone.now()


def take_in_queued(instance_id: int) -> int:
    """Take in the instance's queued webhook deliveries (``CloudInbox``), oldest first,
    each in its own transaction that deletes it. Safe to run twice at once: the head
    row is locked, so a second run waits for it and then finds the next (or nothing).
    A delivery that fails is counted and left at the head (later ones wait, keeping
    Meta's order), until ``CLOUD_INBOX_MAX_ATTEMPTS`` sets it aside. Returns how many
    messages and statuses were new."""
    taken = 0
    while True:
        failed: Exception | None = None
        with transaction.atomic():
            row = (
                CloudInbox.objects.select_for_update()
                .select_related("instance")
                .filter(instance_id=instance_id, dead=False)
                .order_by("pk")
                .first()
            )
            if row is None:
                return taken
            try:
                with transaction.atomic():
                    taken += take_in(row.instance, row.payload)
            except Exception as exc:  # noqa: BLE001 - a bug or an outage must not lose the delivery
                failed = exc
            else:
                row.delete()
        if failed is not None:
            attempts = row.attempts + 1
            dead = attempts >= settings.CLOUD_INBOX_MAX_ATTEMPTS
            CloudInbox.objects.filter(pk=row.pk).update(
                attempts=attempts, last_error=f"{type(failed).__name__}: {failed}"[:500], dead=dead
            )
            log.warning(
                "cloud instance %s: webhook delivery %s not taken in (attempt %s%s): %s",
                instance_id, row.pk, attempts, ", set aside" if dead else "", failed,
            )
            if not dead:
                return taken  # the beat offers it again; later deliveries wait behind it


def take_in(owner: Instance, payload: Mapping[str, Any]) -> int:
    """Everything of one webhook delivery (already authenticated for ``owner``).
    A change for another number is handed to the owner's account's instance of that
    number (Meta posts every number of an app to the app's one callback URL), or
    skipped. Returns how many messages and statuses were new."""
    taken = 0
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            if (change or {}).get("field") != "messages":
                continue
            value = change.get("value") or {}
            instance = _target(owner, str((value.get("metadata") or {}).get("phone_number_id") or ""))
            if instance is None:
                continue
            contacts = value.get("contacts") or []
            for message in value.get("messages") or []:
                taken += _message(instance, message, contacts)
            for status in value.get("statuses") or []:
                taken += _status(instance, status)
    return taken


def _target(owner: Instance, phone_number_id: str) -> Instance | None:
    account = CloudAccount.objects.filter(instance_id=owner.pk).first()
    if account is None:
        return None
    if not phone_number_id or phone_number_id == account.phone_number_id:
        return owner
    other = (
        CloudAccount.objects.filter(
            phone_number_id=phone_number_id,
            instance__account_id=owner.account_id,
            instance__is_deleted=False,
            instance__engine="cloud",
        )
        .select_related("instance")
        .first()
    )
    if other is None or other.app_secret != account.app_secret:
        log.info("cloud webhook for %s: change for unknown number %s skipped", owner.pk, phone_number_id)
        return None
    return other.instance


def _sender(instance: Instance, message: Mapping[str, Any], contacts: list[Any]) -> tuple[str, str]:
    """(chatId, profile name) of a message's sender: ``<phone>@c.us`` when Meta tells
    the phone, else the BSUID's ``@lid`` (recorded so replies reach the BSUID)."""
    phone = str(message.get("from") or "")
    bsuid = str(message.get("from_user_id") or "")
    name = ""
    username = ""
    for contact in contacts:
        if not isinstance(contact, dict):
            continue
        if (phone and contact.get("wa_id") == phone) or (bsuid and contact.get("user_id") == bsuid) or len(contacts) == 1:
            profile = contact.get("profile") or {}
            name = str(profile.get("name") or "")
            username = str(profile.get("username") or "")
            phone = phone or str(contact.get("wa_id") or "")
            bsuid = bsuid or str(contact.get("user_id") or "")
    if phone.isdigit():
        return f"{phone}@c.us", name
    if not bsuid:
        raise ValueError("a message without a sender")
    chat_id = lid_for(bsuid)
    CloudUser.objects.get_or_create(
        instance_id=instance.pk, bsuid=bsuid, defaults={"chat_id": chat_id, "username": username[:100]}
    )
    return chat_id, name or username


def _message(instance: Instance, message: Mapping[str, Any], contacts: list[Any]) -> int:
    wamid = str(message.get("id") or "")
    if not wamid:
        return 0
    if CloudMessage.objects.filter(instance_id=instance.pk, wamid=wamid).exists():
        return 0  # Meta delivered it again
    try:
        chat_id, name = _sender(instance, message, contacts)
    except ValueError:
        return 0
    data = message_data(instance, message)
    context = message.get("context") or {}
    if context.get("id") and data["typeMessage"] != "reactionMessage":
        quoted = _quoted(instance, str(context["id"]))
        if quoted is not None:
            data = with_quote(data, quoted)
    id_message = our_id(wamid)
    try:
        with transaction.atomic():
            CloudMessage.objects.create(
                instance_id=instance.pk,
                direction=Direction.INCOMING,
                id_message=id_message,
                wamid=wamid,
                chat_id=chat_id,
            )
            sink.emit(
                instance,
                MessageEvent(
                    direction="incoming",
                    chat_id=chat_id,
                    id_message=id_message,
                    sender=chat_id,
                    message_data=data,
                    timestamp=_when(message.get("timestamp")),
                    sender_name=name,
                    chat_name=name,
                ),
            )
    except IntegrityError:
        return 0  # a concurrent delivery of the same message won
    return 1


def _quoted(instance: Instance, wamid: str) -> dict[str, Any] | None:
    row = CloudMessage.objects.filter(instance_id=instance.pk, wamid=wamid).first()
    if row is None:
        return None
    participant = instance.wid if row.direction == Direction.OUTGOING else row.chat_id
    return {"stanzaId": row.id_message, "participant": participant}


def with_quote(data: dict[str, Any], quoted: dict[str, Any]) -> dict[str, Any]:
    """A reply as GREEN-API shows it: texts become ``quotedMessage``, others carry a
    ``quotedMessage`` object."""
    if data["typeMessage"] != "textMessage":
        return {**data, "quotedMessage": quoted}
    return {
        "typeMessage": "quotedMessage",
        "extendedTextMessageData": {"text": data["textMessageData"]["textMessage"], **quoted},
        "quotedMessage": quoted,
    }


def message_data(instance: Instance, message: Mapping[str, Any]) -> dict[str, Any]:
    """GREEN-API's messageData of one of Meta's messages (API.md §10.4)."""
    kind = str(message.get("type") or "")
    raw = message.get(kind)
    body: Any = raw if isinstance(raw, (dict, list)) else {}
    if kind == "text":
        return {"typeMessage": "textMessage", "textMessageData": {"textMessage": str(body.get("body", ""))}}
    if kind in MEDIA_KINDS:
        return _file(instance, kind, body)
    if kind == "location":
        return {
            "typeMessage": "locationMessage",
            "locationMessageData": {
                "nameLocation": str(body.get("name", "")),
                "address": str(body.get("address", "")),
                "latitude": body.get("latitude"),
                "longitude": body.get("longitude"),
                "jpegThumbnail": "",
            },
        }
    if kind == "contacts":
        cards = [_card(c) for c in body if isinstance(c, dict)] if isinstance(body, list) else []
        if len(cards) == 1:
            return {"typeMessage": "contactMessage", "contactMessageData": cards[0]}
        return {"typeMessage": "contactsArrayMessage", "messageData": {"contacts": cards}}
    if kind == "reaction":
        quoted = _quoted(instance, str(body.get("message_id", ""))) or {"stanzaId": "", "participant": instance.wid}
        return {
            "typeMessage": "reactionMessage",
            "extendedTextMessageData": {"text": str(body.get("emoji") or "")},
            "quotedMessage": quoted,
        }
    if kind == "interactive":
        return _interactive(instance, message, body)
    if kind == "button":
        # A quick-reply button of a template.
        return {
            "typeMessage": "templateButtonsReplyMessage",
            "templateButtonReplyMessage": {
                "stanzaId": _stanza(instance, message),
                "selectedIndex": 0,
                "selectedId": str(body.get("payload", "")),
                "selectedDisplayText": str(body.get("text", "")),
            },
        }
    # order, system, unsupported, …: no GREEN-API type; the text says what it was.
    return {
        "typeMessage": "textMessage",
        "textMessageData": {"textMessage": f"[{kind or 'unknown'} message: not shown by the Cloud API engine]"},
    }


def _stanza(instance: Instance, message: Mapping[str, Any]) -> str:
    context = message.get("context") or {}
    quoted = _quoted(instance, str(context.get("id") or ""))
    return str(quoted["stanzaId"]) if quoted else ""


def _interactive(instance: Instance, message: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    stanza = _stanza(instance, message)
    if body.get("type") == "list_reply":
        reply = body.get("list_reply") or {}
        return {
            "typeMessage": "listResponseMessage",
            "listResponseMessage": {
                "stanzaId": stanza,
                "title": str(reply.get("title", "")),
                "listType": 1,
                "singleSelectReply": str(reply.get("id", "")),
            },
        }
    reply = body.get("button_reply") or {}
    return {
        "typeMessage": "buttonsResponseMessage",
        "buttonsResponseMessage": {
            "stanzaId": stanza,
            "selectedButtonId": str(reply.get("id", "")),
            "selectedButtonText": str(reply.get("title", "")),
        },
    }


def _card(contact: Mapping[str, Any]) -> dict[str, str]:
    name = str((contact.get("name") or {}).get("formatted_name") or "")
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{name}"]
    for index, phone in enumerate(contact.get("phones") or [], start=1):
        number = str(phone.get("phone") or "")
        wa_id = str(phone.get("wa_id") or "")
        lines.append(f"item{index}.TEL;waid={wa_id}:{number}" if wa_id else f"item{index}.TEL:{number}")
    lines.append("END:VCARD")
    return {"displayName": name, "vcard": "\n".join(lines)}


def _file(instance: Instance, kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A received file: fetched from Graph (``GET /{media_id}``, then its URL with the
    bearer token) and stored like an upload, so downloadFile and downloadUrl serve it.
    A file that cannot be fetched still arrives, with an empty downloadUrl."""
    mime = str(body.get("mime_type") or "")
    file_name = str(body.get("filename") or "")
    url = ""
    try:
        stored = fetch_media(instance, str(body.get("id") or ""), file_name, mime)
        url, mime, file_name = stored.url, stored.mime_type, stored.file_name
    except (graph.GraphError, media.MediaUnavailable) as exc:
        log.warning("cloud instance %s: media %s not fetched: %s", instance.pk, body.get("id"), exc)
    return {
        "typeMessage": MEDIA_KINDS[kind],
        "fileMessageData": {
            "downloadUrl": url,
            "caption": str(body.get("caption") or ""),
            "fileName": file_name,
            "jpegThumbnail": "",
            "mimeType": mime,
            "isAnimated": bool(body.get("animated", False)),
        },
    }


def fetch_media(instance: Instance, media_id: str, file_name: str, mime: str) -> media.StoredMedia:
    account = CloudAccount.objects.get(instance_id=instance.pk)
    info = graph.call("GET", media_id, account.access_token)
    content, content_type = graph.download(str(info.get("url") or ""), account.access_token, limit=int(settings.MEDIA_MAX_BYTES))
    return media.store(
        instance_id=instance.pk,
        content=content,
        file_name=file_name or media_id,
        mime_hints=(str(info.get("mime_type") or "") or None, mime or None, content_type.split(";")[0] or None),
    )


def _status(instance: Instance, status: Mapping[str, Any]) -> int:
    """A status of one of our messages: delivered / read move it on, failed records
    Meta's code and title; ``sent`` adds nothing (the worker recorded it)."""
    kind = str(status.get("status") or "")
    if kind not in ("delivered", "read", "failed"):
        return 0
    id_message = (
        CloudMessage.objects.filter(
            instance_id=instance.pk, direction=Direction.OUTGOING, wamid=str(status.get("id") or "")
        )
        .values_list("id_message", flat=True)
        .first()
    )
    if id_message is None:
        return 0
    description = ""
    if kind == "failed":
        errors = [e for e in status.get("errors") or [] if isinstance(e, dict)]
        description = "; ".join(_error_text(e) for e in errors) or "Meta reported the message failed"
    with transaction.atomic():
        sink.emit(
            instance,
            ReceiptEvent(id_message=id_message, status=kind, timestamp=_when(status.get("timestamp")), description=description),  # type: ignore[arg-type]
        )
    return 1


def _error_text(error: Mapping[str, Any]) -> str:
    code = error.get("code")
    title = str(error.get("title") or error.get("message") or "")
    details = str((error.get("error_data") or {}).get("details") or "")
    text = f"({code}) {title}"
    if code == graph.WINDOW_CLOSED:
        text += ": more than 24 hours since this user last wrote; only an approved template reaches them (sendTemplate)"
    elif details:
        text += f": {details}"
    return text
