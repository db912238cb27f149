"""The engine conformance suite: one set of checks, run against every engine that has
a harness (``tests/engines/harness.py``; the emulator now, ``cloud`` and ``waweb``
when they add theirs).

Commands: every member of ``engines.contract.Transport`` has a check here
(``COMMANDS`` maps it to the GREEN-API methods that use it, and a test fails when
the protocol gains a member nobody checks). A command the engine's ``EngineSpec``
covers must do what it says, as the other side of the network sees it; one it does
not cover must be refused with a permanent ``TransportError`` before any effect.

Events: every kind an engine reports (``Harness.reports``) is made to happen on the
other side, and must reach the sink and come out as GREEN-API's notification (the
shapes of API.md §10.4) and the right journal rows.
"""

from __future__ import annotations

import io
import secrets
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image
from rest_framework.test import APIClient

from engines import contract, events, registry, sink
from engines.contract import STATUS_BROADCAST, OutgoingPayload, SendResult, Transport, TransportError
from instances.models import Account, Instance, State
from journals.models import Call, ChatState, JournalMessage, Notification
from messaging.models import OutgoingMessage, OutgoingStatus
from statuses.models import StatusReceipt
from tests.conftest import method_url
from tests.engines.harness import HARNESSES, Harness, NotObservable

pytestmark = pytest.mark.django_db


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, db: None) -> Iterator[Harness]:
    engine = HARNESSES[request.param]
    if not registry.is_installed(engine.engine):
        pytest.skip(f"the {engine.engine} engine is not installed here")
    h = engine()
    with h.active():
        yield h


def spec_of(h: Harness) -> registry.EngineSpec:
    return registry.spec(h.engine)


def observe(value: Callable[[], Any]) -> Any:
    """Run a harness observer or cause; skip the check when the engine cannot."""
    try:
        return value()
    except NotObservable as exc:
        pytest.skip(f"the harness cannot observe or cause: {exc}")


def new_id() -> str:
    return "BAE5" + secrets.token_hex(6).upper()


def text(chat_id: str, message: str, *, id_message: str | None = None, first: bool = True) -> OutgoingPayload:
    return OutgoingPayload(
        id_message=id_message or new_id(),
        chat_id=chat_id,
        type_message="textMessage",
        data={"chatId": chat_id, "message": message},
        first_attempt=first,
    )


def jpeg(colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 96), colour).save(buf, format="JPEG")
    return buf.getvalue()


# --- Commands ------------------------------------------------------------------------

# Every Transport member -> the GREEN-API methods that use it. The engine covers the
# command when its spec lists any of them.
COMMANDS: dict[str, tuple[str, ...]] = {
    "current_qr": ("qr", "scanqrcode"),
    "request_pairing_code": ("getAuthorizationCode",),
    "start_registration": ("startAuthorization",),
    "complete_registration": ("sendAuthorizationCode",),
    "logout": ("logout",),
    "reboot": ("reboot",),
    "set_profile_picture": ("setProfilePicture",),
    "profile": ("getWaSettings",),
    "device_info": ("getDeviceInfo",),
    "send_presence": ("sendTyping",),
    "read_chat": ("readChat",),
    "read_chat_until": ("readChat",),
    "call_status": ("callsState",),
    "call_dial": ("callsDial",),
    "call_accept": ("callsAccept",),
    "call_reject": ("callsReject",),
    "call_hang_up": ("callsHangUp",),
    "call_answer_offer": ("callsRtc",),
    "send_message": ("sendMessage",),
    "send_messages": ("sendMessage",),
    "check_whatsapp": ("checkWhatsapp",),
    "get_avatar": ("getAvatar",),
    "contact_info": ("getContactInfo",),
    "contacts": ("getContacts",),
    "save_contact": ("addContact", "editContact"),
    "delete_contact": ("deleteContact",),
    "delete_message": ("deleteMessage",),
    "edit_message": ("editMessage",),
    "archive_chat": ("archiveChat", "unarchiveChat"),
    "set_disappearing": ("setDisappearingChat",),
    "create_group": ("createGroup",),
    "group_data": ("getGroupData",),
    "update_group_name": ("updateGroupName",),
    "add_group_participant": ("addGroupParticipant",),
    "remove_group_participant": ("removeGroupParticipant",),
    "set_group_admin": ("setGroupAdmin", "removeAdmin"),
    "set_group_picture": ("setGroupPicture",),
    "leave_group": ("leaveGroup",),
    "update_group_settings": ("updateGroupSettings",),
    "delete_status": ("deleteStatus",),
}


def protocol_members() -> set[str]:
    members = {name for name in vars(Transport) if not name.startswith("_")}
    members |= set(typing.get_type_hints(Transport))  # attributes (``engine``)
    return members - {"engine"}


def test_every_contract_command_has_a_check() -> None:
    assert protocol_members() == set(COMMANDS), "COMMANDS and engines.contract.Transport disagree"
    assert set(COMMANDS) == set(CHECKS)


def test_every_command_method_is_a_registered_method() -> None:
    from instances.registry import BY_NAME

    assert {m for methods in COMMANDS.values() for m in methods} <= set(BY_NAME)


class Ctx:
    """What a command check gets: the harness, an authorized instance, its transport."""

    def __init__(self, h: Harness, instance: Instance) -> None:
        self.h = h
        self.instance = instance
        self.transport: Transport = registry.get_transport(instance)

    def peer(self, name: str = "Peer") -> str:
        return str(observe(lambda: self.h.peer(self.instance, name)))

    def fresh(self) -> Instance:
        return Instance.objects.get(pk=self.instance.pk)


def check_send_messages(c: Ctx) -> None:
    """A batch: each message gets its own verdict in order, a permanent one (no
    account) does not stop the rest, and a retry of the same ids delivers nothing twice."""
    first, second = c.peer("First"), c.peer("Second")
    batch = [text(first, "one"), text(c.h.nobody(), "nobody"), text(second, "two")]
    results = c.transport.send_messages(batch)
    assert [r.status if isinstance(r, SendResult) else r for r in results] == ["sent", "noAccount", "sent"]
    got = observe(lambda: c.h.received(c.instance, first, batch[0].id_message))
    assert got is not None and got["typeMessage"] == "textMessage"
    assert got["textMessageData"] == {"textMessage": "one"}
    assert c.h.received(c.instance, second, batch[2].id_message) is not None
    assert c.h.received(c.instance, c.h.nobody(), batch[1].id_message) is None
    retry = [text(first, "one", id_message=batch[0].id_message, first=False)]
    assert [r.status for r in c.transport.send_messages(retry) if isinstance(r, SendResult)] == ["sent"]
    assert c.h.received(c.instance, first, batch[0].id_message) == got


def check_send_message(c: Ctx) -> None:
    peer = c.peer()
    payload = text(peer, "single")
    assert c.transport.send_message(payload).status == "sent"
    assert observe(lambda: c.h.received(c.instance, peer, payload.id_message)) is not None
    # send_each: the contract's fallback for engines without a batch call.
    results = contract.send_each(c.transport, [text(c.h.nobody(), "x"), text(peer, "y")])
    assert [r.status for r in results if isinstance(r, SendResult)] == ["noAccount", "sent"]


def check_read_chat(c: Ctx) -> None:
    peer = c.peer()
    id_message = observe(lambda: c.h.peer_sends_text(c.instance, peer, "read me"))
    c.h.settle()
    assert not c.h.seen_read(c.instance, peer, id_message)
    c.transport.read_chat(chat_id=peer)
    assert observe(lambda: c.h.seen_read(c.instance, peer, id_message))


def check_read_chat_until(c: Ctx) -> None:
    peer = c.peer()
    older = observe(lambda: c.h.peer_sends_text(c.instance, peer, "older"))
    newer = c.h.peer_sends_text(c.instance, peer, "newer")
    c.h.settle()
    c.transport.read_chat_until(chat_id=peer, id_message=older)
    assert observe(lambda: c.h.seen_read(c.instance, peer, older))
    assert not c.h.seen_read(c.instance, peer, newer)


def check_send_presence(c: Ctx) -> None:
    peer = c.peer()
    c.transport.send_presence(chat_id=peer, milliseconds=60_000, recording=False)
    assert observe(lambda: c.h.presence(c.instance, peer)) == "composing"
    c.transport.send_presence(chat_id=peer, milliseconds=60_000, recording=True)
    assert c.h.presence(c.instance, peer) == "recording"


def check_set_profile_picture(c: Ctx) -> None:
    url = c.transport.set_profile_picture(phone=c.instance.phone, data=jpeg())
    assert url.startswith(("http://", "https://"))
    assert observe(lambda: c.h.avatar_seen(c.instance))
    profile = c.transport.profile(phone=c.instance.phone)
    assert profile is not None and profile.avatar_url == url


def check_profile(c: Ctx) -> None:
    profile = c.transport.profile(phone=c.instance.phone)
    assert profile is not None
    assert profile.phone == c.instance.phone
    assert 0 <= profile.history_sync_progress <= 100


def check_device_info(c: Ctx) -> None:
    info = c.transport.device_info(phone=c.instance.phone)
    assert info is not None and info.platform and 0 <= info.battery <= 100


def check_check_whatsapp(c: Ctx) -> None:
    peer = c.peer()
    found = c.transport.check_whatsapp(chat_id=peer)
    assert (found.exists, found.phone) == (True, peer.split("@")[0])
    assert not found.lid or found.lid.endswith("@lid")  # only a LID the engine knows
    assert c.transport.check_whatsapp(chat_id=c.h.nobody()).exists is False


def check_get_avatar(c: Ctx) -> None:
    assert c.transport.get_avatar(chat_id=c.peer()).exists is True
    assert c.transport.get_avatar(chat_id=c.h.nobody()).exists is False


def check_contact_info(c: Ctx) -> None:
    peer = c.peer("Known Name")
    info = c.transport.contact_info(chat_id=peer)
    assert info is not None and info.chat_id == peer
    assert c.transport.contact_info(chat_id=c.h.nobody()) is None


def check_contacts(c: Ctx) -> None:
    peer = c.peer("Listed")
    assert peer in {contact.chat_id for contact in c.transport.contacts()}


def check_save_contact(c: Ctx) -> None:
    peer = c.peer("Before")
    assert c.transport.save_contact(chat_id=peer, name="Saved Name") is True
    assert observe(lambda: c.h.address_book(c.instance))[peer] == "Saved Name"
    assert c.transport.save_contact(chat_id=c.h.nobody(), name="Nobody") is False
    assert c.h.nobody() not in c.h.address_book(c.instance)


def check_delete_contact(c: Ctx) -> None:
    peer = c.peer("Doomed")
    assert c.transport.delete_contact(chat_id=peer) is True
    assert peer not in observe(lambda: c.h.address_book(c.instance))
    assert c.transport.delete_contact(chat_id=peer) is False


def check_delete_message(c: Ctx) -> None:
    peer = c.peer()
    sent = text(peer, "regret")
    c.transport.send_messages([sent])
    revoke = c.transport.delete_message(chat_id=peer, id_message=sent.id_message)
    got = observe(lambda: c.h.received(c.instance, peer, revoke))
    assert got == {"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": sent.id_message}}


def check_edit_message(c: Ctx) -> None:
    peer = c.peer()
    sent = text(peer, "typo")
    c.transport.send_messages([sent])
    edit = c.transport.edit_message(chat_id=peer, id_message=sent.id_message, text="fixed")
    got = observe(lambda: c.h.received(c.instance, peer, edit))
    assert got is not None and got["typeMessage"] == "editedMessage"
    assert got["editedMessageData"] == {"textMessage": "fixed", "stanzaId": sent.id_message}


def check_archive_chat(c: Ctx) -> None:
    # Nothing the other side sees (an archive is the account's own list); the
    # command must be accepted both ways. Relay's chat list is checked on the wire.
    peer = c.peer()
    assert c.transport.archive_chat(chat_id=peer, archived=True) is None
    assert c.transport.archive_chat(chat_id=peer, archived=False) is None


def check_set_disappearing(c: Ctx) -> None:
    peer = c.peer()
    assert c.transport.set_disappearing(chat_id=peer, expiration=86_400) is None
    assert c.transport.set_disappearing(chat_id=peer, expiration=0) is None


def _group(c: Ctx, *members: str) -> str:
    data = c.transport.create_group(name="Conformance", participants=list(members))
    return data.group_id


def check_create_group(c: Ctx) -> None:
    peer = c.peer()
    data = c.transport.create_group(name="Conformance", participants=[peer, c.h.nobody()])
    assert data.group_id.endswith("@g.us")
    assert data.owner == c.instance.wid and data.subject == "Conformance"
    assert {p.chat_id for p in data.participants} == {c.instance.wid, peer}
    assert observe(lambda: c.h.group_members(c.instance, data.group_id)) == {c.instance.wid: True, peer: False}


def check_group_data(c: Ctx) -> None:
    peer = c.peer()
    group_id = _group(c, peer)
    data = c.transport.group_data(group_id=group_id)
    assert data.group_id == group_id and {p.chat_id for p in data.participants} == {c.instance.wid, peer}
    with pytest.raises(contract.GroupRefused) as refused:
        c.transport.group_data(group_id="120363000000000000@g.us")
    assert refused.value.permanent


def check_update_group_name(c: Ctx) -> None:
    group_id = _group(c, c.peer())
    c.transport.update_group_name(group_id=group_id, name="Renamed")
    assert observe(lambda: c.h.group_subject(c.instance, group_id)) == "Renamed"


def check_add_group_participant(c: Ctx) -> None:
    group_id = _group(c, c.peer())
    newcomer = c.peer("Newcomer")
    c.transport.add_group_participant(group_id=group_id, participant=newcomer)
    assert newcomer in observe(lambda: c.h.group_members(c.instance, group_id))
    with pytest.raises(contract.GroupRefused):
        c.transport.add_group_participant(group_id=group_id, participant=c.h.nobody())


def check_remove_group_participant(c: Ctx) -> None:
    peer = c.peer()
    group_id = _group(c, peer)
    c.transport.remove_group_participant(group_id=group_id, participant=peer)
    assert peer not in observe(lambda: c.h.group_members(c.instance, group_id))


def check_set_group_admin(c: Ctx) -> None:
    peer = c.peer()
    group_id = _group(c, peer)
    c.transport.set_group_admin(group_id=group_id, participant=peer, admin=True)
    assert observe(lambda: c.h.group_members(c.instance, group_id))[peer] is True
    c.transport.set_group_admin(group_id=group_id, participant=peer, admin=False)
    assert c.h.group_members(c.instance, group_id)[peer] is False


def check_set_group_picture(c: Ctx) -> None:
    group_id = _group(c, c.peer())
    url = c.transport.set_group_picture(group_id=group_id, data=jpeg((10, 120, 10)))
    assert url.startswith(("http://", "https://"))
    assert c.transport.group_data(group_id=group_id).picture_url == url


def check_leave_group(c: Ctx) -> None:
    peer = c.peer()
    group_id = _group(c, peer)
    c.transport.set_group_admin(group_id=group_id, participant=peer, admin=True)
    c.transport.leave_group(group_id=group_id)
    assert c.instance.wid not in observe(lambda: c.h.group_members(c.instance, group_id))


def check_update_group_settings(c: Ctx) -> None:
    group_id = _group(c, c.peer())
    c.transport.update_group_settings(group_id=group_id, only_admins_send=True, only_admins_edit=None)
    assert observe(lambda: c.h.group_settings(c.instance, group_id)) == (True, False)
    c.transport.update_group_settings(group_id=group_id, only_admins_send=None, only_admins_edit=True)
    assert c.h.group_settings(c.instance, group_id) == (True, True)


def check_delete_status(c: Ctx) -> None:
    peer = c.peer()
    status = OutgoingPayload(
        id_message=new_id(),
        chat_id=STATUS_BROADCAST,
        type_message="extendedTextMessage",
        data={
            "message": "a story",
            "backgroundColor": "#228B22",
            "font": "SERIF",
            # An engine that posts to a fixed audience (waweb: the saved contacts, the
            # peer among them) refuses chosen participants.
            **({} if registry.spec(c.instance.engine).refuses_status_participants else {"participants": [peer]}),
        },
        first_attempt=True,
    )
    [posted] = c.transport.send_messages([status])
    assert isinstance(posted, SendResult) and posted.status == "sent" and peer in posted.recipients
    assert observe(lambda: c.h.status_live(c.instance, status.id_message))
    assert c.transport.delete_status(id_message=status.id_message) is True
    assert not c.h.status_live(c.instance, status.id_message)
    assert c.transport.delete_status(id_message=status.id_message) is False


def check_call_status(c: Ctx) -> None:
    assert c.transport.call_status().state == "idle"


def check_call_dial(c: Ctx) -> None:
    peer = c.peer()
    dialled = c.transport.call_dial(phone=peer.split("@")[0])
    assert dialled.state in ("out-call", "on-call") and dialled.peer == peer.split("@")[0]
    assert observe(lambda: c.h.call_seen(c.instance, peer)) in ("inc-call", "on-call")
    with pytest.raises(contract.CallError):
        c.transport.call_dial(phone=peer.split("@")[0])  # already in a call
    c.transport.call_hang_up()


def check_call_accept(c: Ctx) -> None:
    peer = c.peer()
    with pytest.raises(contract.CallError):
        c.transport.call_accept()  # nothing rings
    observe(lambda: c.h.peer_calls(c.instance, peer, ""))
    assert c.transport.call_status().state == "inc-call"
    assert c.transport.call_accept().state == "on-call"
    assert observe(lambda: c.h.call_seen(c.instance, peer)) == "on-call"
    c.transport.call_hang_up()


def check_call_reject(c: Ctx) -> None:
    peer = c.peer()
    observe(lambda: c.h.peer_calls(c.instance, peer, ""))
    assert c.transport.call_reject().state == "idle"
    assert observe(lambda: c.h.call_seen(c.instance, peer)) == "idle"


def check_call_hang_up(c: Ctx) -> None:
    peer = c.peer()
    with pytest.raises(contract.CallError):
        c.transport.call_hang_up()  # idle
    c.transport.call_dial(phone=peer.split("@")[0])
    assert c.transport.call_hang_up().state == "idle"
    assert observe(lambda: c.h.call_seen(c.instance, peer)) == "idle"


SDP_OFFER = {
    "type": "offer",
    "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "a=mid:0\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-mux\r\n",
}


def check_call_answer_offer(c: Ctx) -> None:
    peer = c.peer()
    with pytest.raises(contract.CallError):
        c.transport.call_answer_offer(offer=SDP_OFFER)  # no call
    c.transport.call_dial(phone=peer.split("@")[0])
    answer = c.transport.call_answer_offer(offer=SDP_OFFER)
    # A simulated peer answers here; a real one would be relayed (None).
    assert answer is None or (answer["type"] == "answer" and "m=audio" in answer["sdp"])
    c.transport.call_hang_up()


def check_current_qr(c: Ctx) -> None:
    unpaired = c.h.unpaired(c.instance.account)
    qr = registry.get_transport(unpaired).current_qr()
    assert qr.text and qr.png_base64
    import base64

    assert base64.b64decode(qr.png_base64).startswith(b"\x89PNG")


def check_request_pairing_code(c: Ctx) -> None:
    unpaired = c.h.unpaired(c.instance.account)
    code = registry.get_transport(unpaired).request_pairing_code(phone="79551230001")
    assert len(code.replace("-", "")) == 8


def check_start_registration(c: Ctx) -> None:
    unpaired = c.h.unpaired(c.instance.account)
    assert registry.get_transport(unpaired).start_registration(phone="79551230002", method="sms")


def check_complete_registration(c: Ctx) -> None:
    unpaired = c.h.unpaired(c.instance.account)
    transport = registry.get_transport(unpaired)
    transport.start_registration(phone="79551230003", method="sms")
    transport.complete_registration(phone="79551230003")
    c.h.settle()
    fresh = Instance.objects.get(pk=unpaired.pk)
    assert fresh.state == State.AUTHORIZED and fresh.wid == "79551230003@c.us"


def check_logout(c: Ctx) -> None:
    # The command reports whether a device was unlinked; the service then forgets
    # the account (checked on the wire: the instance is notAuthorized, unlinked).
    assert c.transport.logout(phone=c.instance.phone) is True
    r = APIClient().get(method_url(c.instance, "logout"))
    assert r.status_code == 200 and r.json() == {"isLogout": True}
    assert c.fresh().state == State.NOT_AUTHORIZED
    assert not observe(lambda: c.h.linked(c.instance))


def check_reboot(c: Ctx) -> None:
    assert c.transport.reboot() is None
    r = APIClient().get(method_url(c.instance, "reboot"))
    assert r.status_code == 200 and r.json() == {"isReboot": True}
    c.h.settle()
    c.h.settle()
    assert c.fresh().state == State.AUTHORIZED


CHECKS: dict[str, Callable[[Ctx], None]] = {
    name.removeprefix("check_"): fn for name, fn in list(globals().items()) if name.startswith("check_")
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command(harness: Harness, account: Account, command: str) -> None:
    """The command does what the contract says where the engine covers it, and is
    refused (a permanent TransportError) where it does not."""
    instance = observe(lambda: harness.authorized(account))
    ctx = Ctx(harness, instance)
    covered = any(spec_of(harness).supports(method) for method in COMMANDS[command])
    if covered:
        CHECKS[command](ctx)
        return
    with pytest.raises(TransportError) as refused:
        CHECKS[command](ctx)
    assert refused.value.permanent, f"{command} on {harness.engine}: refused, but as a transient error"


# --- Events --------------------------------------------------------------------------

# Notification bodies as API.md §10.4 shows them (values are examples; the suite
# compares keys, nesting and JSON types, then the values that must carry over).
INSTANCE_DATA = {"idInstance": 7103000000, "wid": "79876543210@c.us", "typeInstance": "whatsapp"}
SENDER_DATA = {"chatId": "", "chatName": "", "sender": "", "senderName": "", "senderContactName": ""}
EXAMPLES: dict[str, dict[str, Any]] = {
    "incomingMessageReceived": {
        "typeWebhook": "incomingMessageReceived",
        "instanceData": INSTANCE_DATA,
        "timestamp": 1588091580,
        "idMessage": "F7AEC1B7086ECDC7E6E45923F5EDB825",
        "senderData": SENDER_DATA,
        "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": "Hello"}},
    },
    "outgoingMessageReceived": {
        "typeWebhook": "outgoingMessageReceived",
        "instanceData": INSTANCE_DATA,
        "timestamp": 1588091580,
        "idMessage": "3EB0C767D097B7C7C030",
        "senderData": SENDER_DATA,
        "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": "sent from phone"}},
    },
    "outgoingAPIMessageReceived": {
        "typeWebhook": "outgoingAPIMessageReceived",
        "instanceData": INSTANCE_DATA,
        "timestamp": 1588091580,
        "idMessage": "BAE5F4886F6F2D05",
        "senderData": SENDER_DATA,
        "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": "sent via API"}},
    },
    "outgoingMessageStatus": {
        "typeWebhook": "outgoingMessageStatus",
        "chatId": "79001234567@c.us",
        "instanceData": INSTANCE_DATA,
        "timestamp": 1586700802,
        "idMessage": "BAE5F4886F6F2D05",
        "status": "delivered",
        "sendByApi": True,
    },
    "stateInstanceChanged": {
        "typeWebhook": "stateInstanceChanged",
        "instanceData": INSTANCE_DATA,
        "timestamp": 1586700690,
        "stateInstance": "notAuthorized",
    },
    "incomingCall": {
        "from": "79001234567@c.us",
        "typeWebhook": "incomingCall",
        "instanceData": INSTANCE_DATA,
        "status": "offer",
        "timestamp": 1617691757,
        "idMessage": "104179EDB7F5328988D8834107EEBE50",
    },
    "incomingBlock": {
        "typeWebhook": "incomingBlock",
        "instanceData": INSTANCE_DATA,
        "timestamp": 1586700690,
        "chatId": "10000000000@c.us",
        "chatState": "blocked",
    },
}

NOTIFY_ALL = {
    "incomingWebhook": "yes",
    "outgoingWebhook": "yes",
    "outgoingMessageWebhook": "yes",
    "outgoingAPIMessageWebhook": "yes",
    "stateWebhook": "yes",
    "incomingCallWebhook": "yes",
    "incomingBlockWebhook": "yes",
    "pollMessageWebhook": "yes",
    "editedMessageWebhook": "yes",
    "deletedMessageWebhook": "yes",
}


def shape(value: Any) -> Any:
    """Keys, nesting and JSON types of a body, without its values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_documented(body: dict[str, Any]) -> None:
    """The body has exactly the keys and types of API.md §10.4's example."""
    example = EXAMPLES[body["typeWebhook"]]
    if "messageData" in example:
        # The message itself is checked by value; the envelope by the example.
        assert shape({**body, "messageData": {}}) == shape({**example, "messageData": {}})
    else:
        extra = {"description"} if body.get("status") in ("failed", "noAccount") else set()
        assert shape({k: v for k, v in body.items() if k not in extra}) == shape(example)


def notifying(instance: Instance) -> Instance:
    instance.settings.update(NOTIFY_ALL)
    instance.save(update_fields=["settings"])
    return instance


def bodies(instance: Instance, type_webhook: str) -> list[dict[str, Any]]:
    rows = Notification.objects.filter(instance_id=instance.pk, type_webhook=type_webhook).order_by("receipt_id")
    return [dict(row.body) for row in rows]


def instance_data(instance: Instance) -> dict[str, Any]:
    fresh = Instance.objects.get(pk=instance.pk)
    return {"idInstance": fresh.pk, "wid": fresh.wid, "typeInstance": "whatsapp"}


class EventCtx:
    def __init__(self, h: Harness, account: Account, capture: Any) -> None:
        self.h = h
        self.account = account
        self.capture = capture  # django_capture_on_commit_callbacks: runs the send queue
        self.client = APIClient()

    def authorized(self) -> Instance:
        return notifying(observe(lambda: self.h.authorized(self.account)))

    def api(self, instance: Instance, method: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.capture(execute=True):
            r = self.client.post(method_url(instance, method), body, format="json")
        assert r.status_code == 200, r.content
        answer: dict[str, Any] = r.json()
        return answer


def event_incoming_message(e: EventCtx) -> None:
    instance = e.authorized()
    peer = observe(lambda: e.h.peer(instance, "John"))
    id_message = observe(lambda: e.h.peer_sends_text(instance, peer, "hello from the other side"))
    e.h.settle()
    [body] = [b for b in bodies(instance, "incomingMessageReceived") if b["idMessage"] == id_message]
    assert_documented(body)
    assert body["instanceData"] == instance_data(instance)
    assert body["senderData"]["chatId"] == body["senderData"]["sender"] == peer
    assert body["messageData"] == {
        "typeMessage": "textMessage",
        "textMessageData": {"textMessage": "hello from the other side"},
    }
    row = JournalMessage.objects.get(instance_id=instance.pk, id_message=id_message)
    assert (row.direction, row.chat_id, row.type_message) == ("incoming", peer, "textMessage")


def event_phone_sent_message(e: EventCtx) -> None:
    instance = e.authorized()
    peer = observe(lambda: e.h.peer(instance, "John"))
    id_message = observe(lambda: e.h.phone_sends_text(instance, peer, "typed on the phone"))
    e.h.settle()
    [body] = [b for b in bodies(instance, "outgoingMessageReceived") if b["idMessage"] == id_message]
    assert_documented(body)
    assert body["senderData"]["chatId"] == peer and body["senderData"]["sender"] == instance.wid
    assert body["messageData"]["textMessageData"] == {"textMessage": "typed on the phone"}
    row = JournalMessage.objects.get(instance_id=instance.pk, id_message=id_message)
    assert (row.direction, row.chat_id) == ("outgoing", peer)
    assert not bodies(instance, "incomingMessageReceived")


def event_receipt(e: EventCtx) -> None:
    instance = e.authorized()
    peer = observe(lambda: e.h.peer(instance, "John"))
    id_message = e.api(instance, "sendMessage", {"chatId": peer, "message": "receipts please"})["idMessage"]
    assert OutgoingMessage.objects.get(instance_id=instance.pk, id_message=id_message).status == OutgoingStatus.SENT
    observe(lambda: e.h.peer_reads(instance, peer, id_message))
    e.h.settle()
    [api] = [b for b in bodies(instance, "outgoingAPIMessageReceived") if b["idMessage"] == id_message]
    assert_documented(api)
    assert api["senderData"]["chatId"] == peer and api["messageData"]["textMessageData"] == {
        "textMessage": "receipts please"
    }
    statuses = [b for b in bodies(instance, "outgoingMessageStatus") if b["idMessage"] == id_message]
    for body in statuses:
        assert_documented(body)
        assert body["chatId"] == peer and body["sendByApi"] is True
    assert [b["status"] for b in statuses] == ["sent", "delivered", "read"]
    assert OutgoingMessage.objects.get(instance_id=instance.pk, id_message=id_message).status == OutgoingStatus.READ


def event_state_change(e: EventCtx) -> None:
    instance = notifying(observe(lambda: e.h.unpaired(e.account)))
    observe(lambda: e.h.pair(instance))
    e.h.settle()
    fresh = Instance.objects.get(pk=instance.pk)
    assert fresh.state == State.AUTHORIZED
    changes = bodies(instance, "stateInstanceChanged")
    for body in changes:
        assert_documented(body)
    assert changes[-1]["stateInstance"] == "authorized"
    assert changes[-1]["instanceData"] == instance_data(instance)


def event_call(e: EventCtx) -> None:
    instance = e.authorized()
    peer = observe(lambda: e.h.peer(instance, "Caller"))
    id_call = observe(lambda: e.h.peer_calls(instance, peer, "pickUp"))
    e.h.settle()
    calls = [b for b in bodies(instance, "incomingCall") if b["idMessage"] == id_call]
    for body in calls:
        assert_documented(body)
        assert body["from"] == peer
    assert [b["status"] for b in calls] == ["offer", "pickUp"]
    row = Call.objects.get(instance_id=instance.pk, id_call=id_call)
    assert (row.chat_id, row.direction) == (peer, "incoming")


def event_block(e: EventCtx) -> None:
    instance = e.authorized()
    peer = observe(lambda: e.h.peer(instance, "Blocker"))
    observe(lambda: e.h.peer_blocks(instance, peer))
    e.h.settle()
    [body] = bodies(instance, "incomingBlock")
    assert_documented(body)
    assert (body["chatId"], body["chatState"]) == (peer, "blocked")


def event_group_change(e: EventCtx) -> None:
    instance = e.authorized()
    peer = observe(lambda: e.h.peer(instance, "Admin"))
    group_id = observe(lambda: e.h.peer_adds_to_group(instance, peer, "Drawing club"))
    e.h.settle()
    # GREEN-API has no notification for it (§10.2): the chat list knows the group.
    assert ChatState.objects.get(instance_id=instance.pk, chat_id=group_id).name == "Drawing club"
    assert not Notification.objects.filter(instance_id=instance.pk, body__senderData__chatId=group_id).exists()


def event_status_posted(e: EventCtx) -> None:
    instance = e.authorized()
    peer = observe(lambda: e.h.peer(instance, "Poster"))
    id_message = observe(lambda: e.h.peer_posts_status(instance, peer, "my story"))
    e.h.settle()
    [body] = [b for b in bodies(instance, "incomingMessageReceived") if b["idMessage"] == id_message]
    assert_documented(body)
    assert body["senderData"]["chatId"] == STATUS_BROADCAST and body["senderData"]["sender"] == peer
    r = e.client.get(method_url(instance, "getIncomingStatuses"))
    assert r.status_code == 200
    assert [(s["idMessage"], s["chatId"]) for s in r.json() if s["idMessage"] == id_message] == [(id_message, peer)]


def event_status_viewed(e: EventCtx) -> None:
    instance = e.authorized()
    peer = observe(lambda: e.h.peer(instance, "Viewer"))
    id_message = e.api(instance, "sendTextStatus", {"message": "look", "participants": [peer]})["idMessage"]
    assert StatusReceipt.objects.get(instance_id=instance.pk, id_message=id_message, participant=peer).status == "sent"
    observe(lambda: e.h.peer_views_status(instance, id_message))
    e.h.settle()
    receipt = StatusReceipt.objects.get(instance_id=instance.pk, id_message=id_message, participant=peer)
    assert receipt.status == "read"
    r = e.client.get(method_url(instance, "getStatusStatistic"), {"idMessage": id_message})
    assert r.status_code == 200 and [(s["participant"], s["status"]) for s in r.json()] == [(peer, "read")]


def event_history_sync(e: EventCtx) -> None:
    instance = e.authorized()
    peer = observe(lambda: e.h.peer(instance, "Old Friend"))
    before = Notification.objects.filter(instance_id=instance.pk).count()
    observe(lambda: e.h.phone_syncs_history(instance, peer, 4))
    rows = JournalMessage.objects.filter(instance_id=instance.pk, chat_id=peer)
    assert rows.count() == 4 and {r.direction for r in rows} <= {"incoming", "outgoing"}
    # History is journal and chat list only: GREEN-API sends no notification for it.
    assert Notification.objects.filter(instance_id=instance.pk).count() == before
    assert ChatState.objects.filter(instance_id=instance.pk, chat_id=peer).exists()
    r = e.client.post(method_url(instance, "getChatHistory"), {"chatId": peer, "count": 10}, format="json")
    assert r.status_code == 200 and len(r.json()) == 4


# Each case: the event kind it makes the engine report, and the check.
EVENTS: dict[str, tuple[type, Callable[[EventCtx], None]]] = {
    "incoming_message": (events.MessageEvent, event_incoming_message),
    "phone_sent_message": (events.MessageEvent, event_phone_sent_message),
    "receipt": (events.ReceiptEvent, event_receipt),
    "state_change": (events.StateEvent, event_state_change),
    "call": (events.CallEvent, event_call),
    "block": (events.BlockEvent, event_block),
    "group_change": (events.GroupEvent, event_group_change),
    "status_posted": (events.MessageEvent, event_status_posted),
    "status_viewed": (events.StatusViewEvent, event_status_viewed),
    "history_sync": (events.HistoryEvent, event_history_sync),
}


@pytest.mark.parametrize("case", list(EVENTS))
def test_event(harness: Harness, account: Account, django_capture_on_commit_callbacks: Any, case: str) -> None:
    """What the other side does reaches the sink as the engine's event and comes out
    as GREEN-API's notification and the right journal rows."""
    kind, check = EVENTS[case]
    if kind not in harness.reports:
        pytest.skip(f"the {harness.engine} engine does not report {kind.__name__}")
    check(EventCtx(harness, account, django_capture_on_commit_callbacks))


def test_every_reported_kind_has_a_case_and_a_consumer(harness: Harness) -> None:
    """An engine may only report what the product consumes (the sink raises
    NoSubscriber otherwise), and the suite must make each kind happen."""
    union = set(typing.get_args(events.EngineEvent))
    assert harness.reports <= union
    consumed = set(sink.subscribers())
    assert harness.reports <= consumed, f"nobody consumes {harness.reports - consumed}"
    assert harness.reports <= {kind for kind, _ in EVENTS.values()}


def test_every_event_kind_is_checked_by_a_case() -> None:
    """Kinds no case makes happen: only those no engine here reports yet (QR and
    pairing codes are the synchronous ``current_qr``/``request_pairing_code`` on the
    emulator; an engine whose codes arrive later reports them and adds a case)."""
    union = set(typing.get_args(events.EngineEvent))
    uncovered = union - {kind for kind, _ in EVENTS.values()}
    reported = {kind for cls in HARNESSES.values() for kind in cls.reports}
    assert not (uncovered & reported), f"reported but never caused: {uncovered & reported}"


def test_build_body_matches_the_documented_examples(account: Account) -> None:
    """Engine-independent: each notifying event kind, built by the journals, has the
    envelope of API.md §10.4 (the engine cases above check the values they carry)."""
    from django.utils import timezone

    from journals.notifications import build_body

    instance = notifying(observe(lambda: HARNESSES["emulator"]().authorized(account)))
    now = timezone.now()
    text_data = {"typeMessage": "textMessage", "textMessageData": {"textMessage": "x"}}
    built = [
        events.MessageEvent("incoming", "79001234567@c.us", "A1", "79001234567@c.us", text_data, now),
        events.MessageEvent("outgoing", "79001234567@c.us", "A2", instance.wid, text_data, now),
        events.StateEvent("notAuthorized", now),
        events.CallEvent("C1", "79001234567@c.us", "offer", now),
        events.BlockEvent("79001234567@c.us", now),
    ]
    for event in built:
        body = build_body(instance, event)
        assert_documented(body)
        assert isinstance(body["timestamp"], int)
