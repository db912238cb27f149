"""The cloud engine's ``Transport``: sends through Meta's Graph API with httpx.

Workers call ``send_messages`` with the drain's batches (engines.contract). Each
message is looked up in the wamid map first (a retry of an idMessage Meta already
took sends nothing), kept within the number's throughput and the per-user pacing,
then posted to ``/{phone_number_id}/messages``; Meta's id goes into the map. What the
Cloud API cannot do raises ``NotSupportedYet`` (the HTTP layer refuses those methods
first, from the spec's capabilities)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from engines import media
from engines.cloud import graph
from engines.cloud.models import CloudAccount, CloudMessage, CloudUser, Direction
from engines.contract import (
    STATUS_BROADCAST,
    Avatar,
    CallStatus,
    Contact,
    DeviceInfo,
    GroupData,
    NotSupportedYet,
    OutgoingPayload,
    PeerInfo,
    Profile,
    QrCode,
    SendResult,
    Transport,
    TransportError,
    WhatsappCheck,
)
from instances.models import Instance

ENGINE = "cloud"
# Meta's media types (others go as documents).
IMAGE_TYPES = {"image/jpeg", "image/png"}
VIDEO_TYPES = {"video/mp4", "video/3gpp"}
AUDIO_TYPES = {"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}
STICKER_TYPES = {"image/webp"}

# Seconds and sleeping, injectable so the throughput cap is tested without waiting.
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep


class NotPossible(Exception):
    """This message cannot be sent through the Cloud API (its result is ``failed``)."""


def window_text(error: graph.GraphError) -> str:
    return (
        f"{error}: more than 24 hours passed since this user last wrote, so Meta only delivers an approved "
        "template now (sendTemplate)"
    )


class CloudTransport:
    """One cloud instance's Graph API, as web and worker processes see it."""

    engine = ENGINE

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self._account: CloudAccount | None = None
        # Monotonic times of this number's recent sends (the throughput window).
        self._recent: deque[float] = deque()

    # --- Credentials ------------------------------------------------------------------

    @property
    def account(self) -> CloudAccount:
        if self._account is None:
            self._account = CloudAccount.objects.filter(instance_id=self.instance.pk).first()
            if self._account is None or not self._account.access_token:
                raise TransportError("this cloud instance has no readable credentials: enter them again", permanent=True)
        return self._account

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return graph.call(method, path, self.account.access_token, **kwargs)

    # --- Sending ------------------------------------------------------------------------

    def send_message(self, payload: OutgoingPayload) -> SendResult:
        result = self.send_messages([payload])[0]
        if isinstance(result, TransportError):
            raise result
        return result

    def send_messages(self, payloads: Sequence[OutgoingPayload]) -> list[SendResult | TransportError]:
        if any(p.chat_id == STATUS_BROADCAST for p in payloads):
            # The status methods are outside the spec, so the wire refuses them first;
            # a status reaching here is a caller's bug, refused before anything is sent.
            raise NotSupportedYet("sendTextStatus", ENGINE)
        results: list[SendResult | TransportError] = []
        self._prime_window()
        for payload in payloads:
            try:
                result = self._send_one(payload)
            except TransportError as exc:
                results.append(exc)
                if not exc.permanent:
                    break
                continue
            results.append(result)
        return results

    def _send_one(self, payload: OutgoingPayload) -> SendResult:
        if not payload.first_attempt and self._already_sent(payload.id_message):
            return SendResult("sent")  # Meta took it before a crash: never twice
        try:
            address, to = self._address(payload.chat_id)
            body = self._body(payload)
        except NotPossible as exc:
            return SendResult("failed", str(exc))
        self._pace(to)
        self._throttle()
        try:
            answer = self._call("POST", f"{self.account.phone_number_id}/messages", json={
                "messaging_product": "whatsapp", "recipient_type": "individual", **address, **body,
            })
        except graph.GraphError as exc:
            self._recent.append(clock())
            if exc.code == graph.WINDOW_CLOSED:
                return SendResult("failed", window_text(exc))
            if exc.transient:
                raise TransportError(f"Cloud API: {exc}") from exc
            return SendResult("failed", f"Cloud API: {exc}")
        self._recent.append(clock())
        messages = answer.get("messages") or [{}]
        wamid = str(messages[0].get("id") or "")
        if wamid:
            try:
                CloudMessage.objects.create(
                    instance_id=self.instance.pk,
                    direction=Direction.OUTGOING,
                    id_message=payload.id_message,
                    wamid=wamid,
                    chat_id=payload.chat_id,
                    to=to,
                )
            except IntegrityError:
                pass  # recorded by an earlier attempt
        return SendResult("sent")

    def _already_sent(self, id_message: str) -> bool:
        return CloudMessage.objects.filter(
            instance_id=self.instance.pk, direction=Direction.OUTGOING, id_message=id_message
        ).exists()

    def _address(self, chat_id: str) -> tuple[dict[str, str], str]:
        """Meta's address fields for a chat: ``to`` (digits) for a phone, ``recipient``
        (the BSUID) for a user known only by one."""
        user, _, server = chat_id.partition("@")
        if server == "c.us" and user.isdigit():
            return {"to": user}, user
        if server == "lid":
            bsuid = (
                CloudUser.objects.filter(instance_id=self.instance.pk, chat_id=chat_id)
                .values_list("bsuid", flat=True)
                .first()
            )
            if bsuid:
                return {"recipient": bsuid}, bsuid
            raise NotPossible(f"{chat_id} is not a user who wrote to this number (no business-scoped id known)")
        if server == "g.us":
            raise NotPossible("the cloud engine does not send to groups")
        raise NotPossible(f"the Cloud API cannot address {chat_id}")

    # --- Meta's limits, kept before Meta refuses ---------------------------------------

    def _pace(self, to: str) -> None:
        """About one message every CLOUD_API_RECIPIENT_INTERVAL_SECONDS to one user
        (Meta: 131056). A message due sooner goes back to the queue head (a transient
        error), so its order and the others' are kept."""
        interval = float(settings.CLOUD_API_RECIPIENT_INTERVAL_SECONDS)
        if interval <= 0:
            return
        last = (
            CloudMessage.objects.filter(instance_id=self.instance.pk, direction=Direction.OUTGOING, to=to)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if last is None:
            return
        wait = (last + timedelta(seconds=interval) - timezone.now()).total_seconds()
        if wait > 0:
            raise TransportError(
                f"paced: the last message to {to} left {interval - wait:.1f} s ago; Meta allows about one every "
                f"{interval:g} s to the same user (131056), so this one waits {wait:.1f} s"
            )

    def _prime_window(self) -> None:
        """Seed the throughput window with what this number sent in the last second
        (another worker, an earlier batch): the drain lock makes this worker the only
        sender of the instance now."""
        since = timezone.now() - timedelta(seconds=1)
        now = clock()
        self._recent = deque(
            now - (timezone.now() - created).total_seconds()
            for created in CloudMessage.objects.filter(
                instance_id=self.instance.pk, direction=Direction.OUTGOING, created_at__gte=since
            )
            .order_by("created_at")
            .values_list("created_at", flat=True)
        )

    def _throttle(self) -> None:
        """At most CLOUD_API_MESSAGES_PER_SECOND sends in any second (Meta: 130429):
        a send that would exceed it waits until the oldest of the window was answered
        a second ago. Sends are counted when Meta's answer came back, and a request
        reaches Meta between its start and its answer, so no second at Meta's end
        sees more than the cap either."""
        cap = int(settings.CLOUD_API_MESSAGES_PER_SECOND)
        if cap <= 0:
            return
        now = clock()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= cap:
            sleep(max(0.0, self._recent[-cap] + 1.0 - now))
            now = clock()
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()

    # --- Bodies ---------------------------------------------------------------------------

    def _body(self, payload: OutgoingPayload) -> dict[str, Any]:
        data = payload.data
        kind = payload.type_message
        body: dict[str, Any]
        if kind in ("textMessage", "extendedTextMessage"):
            text = str(data.get("message", ""))
            body = {"type": "text", "text": {"body": text, "preview_url": bool(data.get("linkPreview", False))}}
        elif kind in ("imageMessage", "videoMessage", "audioMessage", "documentMessage", "stickerMessage"):
            body = self._media_body(data)
        elif kind == "locationMessage":
            body = {"type": "location", "location": {
                "latitude": data.get("latitude"), "longitude": data.get("longitude"),
                "name": data.get("nameLocation", ""), "address": data.get("address", ""),
            }}
        elif kind == "contactMessage":
            card: Any = data.get("contact") or {}
            body = {"type": "contacts", "contacts": [contact_card(card)]}
        elif kind in ("interactiveButtonsReply", "buttonsMessage"):
            body = {"type": "interactive", "interactive": reply_buttons(data)}
        elif kind == "listMessage":
            body = {"type": "interactive", "interactive": list_message(data)}
        elif kind == "templateMessage" and "name" in data:
            body = {"type": "template", "template": template(data)}
        elif kind == "reactionMessage":
            wamid = self._wamid(str(data.get("messageId", "")))
            if wamid is None:
                raise NotPossible(f"message {data.get('messageId')} is not known to this instance")
            return {"type": "reaction", "reaction": {"message_id": wamid, "emoji": str(data.get("reaction", ""))}}
        else:
            raise NotPossible(f"the Cloud API cannot send a {kind}")
        quoted = str(data.get("quotedMessageId") or "")
        if quoted:
            wamid = self._wamid(quoted)
            if wamid is not None:
                body["context"] = {"message_id": wamid}
        return body

    def _wamid(self, id_message: str) -> str | None:
        return (
            CloudMessage.objects.filter(instance_id=self.instance.pk, id_message=id_message)
            .values_list("wamid", flat=True)
            .first()
        )

    def _media_body(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A stored file, uploaded to Meta (``POST /{phone_number_id}/media``) and sent
        by its media id; a sendFileByUrl file is sent by its public link instead, which
        Meta fetches itself."""
        mime = str(data.get("mimeType") or "application/octet-stream").split(";")[0].strip().lower()
        kind = media_kind(mime)
        fields: dict[str, Any] = {}
        source = str(data.get("sourceUrl") or "")
        if source.startswith("https://"):
            fields["link"] = source
        else:
            try:
                stored, content = media.read(str(data.get("urlFile") or ""))
            except media.MediaUnavailable as exc:
                raise NotPossible(str(exc)) from exc
            try:
                uploaded = self._call(
                    "POST",
                    f"{self.account.phone_number_id}/media",
                    data={"messaging_product": "whatsapp", "type": mime},
                    files={"file": (stored.file_name or "file", content, mime)},
                )
            except graph.GraphError as exc:
                if exc.transient:
                    raise TransportError(f"Cloud API media upload: {exc}") from exc
                raise NotPossible(f"Cloud API media upload: {exc}") from exc
            fields["id"] = str(uploaded.get("id", ""))
        caption = str(data.get("caption") or "")
        if caption and kind in ("image", "video", "document"):
            fields["caption"] = caption
        if kind == "document":
            fields["filename"] = str(data.get("fileName") or "file")
        return {"type": kind, kind: fields}

    # --- Read marks -------------------------------------------------------------------

    def read_chat(self, *, chat_id: str) -> None:
        """Meta marks a received message and everything before it read: the chat's
        newest received message is enough."""
        wamid = (
            CloudMessage.objects.filter(instance_id=self.instance.pk, chat_id=chat_id, direction=Direction.INCOMING)
            .order_by("-created_at", "-id")
            .values_list("wamid", flat=True)
            .first()
        )
        if wamid:
            self._mark_read(wamid)

    def read_chat_until(self, *, chat_id: str, id_message: str) -> None:
        wamid = self._wamid(id_message)
        if wamid:
            self._mark_read(wamid)

    def _mark_read(self, wamid: str) -> None:
        try:
            self._call("POST", f"{self.account.phone_number_id}/messages", json={
                "messaging_product": "whatsapp", "status": "read", "message_id": wamid,
            })
        except graph.GraphError as exc:
            raise TransportError(f"Cloud API: {exc}", permanent=not exc.transient) from exc

    # --- Account --------------------------------------------------------------------

    def reboot(self) -> None:
        """Drop this thread's Graph connections; ``services.connect`` checks the
        credentials again."""
        graph.close()

    def profile(self, *, phone: str) -> Profile | None:
        raise NotSupportedYet("getWaSettings", ENGINE)

    def device_info(self, *, phone: str) -> DeviceInfo | None:
        raise NotSupportedYet("getDeviceInfo", ENGINE)

    def logout(self, *, phone: str) -> bool:
        raise NotSupportedYet("logout", ENGINE)

    def current_qr(self) -> QrCode:
        raise NotSupportedYet("qr", ENGINE)

    def request_pairing_code(self, *, phone: str) -> str:
        raise NotSupportedYet("getAuthorizationCode", ENGINE)

    def start_registration(self, *, phone: str, method: str) -> str:
        raise NotSupportedYet("startAuthorization", ENGINE)

    def complete_registration(self, *, phone: str) -> None:
        raise NotSupportedYet("sendAuthorizationCode", ENGINE)

    def set_profile_picture(self, *, phone: str, data: bytes) -> str:
        raise NotSupportedYet("setProfilePicture", ENGINE)

    def send_presence(self, *, chat_id: str, milliseconds: int, recording: bool) -> None:
        raise NotSupportedYet("sendTyping", ENGINE)

    # --- Calls ---------------------------------------------------------------------

    def call_status(self) -> CallStatus:
        raise NotSupportedYet("callsState", ENGINE)

    def call_dial(self, *, phone: str) -> CallStatus:
        raise NotSupportedYet("callsDial", ENGINE)

    def call_accept(self) -> CallStatus:
        raise NotSupportedYet("callsAccept", ENGINE)

    def call_reject(self) -> CallStatus:
        raise NotSupportedYet("callsReject", ENGINE)

    def call_hang_up(self) -> CallStatus:
        raise NotSupportedYet("callsHangUp", ENGINE)

    def call_answer_offer(self, *, offer: Mapping[str, object]) -> dict[str, str] | None:
        raise NotSupportedYet("callsRtc", ENGINE)

    # --- Chats, contacts, message changes: not in the Cloud API ---------------------

    def check_whatsapp(self, *, chat_id: str) -> WhatsappCheck:
        raise NotSupportedYet("checkWhatsapp", ENGINE)

    def get_avatar(self, *, chat_id: str) -> Avatar:
        raise NotSupportedYet("getAvatar", ENGINE)

    def contact_info(self, *, chat_id: str) -> PeerInfo | None:
        raise NotSupportedYet("getContactInfo", ENGINE)

    def contacts(self) -> list[Contact]:
        raise NotSupportedYet("getContacts", ENGINE)

    def save_contact(self, *, chat_id: str, name: str, in_addressbook: bool = True) -> bool:
        raise NotSupportedYet("addContact", ENGINE)

    def delete_contact(self, *, chat_id: str) -> bool:
        raise NotSupportedYet("deleteContact", ENGINE)

    def delete_message(self, *, chat_id: str, id_message: str) -> str:
        raise NotSupportedYet("deleteMessage", ENGINE)

    def edit_message(self, *, chat_id: str, id_message: str, text: str) -> str:
        raise NotSupportedYet("editMessage", ENGINE)

    def archive_chat(self, *, chat_id: str, archived: bool) -> None:
        raise NotSupportedYet("archiveChat", ENGINE)

    def set_disappearing(self, *, chat_id: str, expiration: int) -> None:
        raise NotSupportedYet("setDisappearingChat", ENGINE)

    # --- Groups and statuses: not in the Cloud API as Relay drives it ----------------

    def create_group(self, *, name: str, participants: Sequence[str]) -> GroupData:
        raise NotSupportedYet("createGroup", ENGINE)

    def group_data(self, *, group_id: str) -> GroupData:
        raise NotSupportedYet("getGroupData", ENGINE)

    def update_group_name(self, *, group_id: str, name: str) -> None:
        raise NotSupportedYet("updateGroupName", ENGINE)

    def add_group_participant(self, *, group_id: str, participant: str) -> None:
        raise NotSupportedYet("addGroupParticipant", ENGINE)

    def remove_group_participant(self, *, group_id: str, participant: str) -> None:
        raise NotSupportedYet("removeGroupParticipant", ENGINE)

    def set_group_admin(self, *, group_id: str, participant: str, admin: bool) -> None:
        raise NotSupportedYet("setGroupAdmin", ENGINE)

    def set_group_picture(self, *, group_id: str, data: bytes) -> str:
        raise NotSupportedYet("setGroupPicture", ENGINE)

    def leave_group(self, *, group_id: str) -> None:
        raise NotSupportedYet("leaveGroup", ENGINE)

    def update_group_settings(
        self, *, group_id: str, only_admins_send: bool | None, only_admins_edit: bool | None
    ) -> None:
        raise NotSupportedYet("updateGroupSettings", ENGINE)

    def delete_status(self, *, id_message: str) -> bool:
        raise NotSupportedYet("deleteStatus", ENGINE)


# --- Meta's shapes of GREEN-API payloads ----------------------------------------------


def media_kind(mime: str) -> str:
    if mime in IMAGE_TYPES:
        return "image"
    if mime in VIDEO_TYPES:
        return "video"
    if mime in AUDIO_TYPES:
        return "audio"
    if mime in STICKER_TYPES:
        return "sticker"
    return "document"


def contact_card(contact: Mapping[str, Any]) -> dict[str, Any]:
    first, middle, last = (str(contact.get(k) or "") for k in ("firstName", "middleName", "lastName"))
    company = str(contact.get("company") or "")
    phone = str(contact.get("phoneContact") or "")
    name: dict[str, str] = {"formatted_name": " ".join(p for p in (first, middle, last) if p) or company}
    for key, value in (("first_name", first), ("middle_name", middle), ("last_name", last)):
        if value:
            name[key] = value
    card: dict[str, Any] = {"name": name, "phones": [{"phone": f"+{phone}", "wa_id": phone, "type": "CELL"}]}
    if company:
        card["org"] = {"company": company}
    return card


def _frame(data: Mapping[str, Any], body_key: str, header_key: str = "header") -> dict[str, Any]:
    frame: dict[str, Any] = {"body": {"text": str(data.get(body_key) or "")}}
    if data.get(header_key):
        frame["header"] = {"type": "text", "text": str(data[header_key])}
    if data.get("footer"):
        frame["footer"] = {"text": str(data["footer"])}
    return frame


def reply_buttons(data: Mapping[str, Any]) -> dict[str, Any]:
    """sendInteractiveButtonsReply / sendButtons: up to three quick-reply buttons."""
    body_key = "body" if "body" in data else "message"
    buttons = [
        {"type": "reply", "reply": {"id": str(b.get("buttonId", "")), "title": str(b.get("buttonText", ""))}}
        for b in data.get("buttons") or []
    ]
    return {"type": "button", **_frame(data, body_key), "action": {"buttons": buttons}}


def list_message(data: Mapping[str, Any]) -> dict[str, Any]:
    sections = []
    for section in data.get("sections") or []:
        rows = [
            {k: v for k, v in (("id", r.get("rowId", "")), ("title", r.get("title", "")), ("description", r.get("description", ""))) if v}
            for r in section.get("rows") or []
        ]
        entry: dict[str, Any] = {"rows": rows}
        if section.get("title"):
            entry["title"] = section["title"]
        sections.append(entry)
    return {
        "type": "list",
        **_frame(data, "message", "title"),
        "action": {"button": str(data.get("buttonText") or ""), "sections": sections},
    }


def template(data: Mapping[str, Any]) -> dict[str, Any]:
    """sendTemplate: Meta's ``components`` as given, or GREEN-API's ``params`` as
    the body's text parameters."""
    out: dict[str, Any] = {"name": data["name"], "language": {"code": data.get("languageCode", "en_US")}}
    components = data.get("components")
    if components:
        out["components"] = components
    elif data.get("params"):
        out["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": str(p.get("default", ""))} for p in data["params"]]}
        ]
    return out


if TYPE_CHECKING:

    def _conforms(instance: Instance) -> Transport:
        return CloudTransport(instance)  # mypy checks the class against the whole contract
