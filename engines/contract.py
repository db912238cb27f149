"""The transport contract: what every engine (emulator, waweb, cloud) provides.

Transports do I/O only. They never write our domain models, enqueue tasks or push
websocket events; services do that with what transports return. A transport object
is bound to one instance (``registry.get_transport(instance)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

QrType = Literal["qrCode", "alreadyLogged", "error"]

# Statuses (stories) are messages to this chat, as on WhatsApp: a payload addressed to
# it carries ``participants`` (chat ids allowed to see it; empty = the contacts).
STATUS_BROADCAST = "status@broadcast"


class TransportError(Exception):
    """An engine failure. ``permanent`` means a retry cannot help (e.g. logged out)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class NotSupportedYet(TransportError):
    """The engine does not implement this operation (yet)."""

    def __init__(self, operation: str, engine: str) -> None:
        super().__init__(f"{operation} is not supported by the {engine} engine yet", permanent=True)


class CallError(TransportError):
    """A call transition the network refuses (no call to accept, already in a call,
    no WhatsApp account): the caller's request was wrong, a retry cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class CallStatus:
    """callsState: ``idle``, ``inc-call``, ``out-call`` or ``on-call``; the call's
    id, the other phone and how this account names it; why the last call ended."""

    state: str
    id_call: str = ""
    peer: str = ""
    name: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class QrCode:
    """A QR code to scan: ``text`` is what the code encodes, ``png_base64`` the image."""

    text: str
    png_base64: str
    window: int  # rotation counter; a new value means a new code


@dataclass(frozen=True)
class Profile:
    """What WhatsApp tells about the linked account."""

    phone: str
    name: str
    avatar_url: str
    lid: str
    device_id: str
    # getWaSettings' historySyncProgress: how much of what the account's network
    # carried this device has taken in (100 = caught up).
    history_sync_progress: int = 100


@dataclass(frozen=True)
class DeviceInfo:
    """The handset the linked account runs on (getDeviceInfo)."""

    platform: str
    manufacturer: str
    model: str
    os_version: str
    wa_version: str
    battery: int


class SessionHost(Protocol):
    """What an engine's session step gets from the runner that calls it: who the
    runner is and which instances it leases at which epoch. Every write a session
    makes for an instance is fenced by ``fence(instance_id)`` (runner id, epoch)."""

    runner_id: str
    owned: dict[int, int]

    def fence(self, instance_id: int) -> tuple[str, int]: ...


class Transport(Protocol):
    """One instance's engine, as web and worker processes see it."""

    engine: str

    def current_qr(self) -> QrCode:
        """The QR code to show now (rotates about every 20 s)."""
        ...

    def request_pairing_code(self, *, phone: str) -> str:
        """Ask WhatsApp for an 8-character pairing code for ``phone``."""
        ...

    def start_registration(self, *, phone: str, method: str) -> str:
        """Start registering ``phone`` by SMS/voice; returns the delivery channel id."""
        ...

    def complete_registration(self, *, phone: str) -> None:
        """The registration code for ``phone`` was confirmed (sendAuthorizationCode):
        link the account; the instance becomes ``starting``, then ``authorized``.
        ``TransportError`` (permanent) when the number cannot be linked."""
        ...

    def logout(self, *, phone: str) -> bool:
        """Unlink this device from the account (``phone``, empty when none is
        known); True when a linked device was unlinked."""
        ...

    def reboot(self) -> None:
        """Drop and re-open the engine connection."""
        ...

    def set_profile_picture(self, *, phone: str, data: bytes) -> str:
        """Set the account's picture (JPEG bytes); returns its public URL."""
        ...

    def profile(self, *, phone: str) -> Profile | None:
        """The linked account's profile, or None when it is unknown."""
        ...

    def device_info(self, *, phone: str) -> DeviceInfo | None:
        """The linked account's handset, or None when it is unknown."""
        ...

    def send_presence(self, *, chat_id: str, milliseconds: int, recording: bool) -> None:
        """Show 'typing…'/'recording…' in a chat for about ``milliseconds``."""
        ...

    def read_chat(self, *, chat_id: str) -> None:
        """Send read receipts for everything received in ``chat_id``."""
        ...

    def call_status(self) -> CallStatus:
        """Where the account's call state machine is (callsState)."""
        ...

    def call_dial(self, *, phone: str) -> CallStatus:
        """Ring ``phone``; ``CallError`` when the account is already in a call."""
        ...

    def call_accept(self) -> CallStatus:
        """Answer the ringing incoming call; ``CallError`` when there is none."""
        ...

    def call_reject(self) -> CallStatus:
        """Decline the ringing incoming call; ``CallError`` when there is none."""
        ...

    def call_hang_up(self) -> CallStatus:
        """End the current call, whatever its state; ``CallError`` when idle."""
        ...

    def call_answer_offer(self, *, offer: Mapping[str, object]) -> dict[str, str] | None:
        """The other side's SDP answer when the engine plays it (a simulated
        contact), or None when a real peer must answer (it is relayed to it)."""
        ...

    def send_message(self, payload: OutgoingPayload) -> SendResult:
        """Send one message. Must be idempotent per ``payload.id_message``. Raises
        ``TransportError`` when the engine cannot be reached."""
        ...

    def send_messages(self, payloads: Sequence[OutgoingPayload]) -> list[SendResult | TransportError]:
        """Send messages in order (the drain's batches). One result per payload, up
        to the first transient ``TransportError``, which is returned as the last item
        (the rest were not attempted). A permanent error is that message's result and
        the rest go on. Idempotent per ``id_message`` like ``send_message``."""
        ...

    # --- Chats, contacts and message changes (journals.chats) ----------------------

    def read_chat_until(self, *, chat_id: str, id_message: str) -> None:
        """Send read receipts in ``chat_id`` up to and including ``id_message``."""
        ...

    def check_whatsapp(self, *, chat_id: str) -> WhatsappCheck:
        """Whether the account ``chat_id`` names (``<digits>@c.us`` or a
        ``<digits>@lid``) exists, with its number and LID as far as known."""
        ...

    def get_avatar(self, *, chat_id: str) -> Avatar:
        """The picture of a user or group chat."""
        ...

    def contact_info(self, *, chat_id: str) -> PeerInfo | None:
        """What WhatsApp tells about a user; None when the number has no account."""
        ...

    def contacts(self) -> list[Contact]:
        """The linked account's address book (users with a WhatsApp account)."""
        ...

    def save_contact(self, *, chat_id: str, name: str, in_addressbook: bool = True) -> bool:
        """Add or rename a contact (in the phone's address book too when
        ``in_addressbook``); False when the number has no WhatsApp account."""
        ...

    def delete_contact(self, *, chat_id: str) -> bool:
        """Remove a contact from the address book; False if it was not there."""
        ...

    def delete_message(self, *, chat_id: str, id_message: str) -> str:
        """Delete one of our messages for everyone; returns the id of the
        revoke message the other side receives."""
        ...

    def edit_message(self, *, chat_id: str, id_message: str, text: str) -> str:
        """Replace the text of one of our text messages for everyone; returns the id
        of the edit message the other side receives."""
        ...

    def archive_chat(self, *, chat_id: str, archived: bool) -> None:
        """Archive or unarchive a chat on the linked account."""
        ...

    def set_disappearing(self, *, chat_id: str, expiration: int) -> None:
        """Set a chat's disappearing-messages timer (seconds, 0 = off)."""
        ...

    # --- Groups (groups.services) ---------------------------------------------------
    # Each raises ``GroupRefused`` when WhatsApp refuses the change (unknown group,
    # not a member, not an admin, …) and ``TransportError`` when it cannot be reached.

    def create_group(self, *, name: str, participants: Sequence[str]) -> GroupData:
        """Create a group with the linked account as creator (super admin) and the
        ``participants`` (chat ids) that have an account."""
        ...

    def group_data(self, *, group_id: str) -> GroupData:
        """The group as a member sees it."""
        ...

    def update_group_name(self, *, group_id: str, name: str) -> None: ...

    def add_group_participant(self, *, group_id: str, participant: str) -> None: ...

    def remove_group_participant(self, *, group_id: str, participant: str) -> None: ...

    def set_group_admin(self, *, group_id: str, participant: str, admin: bool) -> None:
        """Promote (``admin``) or demote a member."""
        ...

    def set_group_picture(self, *, group_id: str, data: bytes) -> str:
        """Set the group's picture (checked image bytes); returns its public URL."""
        ...

    def leave_group(self, *, group_id: str) -> None: ...

    def update_group_settings(
        self, *, group_id: str, only_admins_send: bool | None, only_admins_edit: bool | None
    ) -> None:
        """Change who may send and who may edit the group (None: unchanged)."""
        ...

    # --- Statuses (posting goes through send_messages to STATUS_BROADCAST) ----------

    def delete_status(self, *, id_message: str) -> bool:
        """Revoke one of our statuses: its viewers stop seeing it. False when the
        engine does not know it (never posted, expired or already deleted)."""
        ...


def send_each(transport: Transport, payloads: Sequence[OutgoingPayload]) -> list[SendResult | TransportError]:
    """``send_messages`` for engines without a batch call: one ``send_message`` each."""
    results: list[SendResult | TransportError] = []
    for payload in payloads:
        try:
            results.append(transport.send_message(payload))
        except TransportError as exc:
            results.append(exc)
            if not exc.permanent:
                break
    return results


SendStatus = Literal["sent", "noAccount", "notInGroup", "failed"]


@dataclass(frozen=True)
class OutgoingPayload:
    """What a transport sends: GREEN-API's typeMessage and its fields.

    ``id_message`` is chosen by us before sending and reused on retries, so an engine
    that already accepted the message (worker crashed before recording it) can
    recognise the retry and not deliver twice."""

    id_message: str
    chat_id: str
    type_message: str
    data: dict[str, object]
    # True when no earlier attempt can have reached the engine (the row's first
    # claim): an engine may then skip looking for an earlier copy.
    first_attempt: bool = False


@dataclass(frozen=True)
class SendResult:
    """The engine's verdict on one message; ``description`` explains failures."""

    status: SendStatus
    description: str = ""
    # A status (STATUS_BROADCAST): the chat ids it was posted to (its audience).
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class WhatsappCheck:
    """checkWhatsapp's answer: whether the account exists and, when it does, its
    number (digits) and its LID (``<digits>@lid``) if the engine knows one ("" if
    not: an engine never makes one up)."""

    exists: bool
    phone: str = ""
    lid: str = ""


@dataclass(frozen=True)
class Avatar:
    """A chat's picture: ``exists`` is False for numbers without WhatsApp; ``url`` is
    empty when there is no (visible) picture."""

    exists: bool
    url: str = ""


@dataclass(frozen=True)
class PeerInfo:
    """Another WhatsApp user's public profile as the linked account sees it."""

    chat_id: str
    name: str
    contact_name: str
    avatar_url: str
    about: str = ""
    is_business: bool = False
    email: str = ""
    products: tuple[dict[str, object], ...] = ()
    last_seen: int | None = None  # unix seconds; None when hidden or never seen
    # The chat is muted on the linked phone; ``mute_expiration`` unix seconds, -1
    # for "always" (WhatsApp's value), None when not muted.
    is_mute: bool = False
    mute_expiration: int | None = None


@dataclass(frozen=True)
class Contact:
    """An address-book entry: ``name`` is the user's profile name, ``contact_name``
    the name saved on the phone."""

    chat_id: str
    name: str
    contact_name: str


@dataclass(frozen=True)
class GroupParticipant:
    chat_id: str
    is_admin: bool
    is_super_admin: bool


@dataclass(frozen=True)
class GroupData:
    """A group as its members see it (getGroupData). Times are unix seconds."""

    group_id: str
    owner: str
    subject: str
    creation: int
    subject_time: int
    subject_owner: str
    participants: tuple[GroupParticipant, ...]
    invite_link: str
    picture_url: str = ""
    only_admins_send: bool = False
    only_admins_edit: bool = False


class GroupRefused(TransportError):
    """WhatsApp refused a group change. ``reason``: ``item-not-found`` (no such
    group), ``forbidden`` (not a member), ``not-enough-rights`` (not an admin),
    ``not-a-participant``, ``not-on-whatsapp``, ``already-participant``,
    ``group-full``, ``super-admin`` (the creator cannot be removed or demoted)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason, permanent=True)
        self.reason = reason


def send_for_instances(
    batches: Mapping[int, tuple[Transport, Sequence[OutgoingPayload]]],
) -> dict[int, list[SendResult | TransportError]]:
    """``send_messages`` for several instances' batches (a drain sweep): engines whose
    transport class offers ``send_messages_of_many`` get all their instances' batches
    in one call (the emulator: one directory read and one INSERT for the sweep);
    the others one ``send_messages`` per instance. Results are per instance id, with
    ``send_messages``'s meaning."""
    results: dict[int, list[SendResult | TransportError]] = {}
    grouped: dict[type, list[int]] = {}
    for instance_id, (transport, _) in batches.items():
        grouped.setdefault(type(transport), []).append(instance_id)
    for cls, ids in grouped.items():
        many = getattr(cls, "send_messages_of_many", None)
        if many is not None and len(ids) > 1:
            answers = many([batches[i] for i in ids])
            results.update(zip(ids, answers, strict=True))
        else:
            for instance_id in ids:
                transport, payloads = batches[instance_id]
                results[instance_id] = transport.send_messages(payloads)
    return results
