"""The waweb transport as web and worker processes see it: every command travels over
the live-session command channel (``engines.channel``) to the instance's session
process, which runs it through whatsmeow. Nothing here imports neonize.

The newest QR code is read from the session row the sink keeps (``codes``); a
pairing code is asked of the session and comes back as the answer (and as a
``PairingCodeEvent``). When no session process holds the instance (offline, backing
off, no runner), commands fail at once with ``NoSessionOwner`` (a 503)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from engines import channel
from engines.contract import (
    Avatar,
    CallStatus,
    Contact,
    DeviceInfo,
    GroupData,
    GroupParticipant,
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
from engines.waweb import store
from engines.waweb.models import WawebSession

if TYPE_CHECKING:
    from instances.models import Instance

ENGINE = "waweb"

# The session process's own sessions by instance id (``Session.serve`` registers
# itself): a command this process asks of its own session runs directly, since the
# thread that would answer it over the channel is the one asking.
IN_PROCESS: dict[int, Callable[[str, dict[str, Any]], Any]] = {}


def payload_to_wire(payload: OutgoingPayload) -> dict[str, Any]:
    return asdict(payload)


def result_from_wire(data: Mapping[str, Any]) -> SendResult | TransportError:
    if "error" in data:
        return channel.decode_error(data["error"])
    return SendResult(
        status=data["status"],
        description=data.get("description", ""),
        recipients=tuple(data.get("recipients", ())),
    )


def group_from_wire(data: Mapping[str, Any]) -> GroupData:
    return GroupData(
        group_id=data["group_id"],
        owner=data.get("owner", ""),
        subject=data.get("subject", ""),
        creation=int(data.get("creation", 0)),
        subject_time=int(data.get("subject_time", 0)),
        subject_owner=data.get("subject_owner", ""),
        participants=tuple(GroupParticipant(**p) for p in data.get("participants", ())),
        invite_link=data.get("invite_link", ""),
        picture_url=data.get("picture_url", ""),
        only_admins_send=bool(data.get("only_admins_send", False)),
        only_admins_edit=bool(data.get("only_admins_edit", False)),
    )


def call_from_wire(data: Mapping[str, Any]) -> CallStatus:
    return CallStatus(
        state=str(data["state"]),
        id_call=str(data.get("id_call", "")),
        peer=str(data.get("peer", "")),
        reason=data.get("reason"),
    )


class WawebTransport:
    """One waweb instance's commands, sent to its session process."""

    engine = ENGINE

    def __init__(self, instance: Instance) -> None:
        self.instance = instance

    def _call(self, command: str, /, **args: Any) -> Any:
        local = IN_PROCESS.get(self.instance.pk)
        if local is not None:
            return local(command, args)
        return channel.call(self.instance.pk, command, args)

    def _unsupported(self, operation: str) -> NotSupportedYet:
        return NotSupportedYet(operation, ENGINE)

    # --- Account and pairing ------------------------------------------------------

    def current_qr(self) -> QrCode:
        row = WawebSession.objects.filter(instance_id=self.instance.pk).exclude(qr_text="").first()
        parked = WawebSession.objects.filter(instance_id=self.instance.pk, parked_reason="loggedOut").exists()
        if row is None and parked:
            raise TransportError("the phone logged this device out; call reboot to start a new session and link again")
        if row is None:
            why = (
                WawebSession.objects.filter(instance_id=self.instance.pk)
                .values_list("last_error", flat=True)
                .first()
            )
            reason = f": {why}" if why else ""
            raise TransportError(
                "no QR code yet: the WhatsApp session of this instance has not reached WhatsApp" + reason
            )
        return QrCode(text=row.qr_text, png_base64=row.qr_png, window=row.qr_count)

    def request_pairing_code(self, *, phone: str) -> str:
        return str(self._call("pair_phone", phone=phone))

    def start_registration(self, *, phone: str, method: str) -> str:
        raise self._unsupported("startAuthorization")

    def complete_registration(self, *, phone: str) -> None:
        raise self._unsupported("sendAuthorizationCode")

    def logout(self, *, phone: str) -> bool:
        try:
            return bool(self._call("logout"))
        except channel.NoSessionOwner:
            # No session runs: nothing is connected to unlink, but the keys it would
            # resume with are forgotten, so the next session asks for a new scan.
            return store.forget_device(self.instance.pk)

    def reboot(self) -> None:
        # The lease is released by the caller (instances.services.reboot): the
        # runner stops this session process and starts a new one at a new epoch.
        try:
            self._call("reboot")
        except channel.NoSessionOwner:
            pass

    def set_profile_picture(self, *, phone: str, data: bytes) -> str:
        return str(self._call("set_profile_picture", data=base64.b64encode(data).decode()))

    def profile(self, *, phone: str) -> Profile | None:
        data = self._call("profile")
        return Profile(**data) if data else None

    def device_info(self, *, phone: str) -> DeviceInfo | None:
        raise self._unsupported("getDeviceInfo")

    def send_presence(self, *, chat_id: str, milliseconds: int, recording: bool) -> None:
        self._call("send_presence", chat_id=chat_id, milliseconds=milliseconds, recording=recording)

    def read_chat(self, *, chat_id: str) -> None:
        self._call("read_chat", chat_id=chat_id, id_message="")

    def read_chat_until(self, *, chat_id: str, id_message: str) -> None:
        self._call("read_chat", chat_id=chat_id, id_message=id_message)

    # --- Calls: whatsmeow carries none (offers are reported as events) ----------------

    def call_status(self) -> CallStatus:
        return call_from_wire(self._call("call_status"))

    def call_dial(self, *, phone: str) -> CallStatus:
        raise self._unsupported("callsDial")

    def call_accept(self) -> CallStatus:
        raise self._unsupported("callsAccept")

    def call_reject(self) -> CallStatus:
        return call_from_wire(self._call("call_reject"))

    def call_hang_up(self) -> CallStatus:
        raise self._unsupported("callsHangUp")

    def call_answer_offer(self, *, offer: Mapping[str, object]) -> dict[str, str] | None:
        raise self._unsupported("callsRtc")

    # --- Sending --------------------------------------------------------------------

    def send_message(self, payload: OutgoingPayload) -> SendResult:
        result = self.send_messages([payload])[0]
        if isinstance(result, TransportError):
            raise result
        return result

    def send_messages(self, payloads: Sequence[OutgoingPayload]) -> list[SendResult | TransportError]:
        """The batch goes to the session in one command; it answers one result per
        message up to the first transient error (``send_messages``'s contract)."""
        try:
            answers = self._call("send", payloads=[payload_to_wire(p) for p in payloads])
        except TransportError as exc:
            return [exc]
        return [result_from_wire(a) for a in answers]

    # --- Chats and contacts ---------------------------------------------------------

    def check_whatsapp(self, *, chat_id: str) -> WhatsappCheck:
        answer = self._call("check_whatsapp", chat_id=chat_id)
        return WhatsappCheck(
            exists=bool(answer.get("exists")), phone=str(answer.get("phone", "")), lid=str(answer.get("lid", ""))
        )

    def get_avatar(self, *, chat_id: str) -> Avatar:
        data = self._call("get_avatar", chat_id=chat_id)
        return Avatar(exists=bool(data["exists"]), url=data.get("url", ""))

    def contact_info(self, *, chat_id: str) -> PeerInfo | None:
        data = self._call("contact_info", chat_id=chat_id)
        return PeerInfo(**data) if data else None

    def contacts(self) -> list[Contact]:
        return [Contact(**entry) for entry in self._call("contacts")]

    def save_contact(self, *, chat_id: str, name: str, in_addressbook: bool = True) -> bool:
        raise self._unsupported("addContact")

    def delete_contact(self, *, chat_id: str) -> bool:
        raise self._unsupported("deleteContact")

    def delete_message(self, *, chat_id: str, id_message: str) -> str:
        return str(self._call("delete_message", chat_id=chat_id, id_message=id_message))

    def edit_message(self, *, chat_id: str, id_message: str, text: str) -> str:
        return str(self._call("edit_message", chat_id=chat_id, id_message=id_message, text=text))

    def archive_chat(self, *, chat_id: str, archived: bool) -> None:
        raise self._unsupported("archiveChat")

    def set_disappearing(self, *, chat_id: str, expiration: int) -> None:
        self._call("set_disappearing", chat_id=chat_id, expiration=expiration)

    # --- Groups -----------------------------------------------------------------------

    def create_group(self, *, name: str, participants: Sequence[str]) -> GroupData:
        return group_from_wire(self._call("create_group", name=name, participants=list(participants)))

    def group_data(self, *, group_id: str) -> GroupData:
        return group_from_wire(self._call("group_data", group_id=group_id))

    def update_group_name(self, *, group_id: str, name: str) -> None:
        self._call("update_group_name", group_id=group_id, name=name)

    def add_group_participant(self, *, group_id: str, participant: str) -> None:
        self._call("group_participant", group_id=group_id, participant=participant, change="add")

    def remove_group_participant(self, *, group_id: str, participant: str) -> None:
        self._call("group_participant", group_id=group_id, participant=participant, change="remove")

    def set_group_admin(self, *, group_id: str, participant: str, admin: bool) -> None:
        change = "promote" if admin else "demote"
        self._call("group_participant", group_id=group_id, participant=participant, change=change)

    def set_group_picture(self, *, group_id: str, data: bytes) -> str:
        return str(self._call("set_group_picture", group_id=group_id, data=base64.b64encode(data).decode()))

    def leave_group(self, *, group_id: str) -> None:
        self._call("leave_group", group_id=group_id)

    def update_group_settings(
        self, *, group_id: str, only_admins_send: bool | None, only_admins_edit: bool | None
    ) -> None:
        self._call(
            "update_group_settings",
            group_id=group_id,
            only_admins_send=only_admins_send,
            only_admins_edit=only_admins_edit,
        )

    # --- Statuses -----------------------------------------------------------------------

    def delete_status(self, *, id_message: str) -> bool:
        return bool(self._call("delete_status", id_message=id_message))


def as_transport(instance: Instance) -> Transport:
    """The waweb engine bound to an instance, typed as the contract: mypy checks here
    that ``WawebTransport`` implements every command of ``engines.contract``."""
    return WawebTransport(instance)
