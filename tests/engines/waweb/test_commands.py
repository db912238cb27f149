"""Commands the session process runs for web and worker processes (over the command
channel), against a client with neonize's surface: neonize's own ``NewClient`` whose
network calls answer as whatsmeow does once logged in (no WhatsApp is reachable
here), recording what it was asked. Checked: the idMessage -> WhatsApp id map and
the retry rule it gives sends, the batch contract, and the shapes of answers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

pytest.importorskip("neonize", reason="the waweb engine needs neonize (requirements.txt)")

from neonize.client import NewClient  # noqa: E402
from neonize.proto.Neonize_pb2 import Contact as NeonizeContact  # noqa: E402
from neonize.proto.Neonize_pb2 import (  # noqa: E402
    ContactInfo,
    Device,
    IsOnWhatsAppResponse,
    MessageDebugTimings,
    SendResponse,
    StatusPrivacy,
)
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (  # noqa: E402
    ContextInfo,
    ExtendedTextMessage,
    ImageMessage,
    Message,
)
from neonize.utils.enum import ReceiptType  # noqa: E402

from engines.contract import OutgoingPayload, TransportError  # noqa: E402
from engines.waweb.models import WawebMessage  # noqa: E402
from engines.waweb.session import Session  # noqa: E402
from engines.waweb.transport import payload_to_wire, result_from_wire  # noqa: E402
from instances.models import Instance, SessionLease  # noqa: E402
from tests.engines.waweb import neonize_events as ev  # noqa: E402
from tests.factories import make_instance  # noqa: E402

pytestmark = pytest.mark.django_db

PEER = "79001234567"


class RecordingClient(NewClient):
    """neonize's client; the calls that need WhatsApp answer as whatsmeow does."""

    sent: list[tuple[Any, Any]]
    timers: list[tuple[Any, int]]
    read: list[tuple[tuple[str, ...], Any, Any, Any]]
    revoked: list[tuple[Any, str]]

    def get_me(self) -> Device:
        return Device(
            JID=ev.jid("79005550001", device=7), LID=ev.jid("1", "lid"), PushName="Shop", Platform=""
        )

    def send_message(self, to: Any, message: Any, link_preview: bool = False, **_: Any) -> SendResponse:
        self.sent.append((to, message))
        timings = MessageDebugTimings(
            Queue=0,
            Marshal=0,
            GetParticipants=0,
            GetDevices=0,
            GroupEncrypt=0,
            PeerEncrypt=0,
            Send=0,
            Resp=0,
            Retry=0,
        )
        return SendResponse(Timestamp=1, ID=f"3EB0{len(self.sent):04d}", ServerID=0, DebugTimings=timings)

    def is_on_whatsapp(self, *numbers: str) -> list[IsOnWhatsAppResponse]:
        return [
            IsOnWhatsAppResponse(Query=n, JID=ev.jid(n.lstrip("+")), IsIn=n.endswith("7")) for n in numbers
        ]

    # whatsmeow's LID store: what WhatsApp's traffic taught this device (one pair).
    def get_lid_from_pn(self, jid: Any) -> Any:
        return ev.jid("120650379300963", "lid") if jid.User == "79001234567" else ev.jid("", "lid")

    def get_pn_from_lid(self, jid: Any) -> Any:
        return ev.jid("79001234567") if jid.User == "120650379300963" else ev.jid("")

    def set_disappearing_timer(self, jid: Any, timer: Any, setting_ts: Any = None) -> None:
        self.timers.append((jid, timer))

    def mark_read(self, *message_ids: str, chat: Any, sender: Any, receipt: Any, timestamp: Any = None) -> None:
        self.read.append((message_ids, chat, sender, receipt))

    def get_status_privacy(self) -> list[StatusPrivacy]:
        # "My contacts except…": everyone saved on the phone but the deny-list.
        return [StatusPrivacy(Type=StatusPrivacy.BLACKLIST, List=[ev.jid("79001230000")], IsDefault=True)]

    def revoke_message(self, chat: Any, sender: Any, message_id: str) -> SendResponse:
        self.revoked.append((chat, message_id))
        return self.send_message(chat, Message(conversation=""))


@pytest.fixture
def session(tmp_path: Path) -> Session:
    instance = make_instance(engine="waweb")
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="r", epoch=1, expires_at=timezone.now() + timedelta(minutes=5)
    )
    client = RecordingClient(str(tmp_path / "store.sqlite3"), uuid=f"cmd-{instance.pk}", new_device=True)
    client.sent, client.timers, client.read, client.revoked = [], [], [], []
    live = Session(Instance.objects.get(pk=instance.pk), 1, "r", client)
    live.connected = True
    live.install()
    return live


def receive(session: Session, *events: Any) -> None:
    """Messages from WhatsApp, through neonize's dispatcher into the session."""
    for event in events:
        ev.feed(session.client, event)
    session.pump()


@contextlib.contextmanager
def serving(tmp_path: Path, **settings: Any) -> Iterator[tuple[Instance, RecordingClient]]:
    """An authorized waweb instance whose session serves the command channel from a
    thread (with its own database connection), as the session process does."""
    import threading

    from django.db import connection

    from engines.channel import Listener
    from engines.models import CommandListener
    from instances.models import State
    from tests.processes import wait_for

    instance = make_instance(engine="waweb", settings_changes=settings)
    Instance.objects.filter(pk=instance.pk).update(
        state=State.AUTHORIZED, wid="79005550001@c.us", phone="79005550001"
    )
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="r", epoch=1, expires_at=timezone.now() + timedelta(minutes=5)
    )
    client = RecordingClient(str(tmp_path / "store.sqlite3"), uuid=f"serve-{instance.pk}", new_device=True)
    client.sent, client.timers, client.read, client.revoked = [], [], [], []
    live = Session(Instance.objects.get(pk=instance.pk), 1, "r", client)
    live.connected = True
    live.install()
    stop = threading.Event()

    def serve() -> None:
        listener = Listener(instance.pk, 1, "r")
        listener.start()
        try:
            live.serve(listener, stop)
        finally:
            listener.stop()
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: CommandListener.objects.filter(instance_id=instance.pk).exists(), timeout=30, what="listener"
        )
        yield Instance.objects.get(pk=instance.pk), client
    finally:
        stop.set()
        thread.join(timeout=30)


def payload(id_message: str, **data: Any) -> dict[str, Any]:
    return payload_to_wire(
        OutgoingPayload(
            id_message=id_message, chat_id="79001234567@c.us", type_message="textMessage", data=data
        )
    )


def test_a_batch_is_sent_in_order_and_each_message_mapped(session: Session) -> None:
    answers = session.handle(
        "send", {"payloads": [payload("BAE5A1", message="one"), payload("BAE5A2", message="two")]}
    )

    assert [result_from_wire(a) for a in answers] == [result_from_wire({"status": "sent"})] * 2
    assert [m for _, m in session.client.sent] == ["one", "two"]
    assert session.client.sent[0][0].Server == "s.whatsapp.net"
    mapped = dict(WawebMessage.objects.values_list("id_message", "wa_id"))
    assert mapped == {"BAE5A1": "3EB00001", "BAE5A2": "3EB00002"}


def test_a_retry_of_a_message_that_went_out_is_not_sent_again(session: Session) -> None:
    session.handle("send", {"payloads": [payload("BAE5B1", message="once")]})
    again = session.handle("send", {"payloads": [payload("BAE5B1", message="once")]})

    assert again == [{"status": "sent"}]
    assert len(session.client.sent) == 1


def test_a_retry_after_a_crash_inside_the_send_sends_again(session: Session) -> None:
    # The map row exists without WhatsApp's id: the previous attempt died inside
    # send_message (the documented window); it may not have gone out, so it is sent.
    WawebMessage.objects.create(
        instance_id=session.instance.pk, id_message="BAE5C1", chat_id="79001234567@c.us"
    )

    session.handle("send", {"payloads": [payload("BAE5C1", message="maybe")]})

    assert len(session.client.sent) == 1
    assert WawebMessage.objects.get(id_message="BAE5C1").wa_id == "3EB00001"


def test_a_quote_of_an_unknown_message_fails_visibly_and_the_batch_goes_on(session: Session) -> None:
    answers = session.handle(
        "send",
        {
            "payloads": [
                payload("BAE5D1", message="re", quotedMessageId="X"),
                payload("BAE5D2", message="next"),
            ]
        },
    )

    first = result_from_wire(answers[0])
    assert isinstance(first, TransportError) and first.permanent
    assert "X is not known" in str(first)
    assert answers[1] == {"status": "sent"}


def test_a_reply_quotes_the_received_message(session: Session) -> None:
    receive(session, ev.message("3A0001", PEER, Message(conversation="is it open?")))

    session.handle("send", {"payloads": [payload("BAE5Q1", message="yes", quotedMessageId="3A0001")]})

    [(_, sent)] = session.client.sent
    context = sent.extendedTextMessage.contextInfo
    assert sent.extendedTextMessage.text == "yes"
    assert (context.stanzaID, context.participant) == ("3A0001", f"{PEER}@s.whatsapp.net")
    assert context.quotedMessage.conversation == "is it open?"


def test_a_reply_to_our_own_send_quotes_it_by_our_id(session: Session) -> None:
    session.handle("send", {"payloads": [payload("BAE5Q2", message="price list")]})
    session.handle("send", {"payloads": [payload("BAE5Q3", message="updated", quotedMessageId="BAE5Q2")]})

    context = session.client.sent[1][1].extendedTextMessage.contextInfo
    assert (context.stanzaID, context.participant) == ("3EB00001", "79005550001@s.whatsapp.net")
    assert context.quotedMessage.conversation == "price list"


def test_a_forward_sends_the_kept_original_marked_forwarded(session: Session) -> None:
    photo = ImageMessage(
        URL="https://mmg.whatsapp.net/o1",
        mimetype="image/jpeg",
        caption="menu",
        mediaKey=b"k" * 32,
        directPath="/v/t62/o1",
        fileSHA256=b"s" * 32,
        fileEncSHA256=b"e" * 32,
        fileLength=1234,
    )
    receive(session, ev.message("3A0002", PEER, Message(imageMessage=photo)))
    wire = payload_to_wire(
        OutgoingPayload(
            id_message="BAE5F1",
            chat_id="79001230007@c.us",
            type_message="imageMessage",
            data={"urlFile": "", "caption": "menu", "isForwarded": True, "forwardingScore": 1, "forwardedFrom": "3A0002"},
        )
    )

    assert session.handle("send", {"payloads": [wire]}) == [{"status": "sent"}]

    [(to, sent)] = session.client.sent
    assert to.User == "79001230007"
    assert (sent.imageMessage.mediaKey, sent.imageMessage.directPath) == (photo.mediaKey, photo.directPath)
    assert sent.imageMessage.contextInfo.isForwarded
    assert sent.imageMessage.contextInfo.forwardingScore == 1


def test_a_forwarded_text_is_forwarded_once_more_without_its_quote(session: Session) -> None:
    text = ExtendedTextMessage(
        text="see this",
        contextInfo=ContextInfo(isForwarded=True, forwardingScore=2, stanzaID="3A0000", participant="1@s.whatsapp.net"),
    )
    receive(session, ev.message("3A0003", PEER, Message(extendedTextMessage=text)))
    wire = payload_to_wire(
        OutgoingPayload(
            id_message="BAE5F2",
            chat_id="79001230007@c.us",
            type_message="textMessage",
            data={"message": "see this", "isForwarded": True, "forwardingScore": 1, "forwardedFrom": "3A0003"},
        )
    )
    session.handle("send", {"payloads": [wire]})

    context = session.client.sent[0][1].extendedTextMessage.contextInfo
    assert (context.isForwarded, context.forwardingScore, context.stanzaID) == (True, 3, "")


def test_a_forward_of_a_message_not_kept_is_rebuilt_from_the_journal(session: Session) -> None:
    wire = payload_to_wire(
        OutgoingPayload(
            id_message="BAE5F3",
            chat_id="79001230007@c.us",
            type_message="textMessage",
            data={"message": "old one", "isForwarded": True, "forwardingScore": 1, "forwardedFrom": "GONE"},
        )
    )
    session.handle("send", {"payloads": [wire]})

    sent = session.client.sent[0][1].extendedTextMessage
    assert (sent.text, sent.contextInfo.isForwarded) == ("old one", True)


def test_read_chat_sends_read_receipts_for_unread_received_messages_once(session: Session) -> None:
    receive(
        session,
        ev.message("3A0010", PEER, Message(conversation="one")),
        ev.message("3A0011", PEER, Message(conversation="two")),
        ev.message("3A0012", "79001230007", Message(conversation="elsewhere")),
    )

    assert session.handle("read_chat", {"chat_id": f"{PEER}@c.us", "id_message": ""}) == 2
    assert session.handle("read_chat", {"chat_id": f"{PEER}@c.us", "id_message": ""}) == 0

    [(ids, chat, sender, receipt)] = session.client.read
    assert ids == ("3A0010", "3A0011")
    assert (chat.User, chat.Server, sender.User) == (PEER, "s.whatsapp.net", PEER)
    assert receipt == ReceiptType.READ


def test_read_chat_up_to_a_message_leaves_the_later_ones_unread(session: Session) -> None:
    later = ev.message("3A0021", PEER, Message(conversation="later"))
    later.Info.Timestamp += 60
    receive(session, ev.message("3A0020", PEER, Message(conversation="first")), later)

    assert session.handle("read_chat", {"chat_id": f"{PEER}@c.us", "id_message": "3A0020"}) == 1
    assert session.client.read[0][0] == ("3A0020",)
    assert session.handle("read_chat", {"chat_id": f"{PEER}@c.us", "id_message": ""}) == 1
    assert session.client.read[1][0] == ("3A0021",)


def test_messages_the_phone_read_need_no_receipt(session: Session) -> None:
    receive(session, ev.message("3A0030", PEER, Message(conversation="seen on the phone")))
    self_read = ev.receipt(PEER, ["3A0030"], "READ_SELF")
    self_read.MessageSource.IsFromMe = True
    receive(session, self_read)

    assert session.handle("read_chat", {"chat_id": f"{PEER}@c.us", "id_message": ""}) == 0
    assert session.client.read == []


def test_a_location_goes_out_as_a_whatsapp_location(session: Session) -> None:
    wire = payload_to_wire(
        OutgoingPayload(
            id_message="BAE5E1",
            chat_id="79001234567@c.us",
            type_message="locationMessage",
            data={"latitude": 55.75, "longitude": 37.61, "nameLocation": "Red Square", "address": "Moscow"},
        )
    )
    session.handle("send", {"payloads": [wire]})

    [(_, message)] = session.client.sent
    assert message.locationMessage.degreesLatitude == 55.75
    assert message.locationMessage.name == "Red Square"


def test_check_whatsapp_and_the_disappearing_timer_in_nanoseconds(session: Session) -> None:
    known = {"exists": True, "phone": "79001234567", "lid": "120650379300963@lid"}
    assert session.handle("check_whatsapp", {"chat_id": "79001234567@c.us"}) == known
    assert session.handle("check_whatsapp", {"chat_id": "120650379300963@lid"}) == known
    # On WhatsApp, but no LID in the store: none is made up.
    assert session.handle("check_whatsapp", {"chat_id": "79001234577@c.us"}) == {
        "exists": True,
        "phone": "79001234577",
        "lid": "",
    }
    assert session.handle("check_whatsapp", {"chat_id": "79001234560@c.us"}) == {"exists": False}
    with pytest.raises(TransportError) as unknown:
        session.handle("check_whatsapp", {"chat_id": "100000000000001@lid"})
    assert unknown.value.permanent

    session.handle("set_disappearing", {"chat_id": "79001234567@c.us", "expiration": 604800})

    [(jid, timer)] = session.client.timers
    assert (jid.User, timer) == ("79001234567", 604800 * 1_000_000_000)


def test_commands_that_need_whatsapp_wait_for_the_connection(session: Session) -> None:
    session.connected = False
    with pytest.raises(TransportError) as caught:
        session.handle("check_whatsapp", {"phone": "79001234567"})
    assert not caught.value.permanent
    assert "not up" in str(caught.value)


@pytest.mark.django_db(transaction=True)
def test_a_queued_send_reaches_the_session_through_the_channel(tmp_path: Path) -> None:
    """sendMessage -> the queue -> the drain (a worker) -> the channel -> the session's
    serve loop (a thread here, with its own database connection) -> the client."""
    import threading

    from django.db import connection
    from rest_framework.test import APIClient

    from engines.channel import Listener
    from instances.models import State
    from messaging.models import OutgoingMessage, OutgoingStatus
    from tests.conftest import method_url
    from tests.processes import wait_for

    instance = make_instance(engine="waweb", settings_changes={"delaySendMessagesMilliseconds": 500})
    Instance.objects.filter(pk=instance.pk).update(
        state=State.AUTHORIZED, wid="79005550001@c.us", phone="79005550001"
    )
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="r", epoch=1, expires_at=timezone.now() + timedelta(minutes=5)
    )
    client = RecordingClient(str(tmp_path / "store.sqlite3"), uuid=f"drain-{instance.pk}", new_device=True)
    client.sent, client.timers, client.read, client.revoked = [], [], [], []
    live = Session(Instance.objects.get(pk=instance.pk), 1, "r", client)
    live.connected = True
    stop = threading.Event()

    def serve() -> None:
        listener = Listener(instance.pk, 1, "r")
        listener.start()
        try:
            live.serve(listener, stop)
        finally:
            listener.stop()
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        from engines.models import CommandListener

        wait_for(
            lambda: CommandListener.objects.filter(instance_id=instance.pk).exists(),
            timeout=30,
            what="listener",
        )
        r = APIClient().post(
            method_url(instance, "sendMessage"),
            {"chatId": "79001234567@c.us", "message": "through"},
            format="json",
        )
        id_message = r.json()["idMessage"]
        row = wait_for(
            lambda: OutgoingMessage.objects.filter(id_message=id_message, status=OutgoingStatus.SENT).first(),
            timeout=60,
            what="the message sent",
        )
        assert row is not None
        assert [m for _, m in client.sent] == ["through"]
        assert WawebMessage.objects.get(id_message=id_message).wa_id == "3EB00001"
    finally:
        stop.set()
        thread.join(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_mark_incoming_messages_readed_reads_through_the_session_itself(tmp_path: Path) -> None:
    """markIncomingMessagesReaded reads the chat while the session applies the
    message: the read runs in the session's own thread (it cannot wait on the
    channel that same thread serves), and the receipt goes out at once."""
    from journals.models import JournalMessage
    from tests.processes import wait_for

    with serving(tmp_path, markIncomingMessagesReaded=True) as (instance, client):
        ev.feed(client, ev.message("3A0040", PEER, Message(conversation="hi")))
        wait_for(lambda: client.read, timeout=30, what="the read receipt")

    assert client.read[0][0] == ("3A0040",)
    assert JournalMessage.objects.get(instance_id=instance.pk, id_message="3A0040").is_read

class AddressBook:
    """whatsmeow's contact store as neonize's ``client.contact`` hands it over
    (the real one needs a logged-in Go client: without one, the call aborts)."""

    def __init__(self, *entries: NeonizeContact) -> None:
        self.entries = list(entries)

    def get_all_contacts(self) -> list[NeonizeContact]:
        return self.entries


def contact(user: str, server: str = "s.whatsapp.net", **info: Any) -> NeonizeContact:
    fields = {"Found": True, "FirstName": "", "FullName": "", "PushName": "", "BusinessName": "", "RedactedPhone": ""}
    return NeonizeContact(JID=ev.jid(user, server), Info=ContactInfo(**{**fields, **info}))


def test_contacts_come_from_whatsmeows_contact_store(session: Session) -> None:
    session.client.contact = AddressBook(
        contact(PEER, FirstName="Ann", FullName="Ann Lee", PushName="annie"),
        contact("79001230007", BusinessName="Bakery"),
        contact("123456789", "lid", PushName="hidden"),
    )
    answer = session.handle("contacts", {})

    assert answer == [
        {"chat_id": f"{PEER}@c.us", "name": "annie", "contact_name": "Ann Lee"},
        {"chat_id": "79001230007@c.us", "name": "Bakery", "contact_name": ""},
    ]
    session.connected = False
    with pytest.raises(TransportError):
        session.handle("contacts", {})


@pytest.mark.django_db(transaction=True)
def test_get_contacts_answers_in_green_api_shape_through_the_channel(tmp_path: Path) -> None:
    from rest_framework.test import APIClient

    from tests.conftest import method_url

    with serving(tmp_path) as (instance, client):
        client.contact = AddressBook(contact(PEER, FullName="Ann Lee", PushName="annie"))
        r = APIClient().get(method_url(instance, "getContacts"))

    assert r.status_code == 200
    assert r.json() == [{"id": f"{PEER}@c.us", "name": "annie", "contactName": "Ann Lee", "type": "user"}]


def test_read_chat_after_a_history_sync_reads_what_the_phone_had_not(session: Session) -> None:
    import time

    from instances import services

    services.update_settings(session.instance, {"enableMessagesHistory": True})
    now = int(time.time())
    chat = f"{PEER}@s.whatsapp.net"
    sync = ev.history(
        ev.conversation(chat, ("3EB0H5", "new", False, now - 10), ("3EB0H4", "old", False, now - 20), unread=1)
    )
    receive(session, sync)

    assert session.handle("read_chat", {"chat_id": f"{PEER}@c.us", "id_message": ""}) == 1
    assert session.client.read[0][0] == ("3EB0H5",)
    session.handle("send", {"payloads": [payload("BAE5H1", message="sorry", quotedMessageId="3EB0H4")]})
    assert session.client.sent[0][1].extendedTextMessage.contextInfo.quotedMessage.conversation == "old"


@pytest.mark.django_db(transaction=True)
def test_a_text_status_reaches_the_status_audience_and_its_viewers_are_counted(tmp_path: Path) -> None:
    """sendTextStatus -> the queue -> the session posts to status@broadcast; the
    audience is whatsmeow's (saved contacts less the deny-list); a viewer's read
    receipt moves its statistic; deleteStatus revokes it."""
    from rest_framework.test import APIClient

    from messaging.models import OutgoingMessage, OutgoingStatus
    from statuses.models import StatusReceipt
    from tests.conftest import method_url
    from tests.processes import wait_for

    with serving(tmp_path, delaySendMessagesMilliseconds=500) as (instance, client):
        client.contact = AddressBook(
            contact(PEER, FullName="Ann Lee"),
            contact("79001230000", FullName="Denied"),
            contact("79001239999", PushName="only seen, not saved"),
        )
        r = APIClient().post(
            method_url(instance, "sendTextStatus"),
            {"message": "open till 9", "backgroundColor": "#228B22", "font": "SERIF"},
            format="json",
        )
        assert r.status_code == 200, r.content
        id_message = r.json()["idMessage"]
        wait_for(
            lambda: OutgoingMessage.objects.filter(id_message=id_message, status=OutgoingStatus.SENT).exists(),
            timeout=60,
            what="the status posted",
        )
        [(to, posted)] = client.sent
        assert (to.User, to.Server) == ("status", "broadcast")
        assert posted.extendedTextMessage.text == "open till 9"
        assert posted.extendedTextMessage.backgroundArgb == 0xFF228B22
        audience = set(StatusReceipt.objects.filter(id_message=id_message).values_list("participant", flat=True))
        assert audience == {f"{PEER}@c.us"}

        viewed = ev.receipt(PEER, ["3EB00001"], "READ")
        viewed.MessageSource.Chat.CopyFrom(ev.jid("status", "broadcast"))
        ev.feed(client, viewed)
        wait_for(
            lambda: StatusReceipt.objects.filter(id_message=id_message, participant=f"{PEER}@c.us", status="read").exists(),
            timeout=30,
            what="the viewer's read",
        )

        r = APIClient().post(method_url(instance, "deleteStatus"), {"idMessage": id_message}, format="json")
        assert r.status_code == 200, r.content
        assert [(c.User, wa_id) for c, wa_id in client.revoked] == [("status", "3EB00001")]


def test_a_status_for_chosen_participants_is_refused_with_the_reason() -> None:
    from rest_framework.test import APIClient

    from instances.models import State
    from messaging.models import OutgoingMessage
    from tests.conftest import method_url

    instance = make_instance(engine="waweb")
    Instance.objects.filter(pk=instance.pk).update(state=State.AUTHORIZED, wid="79005550001@c.us")
    r = APIClient().post(
        method_url(instance, "sendTextStatus"),
        {"message": "only you", "participants": [f"{PEER}@c.us"]},
        format="json",
    )

    assert r.status_code == 400
    assert "status privacy audience" in r.json()["message"]
    assert not OutgoingMessage.objects.filter(instance=instance).exists()
