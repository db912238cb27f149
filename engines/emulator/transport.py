"""The emulator engine: a simulated WhatsApp network stored in the database.

Every process sees the same world (``EmuPhone``, ``EmuContact``). An emulated
instance pairs when its QR code (a real, rotating code) is "scanned" with a phone
number through the control API, or when its pairing code is confirmed. The network
tables are the emulator's I/O; our domain models are written by services only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

import segno
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Max, Q
from django.utils import timezone
from PIL import Image, ImageDraw

from engines.contract import (
    Avatar,
    CallError,
    CallStatus,
    Contact,
    DeviceInfo,
    GroupData,
    GroupParticipant,
    GroupRefused,
    OutgoingPayload,
    PeerInfo,
    Profile,
    QrCode,
    SendResult,
    Transport,
    TransportError,
    WhatsappCheck,
)
from engines.emulator import calls as emulator_calls
from engines.emulator import groups as emulator_groups
from engines.emulator.disappearing import set_timer
from engines.emulator.groups import GroupError, group_view
from engines.emulator.messages import emulator_send, emulator_send_many, emulator_send_senders
from engines.emulator.models import (
    EmuContact,
    EmuMessage,
    EmuMute,
    EmuPhone,
    EmuPresence,
    EmuSession,
    PresenceKind,
)
from engines.emulator.network import jpeg_thumbnail as jpeg_thumbnail  # re-exported: api, sandbox
from engines.emulator.network import lid_for as lid_for  # re-exported: callers of the transport's helpers
from engines.emulator.network import lids_for as lids_for
from engines.emulator.network import phones_of_lids as phones_of_lids
from engines.emulator.network import show_presence
from engines.emulator.pairing import link_phone
from engines.emulator.phones import PhoneClaimed, check_may_act_as
from engines.emulator.phones import ensure_phone as ensure_phone  # re-exported: seeding, tests
from engines.emulator.session import read_receipts
from engines.emulator.status_posts import delete_status
from engines.shapes import TEXT_TYPES, typing_ms
from instances.models import Instance, State
from instances.services import ServiceError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from engines.emulator.groups import GroupView

PAIRING_ALPHABET = "ABCDEFGHJKLMNPQRSTVWXYZ123456789"
QR_PREFIX = "relay-emu"


def qr_window(now: float | None = None) -> int:
    return int((now if now is not None else time.time()) // settings.EMULATOR_QR_ROTATE_SECONDS)


def qr_text(instance_id: int, qr_secret: str, window: int) -> str:
    """What the emulator's QR code encodes: instance, rotation window and a MAC."""
    mac = hmac.new(qr_secret.encode(), f"{instance_id}:{window}".encode(), hashlib.sha256)
    return f"{QR_PREFIX}:{instance_id}:{window}:{mac.hexdigest()[:24]}"


def verify_qr(instance: Instance, text: str, now: float | None = None) -> bool:
    """True if ``text`` is this instance's current (or just rotated-out) QR code."""
    current = qr_window(now)
    return any(
        hmac.compare_digest(text, qr_text(instance.id, instance.qr_secret, w))
        for w in (current, current - 1)
    )


def render_qr_png(text: str) -> str:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=6, border=2)
    return base64.b64encode(buf.getvalue()).decode()


def new_pairing_code() -> str:
    return "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(8))


def absolute_url(path: str) -> str:
    if path.startswith(("http://", "https://")):
        return path
    return settings.RELAY_MEDIA_URL.rstrip("/") + "/" + path.lstrip("/")


def avatar_url(phone: EmuPhone) -> str:
    """The picture of an emulated phone: the one set, or a generated one."""
    if phone.avatar:
        return absolute_url(default_storage.url(phone.avatar))
    return absolute_url(f"/api/v1/emulator/avatars/{phone.phone}.png")


def generated_avatar_png(phone: str, name: str) -> bytes:
    """A deterministic avatar: a coloured disc with the contact's initials."""
    hue = int(hashlib.sha256(phone.encode()).hexdigest()[:6], 16)
    colour = (64 + hue % 160, 64 + (hue >> 8) % 160, 64 + (hue >> 16) % 160)
    img = Image.new("RGB", (256, 256), (245, 245, 245))
    draw = ImageDraw.Draw(img)
    draw.ellipse((8, 8, 248, 248), fill=colour)
    initials = "".join(w[0] for w in name.split()[:2]).upper() or phone[-2:]
    draw.text((128, 128), initials, fill=(255, 255, 255), anchor="mm", font_size=96)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def group_picture_url(group: GroupView) -> str:
    return absolute_url(default_storage.url(group.picture)) if group.picture else ""


def group_data(group: GroupView) -> GroupData:
    """An emulated group in the transport contract's shape."""
    return GroupData(
        group_id=group.group_id,
        owner=f"{group.owner}@c.us",
        subject=group.subject,
        creation=group.creation,
        subject_time=group.subject_time,
        subject_owner=f"{group.subject_owner}@c.us",
        participants=tuple(
            GroupParticipant(f"{m.phone}@c.us", m.is_admin, m.is_super_admin) for m in group.members
        ),
        invite_link=group.invite_link,
        picture_url=group_picture_url(group),
        only_admins_send=group.only_admins_send,
        only_admins_edit=group.only_admins_edit,
    )


@contextmanager
def _refusals() -> Iterator[None]:
    """The network's refusals as the contract's."""
    try:
        yield
    except GroupError as exc:
        raise GroupRefused(exc.reason, str(exc)) from exc


def presences_seen_by(phone: str, now: datetime | None = None) -> list[EmuPresence]:
    """What ``phone`` sees now: peers typing or recording in their personal chat
    with it, and its contacts that show themselves online. Oldest first."""

    moment = now or timezone.now()
    contacts = EmuContact.objects.filter(owner__phone=phone).values_list("contact__phone", flat=True)
    rows = EmuPresence.objects.filter(started_at__lte=moment, until__gte=moment).filter(
        Q(chat_id=f"{phone}@c.us") | Q(kind=PresenceKind.AVAILABLE, phone__in=contacts)
    )
    return list(rows.exclude(phone=phone).order_by("started_at", "id"))


def last_seen(phone: str, now: datetime | None = None) -> int | None:
    """When ``phone`` was last online on the network (unix seconds): now while it
    shows itself online, else the end of its last online spell; None if never."""

    moment = now or timezone.now()
    online = EmuPresence.objects.filter(phone=phone, kind=PresenceKind.AVAILABLE, started_at__lte=moment)
    latest = online.aggregate(latest=Max("until"))["latest"]
    if latest is None:
        return None
    return int(min(latest, moment).timestamp())


class EmulatorTransport:
    """The emulator seen from web and worker processes."""

    engine = "emulator"

    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    def current_qr(self) -> QrCode:
        window = qr_window()
        text = qr_text(self.instance.id, self.instance.qr_secret, window)
        return QrCode(text=text, png_base64=render_qr_png(text), window=window)

    def request_pairing_code(self, *, phone: str) -> str:
        self._check_phone_free(phone)
        ensure_phone(phone)
        return new_pairing_code()

    def start_registration(self, *, phone: str, method: str) -> str:
        self._check_phone_free(phone)
        ensure_phone(phone)
        return f"{secrets.randbelow(1_000_000):06d}"

    def complete_registration(self, *, phone: str) -> None:
        fresh = Instance.objects.get(pk=self.instance.pk)
        fresh.state = State.NOT_AUTHORIZED  # link_phone accepts pendingCode too
        try:
            link_phone(fresh, phone=phone)
        except ServiceError as exc:
            raise TransportError(str(exc), permanent=True) from exc

    def _check_phone_free(self, phone: str) -> None:
        """A code for another tenant's number is refused before it is issued (the
        emulator shows the code to whoever asked); linking checks again."""
        try:
            check_may_act_as(phone, self.instance.account_id)
        except PhoneClaimed as exc:
            raise TransportError(str(exc), permanent=True) from exc

    def logout(self, *, phone: str) -> bool:
        """The emulated phone forgets this linked device: True when the instance was
        linked to an account on the network."""
        return bool(phone) and EmuPhone.objects.filter(phone=phone).exists()

    def reboot(self) -> None:
        return None  # the session runner re-opens the emulated connection

    def set_profile_picture(self, *, phone: str, data: bytes) -> str:
        account = ensure_phone(phone)
        name = default_storage.save(f"avatars/{phone}-{secrets.token_hex(4)}.jpg", ContentFile(jpeg_thumbnail(data)))
        old = account.avatar
        account.avatar = name
        account.save(update_fields=["avatar"])
        if old:
            default_storage.delete(old)
        return avatar_url(account)

    def send_presence(self, *, chat_id: str, milliseconds: int, recording: bool) -> None:
        """Put 'typing…'/'recording…' on the network for the chat's other side."""
        show_presence(
            self.instance.phone,
            chat_id=self._network_chat(chat_id),
            kind=PresenceKind.RECORDING if recording else PresenceKind.TYPING,
            milliseconds=milliseconds,
        )

    def read_chat(self, *, chat_id: str) -> None:
        peer = self._peer_phone(chat_id)
        if peer and self.instance.phone:
            read_receipts(self.instance.phone, peer)

    def _call_phone(self) -> str:
        if not self.instance.phone:
            raise CallError("instance is starting or not authorized")
        return self.instance.phone

    def call_status(self) -> CallStatus:
        return emulator_calls.status(self._call_phone())

    def call_dial(self, *, phone: str) -> CallStatus:
        emulator_calls.dial(self._call_phone(), phone)
        return self.call_status()

    def call_accept(self) -> CallStatus:
        emulator_calls.accept(self._call_phone())
        return self.call_status()

    def call_reject(self) -> CallStatus:
        emulator_calls.reject(self._call_phone())
        return self.call_status()

    def call_hang_up(self) -> CallStatus:
        emulator_calls.hang_up(self._call_phone())
        return self.call_status()

    def call_answer_offer(self, *, offer: Mapping[str, object]) -> dict[str, str] | None:
        call = emulator_calls.current(self._call_phone())
        if call is None:
            raise CallError("there is no call to negotiate")
        peer = call.callee if call.caller == self.instance.phone else call.caller
        if not emulator_calls.is_simulated(peer):
            return None
        return emulator_calls.answer_sdp(offer)

    def typed_payloads(self, payloads: Sequence[OutgoingPayload]) -> list[OutgoingPayload]:
        """autoTyping: a text without its own typingTime is typed for a time its
        length gives (``engines.shapes.typing_ms``); typingTime wins (API.md §3).
        The emulator types while it sends (``EngineSpec.types_in_queue`` is off)."""
        level = int(self.instance.setting("autoTyping") or 0)
        if level <= 0:
            return list(payloads)
        return [
            replace(p, data={**p.data, "typingTime": typing_ms(p.type_message, dict(p.data), level)})
            if p.type_message in TEXT_TYPES and not p.data.get("typingTime")
            else p
            for p in payloads
        ]

    def send_message(self, payload: OutgoingPayload) -> SendResult:
        [typed] = self.typed_payloads([payload])
        return emulator_send(sender_phone=self.instance.phone, via_instance=self.instance.id, payload=typed)

    def send_messages(self, payloads: Sequence[OutgoingPayload]) -> list[SendResult | TransportError]:
        typed = self.typed_payloads(payloads)
        return list(emulator_send_many(sender_phone=self.instance.phone, via_instance=self.instance.id, payloads=typed))

    @classmethod
    def send_messages_of_many(
        cls, batches: Sequence[tuple[EmulatorTransport, Sequence[OutgoingPayload]]]
    ) -> list[list[SendResult | TransportError]]:
        """``send_messages`` for several instances at once (base.send_for_instances)."""
        sent = emulator_send_senders([(t.instance.phone, t.instance.id, t.typed_payloads(payloads)) for t, payloads in batches])
        return [list(results) for results in sent]

    def profile(self, *, phone: str) -> Profile | None:
        account = EmuPhone.objects.filter(phone=phone).first()
        if account is None:
            return None
        return Profile(
            phone=phone,
            name=account.name,
            avatar_url=avatar_url(account),
            lid=lid_for(phone),
            device_id=f"{phone}:{(self.instance.id % 90) + 10}@s.whatsapp.net",
            history_sync_progress=self._sync_progress(phone),
        )

    def _sync_progress(self, phone: str) -> int:
        """Share of the phone's network messages up to now this device has taken
        in: 100 once its session caught up (it starts behind after pairing with
        enableMessagesHistory, or after being offline)."""

        cursor = EmuSession.objects.filter(instance_id=self.instance.pk).values_list("cursor", flat=True).first() or 0
        mine = EmuMessage.objects.filter(Q(recipient=phone) | Q(sender=phone))
        pending = mine.filter(id__gt=cursor).count()
        if not pending:
            return 100
        taken = mine.filter(id__lte=cursor).count()
        return min(99, 100 * taken // (taken + pending))

    def device_info(self, *, phone: str) -> DeviceInfo | None:
        account = EmuPhone.objects.filter(phone=phone).first()
        if account is None:
            return None
        return DeviceInfo(
            platform=account.platform,
            manufacturer=account.device_manufacturer,
            model=account.device_model,
            os_version=account.os_version,
            wa_version=account.wa_version,
            battery=account.battery,
        )

    # --- Chats, contacts and message changes ------------------------------------------

    def _peer_phone(self, chat_id: str) -> str:
        """The phone of a personal chat, named by ``@c.us`` or by a ``@lid`` the
        network showed (enableLidMode chats); "" for anything else."""
        if chat_id.endswith("@lid"):
            return phones_of_lids([chat_id]).get(chat_id, "")
        return chat_id.split("@", 1)[0] if chat_id.endswith("@c.us") else ""

    def _network_chat(self, chat_id: str) -> str:
        """The network addresses personal chats by phone: a known ``@lid`` becomes
        the phone's ``@c.us`` id; other ids stay as they are."""
        phone = self._peer_phone(chat_id) if chat_id.endswith("@lid") else ""
        return f"{phone}@c.us" if phone else chat_id

    def _account(self, chat_id: str) -> EmuPhone | None:
        phone = self._peer_phone(chat_id)
        return EmuPhone.objects.filter(phone=phone, registered=True).first() if phone else None

    def read_chat_until(self, *, chat_id: str, id_message: str) -> None:

        own, peer = self.instance.phone, self._peer_phone(chat_id)
        if not own or not peer:
            return
        bound = (
            EmuMessage.objects.filter(id_message=id_message)
            .filter(Q(sender=peer, recipient=own) | Q(sender=own, recipient=peer))
            .values_list("pk", flat=True)
            .first()
        )
        if bound is not None:
            read_receipts(own, peer, up_to_id=bound)

    def check_whatsapp(self, *, chat_id: str) -> WhatsappCheck:
        """The emulated directory. Every registered phone has a stable LID
        (``lid_for``, recorded so that sending to it reaches the phone); a LID the
        network never showed names no account."""
        user, _, server = chat_id.partition("@")
        phone = phones_of_lids([chat_id]).get(chat_id, "") if server == "lid" else user
        if not phone or not EmuPhone.objects.filter(phone=phone, registered=True).exists():
            return WhatsappCheck(exists=False)
        return WhatsappCheck(exists=True, phone=phone, lid=lid_for(phone))

    def get_avatar(self, *, chat_id: str) -> Avatar:
        if chat_id.endswith("@g.us"):
            try:
                group = group_view(chat_id, actor=self.instance.phone)
            except GroupError:
                return Avatar(exists=False)
            return Avatar(exists=True, url=group_picture_url(group))
        account = self._account(chat_id)
        if account is None:
            return Avatar(exists=False)
        return Avatar(exists=True, url=avatar_url(account))

    def _contact_name(self, account: EmuPhone) -> str:
        if not self.instance.phone:
            return ""
        name = (
            EmuContact.objects.filter(owner__phone=self.instance.phone, contact=account)
            .values_list("name", flat=True)
            .first()
        )
        return name or ""

    def contact_info(self, *, chat_id: str) -> PeerInfo | None:
        account = self._account(chat_id)
        if account is None:
            return None
        mute = self._mute_expiration(account.wid)
        return PeerInfo(
            chat_id=account.wid,
            name=account.name,
            contact_name=self._contact_name(account),
            avatar_url=avatar_url(account),
            about=account.about,
            email=account.email,
            products=tuple(p for p in account.products if isinstance(p, dict)),
            last_seen=last_seen(account.phone),
            is_mute=mute is not None,
            mute_expiration=mute,
        )

    def _mute_expiration(self, chat_id: str) -> int | None:
        """When the linked phone's mute of ``chat_id`` ends (unix seconds, -1 for
        always); None when it is not muted."""
        if not self.instance.phone:
            return None
        mute = (
            EmuMute.objects.filter(phone=self.instance.phone, chat_id=chat_id)
            .filter(Q(until__isnull=True) | Q(until__gt=timezone.now()))
            .first()
        )
        if mute is None:
            return None
        return int(mute.until.timestamp()) if mute.until else -1

    def contacts(self) -> list[Contact]:
        if not self.instance.phone:
            return []
        rows = (
            EmuContact.objects.filter(owner__phone=self.instance.phone, contact__registered=True)
            .select_related("contact")
            .order_by("id")
        )
        return [Contact(chat_id=row.contact.wid, name=row.contact.name, contact_name=row.name) for row in rows]

    def save_contact(self, *, chat_id: str, name: str, in_addressbook: bool = True) -> bool:
        account = self._account(chat_id)
        if account is None or not self.instance.phone:
            return False
        EmuContact.objects.update_or_create(
            owner=ensure_phone(self.instance.phone),
            contact=account,
            defaults={"name": name, "in_addressbook": in_addressbook},
        )
        return True

    def delete_contact(self, *, chat_id: str) -> bool:
        phone = self._peer_phone(chat_id)
        if not phone or not self.instance.phone:
            return False
        deleted, _ = EmuContact.objects.filter(owner__phone=self.instance.phone, contact__phone=phone).delete()
        return deleted > 0

    def _put_change(self, chat_id: str, message_data: dict[str, object]) -> str:
        """Put an edit or revoke on the network; the peer's session takes it in as
        an incoming message. ``via_instance`` keeps our own session from journalling
        it a second time as phone-sent."""
        id_message = "BAE5" + secrets.token_hex(6).upper()
        EmuMessage.objects.create(
            sender=self.instance.phone,
            chat_id=self._network_chat(chat_id),
            recipient=self._peer_phone(chat_id),
            id_message=id_message,
            type_message=str(message_data["typeMessage"]),
            message_data=message_data,
            via_instance=self.instance.id,
        )
        return id_message

    def delete_message(self, *, chat_id: str, id_message: str) -> str:
        data: dict[str, object] = {"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": id_message}}
        return self._put_change(chat_id, data)

    def edit_message(self, *, chat_id: str, id_message: str, text: str) -> str:
        data: dict[str, object] = {"typeMessage": "editedMessage", "editedMessageData": {"textMessage": text, "stanzaId": id_message}}
        return self._put_change(chat_id, data)

    def archive_chat(self, *, chat_id: str, archived: bool) -> None:
        return None  # the emulated phone keeps no chat list of its own

    def set_disappearing(self, *, chat_id: str, expiration: int) -> None:
        """The timer is set on the network for both sides of the chat; messages
        sent from now on expire (``engines.emulator.disappearing``)."""
        set_timer(self._me(), chat_id, expiration)


    # --- Groups: the linked phone acts on the emulated network (emulator_groups) ------

    def _me(self) -> str:
        if not self.instance.phone:
            raise TransportError("the instance is not linked to a phone", permanent=True)
        return self.instance.phone

    def create_group(self, *, name: str, participants: Sequence[str]) -> GroupData:
        phones = [p.split("@", 1)[0] for p in participants if p.endswith("@c.us")]
        with _refusals():
            return group_data(emulator_groups.create_group(actor=self._me(), subject=name, participants=phones))

    def group_data(self, *, group_id: str) -> GroupData:
        with _refusals():
            return group_data(emulator_groups.group_view(group_id, actor=self._me()))

    def update_group_name(self, *, group_id: str, name: str) -> None:
        with _refusals():
            emulator_groups.rename_group(group_id, actor=self._me(), subject=name)

    def _on_member(self, change: Callable[..., None], group_id: str, participant: str, **kwargs: object) -> None:
        if not participant.endswith("@c.us"):
            raise GroupRefused("not-a-participant", f"{participant} is not a user")
        with _refusals():
            change(group_id, actor=self._me(), phone=participant.split("@", 1)[0], **kwargs)

    def add_group_participant(self, *, group_id: str, participant: str) -> None:
        self._on_member(emulator_groups.add_participant, group_id, participant)

    def remove_group_participant(self, *, group_id: str, participant: str) -> None:
        self._on_member(emulator_groups.remove_participant, group_id, participant)

    def set_group_admin(self, *, group_id: str, participant: str, admin: bool) -> None:
        self._on_member(emulator_groups.set_admin, group_id, participant, admin=admin)

    def set_group_picture(self, *, group_id: str, data: bytes) -> str:
        with _refusals():
            emulator_groups.set_picture(group_id, actor=self._me(), data=data)
            return group_picture_url(emulator_groups.group_view(group_id, actor=self._me()))

    def leave_group(self, *, group_id: str) -> None:
        with _refusals():
            emulator_groups.leave_group(group_id, actor=self._me())

    def update_group_settings(
        self, *, group_id: str, only_admins_send: bool | None, only_admins_edit: bool | None
    ) -> None:
        with _refusals():
            emulator_groups.update_settings(
                group_id, actor=self._me(), only_admins_send=only_admins_send, only_admins_edit=only_admins_edit
            )

    def delete_status(self, *, id_message: str) -> bool:
        return bool(self.instance.phone) and delete_status(poster=self.instance.phone, id_message=id_message)


def as_transport(instance: Instance) -> Transport:
    """The emulator bound to an instance, typed as the contract: mypy checks here
    that ``EmulatorTransport`` implements every command of ``engines.contract``."""
    return EmulatorTransport(instance)
