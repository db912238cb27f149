"""neonize events through the waweb session into the sink: real, serialised
whatsmeow events are fed through neonize's own dispatcher (``client.event.execute``,
as the Go side calls it) to a real ``NewClient`` that never connects; the session
applies them and the GREEN-API notifications, states and QR codes are checked in the
database and over the wire. Only ``get_me`` is answered by a subclass: whatsmeow
aborts the process on it without a login."""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

pytest.importorskip("neonize", reason="the waweb engine needs neonize (requirements-waweb.txt)")

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from neonize.client import NewClient  # noqa: E402
from neonize.proto.Neonize_pb2 import Device  # noqa: E402
from neonize.proto.waCommon.WACommon_pb2 import MessageKey  # noqa: E402
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (  # noqa: E402
    Message,
    MessageContextInfo,
    PollCreationMessage,
    PollEncValue,
    PollUpdateMessage,
    PollVoteMessage,
)

from engines.waweb import session as waweb_session  # noqa: E402
from engines.waweb.models import WawebMessage, WawebSession  # noqa: E402
from engines.waweb.session import Session, Stop  # noqa: E402
from instances import services  # noqa: E402
from instances.models import Instance, SessionLease, State  # noqa: E402
from journals.models import Notification  # noqa: E402
from tests.conftest import method_url  # noqa: E402
from tests.engines.waweb import neonize_events as ev  # noqa: E402
from tests.factories import make_instance  # noqa: E402

pytestmark = pytest.mark.django_db

ME = "79005550001"
PEER = "79001234567"
WEBHOOKS = {
    "incomingWebhook": True,
    "outgoingMessageWebhook": True,
    "stateWebhook": True,
    "incomingCallWebhook": True,
    "outgoingWebhook": True,
    "deletedMessageWebhook": True,
    "editedMessageWebhook": True,
    "pollMessageWebhook": True,
}


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class LoggedInClient(NewClient):
    """neonize's client; ``get_me`` answers as whatsmeow does once logged in, and
    ``download_any`` as WhatsApp's media servers would: the file of a known media
    key, or whatsmeow's error (an expired or unknown file)."""

    cdn: dict[bytes, bytes] = {}

    def get_me(self) -> Device:
        return Device(
            JID=ev.jid(ME, device=7), LID=ev.jid("123456789012345", "lid"), PushName="Shop", Platform=""
        )

    def download_any(self, message: Message, path: str | None = None) -> bytes | None:
        from neonize.exc import DownloadError

        key = message.imageMessage.mediaKey or message.documentMessage.mediaKey
        if key not in self.cdn:
            raise DownloadError("failed to download media: 404 Not Found")
        return self.cdn[key]


@pytest.fixture
def waweb(tmp_path: Path) -> tuple[Instance, Session]:
    instance = make_instance(engine="waweb", settings_changes=WEBHOOKS)
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="test-runner", epoch=3, expires_at=timezone.now() + timedelta(minutes=5)
    )
    client = LoggedInClient(str(tmp_path / "store.sqlite3"), uuid=f"test-{instance.pk}", new_device=True)
    session = Session(instance, 3, "test-runner", client)
    session.install()
    return instance, session


def bodies(instance: Instance, kind: str) -> list[dict[str, Any]]:
    return list(
        Notification.objects.filter(instance=instance, type_webhook=kind)
        .order_by("receipt_id")
        .values_list("body", flat=True)
    )


def test_connected_authorizes_the_instance_with_the_linked_account(waweb: tuple[Instance, Session]) -> None:
    instance, session = waweb
    ev.feed(session.client, ev.connected())
    session.pump()

    instance.refresh_from_db()
    assert (instance.state, instance.wid, instance.profile_name) == (State.AUTHORIZED, f"{ME}@c.us", "Shop")
    assert WawebSession.objects.get(instance_id=instance.pk).device_jid == f"{ME}:7@s.whatsapp.net"
    [body] = bodies(instance, "stateInstanceChanged")
    assert body["stateInstance"] == "authorized"


def test_an_incoming_text_becomes_incoming_message_received(waweb: tuple[Instance, Session]) -> None:
    instance, session = waweb
    ev.feed(session.client, ev.message("3EB0AA01", PEER, Message(conversation="hello there")))
    session.pump()

    [body] = bodies(instance, "incomingMessageReceived")
    assert body["idMessage"] == "3EB0AA01"
    assert body["senderData"]["chatId"] == f"{PEER}@c.us"
    assert body["senderData"]["sender"] == f"{PEER}@c.us"
    assert body["senderData"]["senderName"] == "John"
    assert body["messageData"] == {
        "typeMessage": "textMessage",
        "textMessageData": {"textMessage": "hello there"},
    }
    assert body["timestamp"] == 1_767_000_000


def test_a_message_typed_on_the_phone_becomes_outgoing_message_received(
    waweb: tuple[Instance, Session],
) -> None:
    instance, session = waweb
    ev.feed(session.client, ev.connected())
    ev.feed(
        session.client,
        ev.message("3EB0AA02", PEER, Message(conversation="sent from phone"), from_me=True, me=ME),
    )
    session.pump()

    [body] = bodies(instance, "outgoingMessageReceived")
    assert body["idMessage"] == "3EB0AA02"
    assert body["senderData"]["chatId"] == f"{PEER}@c.us"
    assert body["messageData"]["textMessageData"]["textMessage"] == "sent from phone"


def test_a_location_and_a_revoke_keep_green_api_shapes(waweb: tuple[Instance, Session]) -> None:
    from neonize.proto.waCommon.WACommon_pb2 import MessageKey
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import LocationMessage, ProtocolMessage

    instance, session = waweb
    location = Message(
        locationMessage=LocationMessage(
            degreesLatitude=55.75, degreesLongitude=37.61, name="Red Square", address="Moscow"
        )
    )
    revoke = Message(
        protocolMessage=ProtocolMessage(type=ProtocolMessage.REVOKE, key=MessageKey(ID="3EB0AA03"))
    )
    ev.feed(session.client, ev.message("3EB0AA03", PEER, location))
    ev.feed(session.client, ev.message("3EB0AA04", PEER, revoke))
    session.pump()

    first, second = bodies(instance, "incomingMessageReceived")
    assert first["messageData"]["typeMessage"] == "locationMessage"
    assert first["messageData"]["locationMessageData"]["latitude"] == 55.75
    assert first["messageData"]["locationMessageData"]["nameLocation"] == "Red Square"
    assert second["messageData"] == {
        "typeMessage": "deletedMessage",
        "deletedMessageData": {"stanzaId": "3EB0AA03"},
    }


def test_a_read_receipt_moves_our_api_message_on(
    waweb: tuple[Instance, Session], api_client: APIClient
) -> None:
    instance, session = waweb
    Instance.objects.filter(pk=instance.pk).update(state=State.AUTHORIZED, wid=f"{ME}@c.us", phone=ME)
    r = api_client.post(
        method_url(instance, "sendMessage"), {"chatId": f"{PEER}@c.us", "message": "hi"}, format="json"
    )
    id_message = r.json()["idMessage"]
    from messaging.models import OutgoingMessage, OutgoingStatus
    from messaging.services import record_status_by_id_message

    # As the drain records it after the session answered the send (WhatsApp's id mapped).
    record_status_by_id_message(instance.pk, id_message, OutgoingStatus.SENT)
    WawebMessage.objects.create(
        instance_id=instance.pk, id_message=id_message, wa_id="3EB0FF01", chat_id=f"{PEER}@c.us"
    )

    ev.feed(session.client, ev.receipt(PEER, ["3EB0FF01", "3EB0UNKNOWN"], "READ"))
    session.pump()

    assert OutgoingMessage.objects.get(instance=instance, id_message=id_message).status == OutgoingStatus.READ
    statuses = [
        b["status"] for b in bodies(instance, "outgoingMessageStatus") if b["idMessage"] == id_message
    ]
    assert statuses[-1] == "read"


def test_a_call_offer_becomes_incoming_call(waweb: tuple[Instance, Session]) -> None:
    instance, session = waweb
    ev.feed(session.client, ev.call_offer(PEER, "CALL0001"))
    session.pump()

    [body] = bodies(instance, "incomingCall")
    assert body["from"] == f"{PEER}@c.us"
    assert body["idMessage"] == "CALL0001"
    assert body["status"] == "offer"


def test_logged_out_erases_the_device_and_ends_the_session(waweb: tuple[Instance, Session]) -> None:
    instance, session = waweb
    ev.feed(session.client, ev.connected())
    session.pump()
    ev.feed(session.client, ev.logged_out())

    with pytest.raises(Stop) as stopped:
        session.pump()

    assert stopped.value.code == waweb_session.EXIT_LOGGED_OUT
    instance.refresh_from_db()
    assert (instance.state, instance.wid) == (State.NOT_AUTHORIZED, "")
    assert WawebSession.objects.get(instance_id=instance.pk).device_jid == ""
    assert [b["stateInstance"] for b in bodies(instance, "stateInstanceChanged")] == [
        "authorized",
        "notAuthorized",
    ]


def test_a_temporary_ban_is_a_yellow_card(waweb: tuple[Instance, Session]) -> None:
    instance, session = waweb
    ev.feed(session.client, ev.connected())
    ev.feed(session.client, ev.temporary_ban())

    with pytest.raises(Stop) as stopped:
        session.pump()

    assert stopped.value.code == waweb_session.EXIT_BANNED
    instance.refresh_from_db()
    assert instance.state == State.YELLOW_CARD
    assert bodies(instance, "stateInstanceChanged")[-1]["stateInstance"] == "yellowCard"


def test_a_session_that_lost_its_lease_changes_nothing(waweb: tuple[Instance, Session]) -> None:
    instance, session = waweb
    SessionLease.objects.filter(instance_id=instance.pk).update(runner_id="someone-else", epoch=4)
    ev.feed(session.client, ev.connected())
    session.pump()

    instance.refresh_from_db()
    assert instance.state == State.NOT_AUTHORIZED
    assert not bodies(instance, "stateInstanceChanged")


def test_qr_codes_reach_the_qr_method(waweb: tuple[Instance, Session], api_client: APIClient) -> None:
    instance, session = waweb
    r = api_client.get(method_url(instance, "qr"))
    assert r.status_code == 200
    assert r.json()["type"] == "error"
    assert "no QR code yet" in r.json()["message"]

    ev.feed_qr(session.client, "2@first-code,key,key,key")
    session.pump()
    first = api_client.get(method_url(instance, "qr")).json()
    ev.feed_qr(session.client, "2@second-code,key,key,key")
    session.pump()
    second = api_client.get(method_url(instance, "qr")).json()

    assert first["type"] == second["type"] == "qrCode"
    assert first["message"] != second["message"]
    import base64

    assert base64.b64decode(second["message"]).startswith(b"\x89PNG")
    services.change_state(instance, State.STARTING)  # the keys stay until a logout


def test_a_received_image_is_downloaded_stored_and_its_link_served(waweb: tuple[Instance, Session]) -> None:
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ImageMessage

    instance, session = waweb
    session.client.cdn = {b"k" * 32: PNG}
    image = ImageMessage(mimetype="image/png", caption="a dot", mediaKey=b"k" * 32, directPath="/v/1", fileLength=len(PNG))
    ev.feed(session.client, ev.message("3EB0AB01", PEER, Message(imageMessage=image)))
    session.pump()

    [body] = bodies(instance, "incomingMessageReceived")
    file = body["messageData"]["fileMessageData"]
    assert (body["messageData"]["typeMessage"], file["caption"], file["mimeType"]) == ("imageMessage", "a dot", "image/png")
    served = APIClient().get("/" + file["downloadUrl"].split("://", 1)[1].split("/", 1)[1])
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == PNG  # type: ignore[attr-defined]


def test_a_file_that_cannot_be_downloaded_still_arrives_without_a_link(waweb: tuple[Instance, Session]) -> None:
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import DocumentMessage

    instance, session = waweb
    document = DocumentMessage(mimetype="application/pdf", fileName="offer.pdf", mediaKey=b"x" * 32, directPath="/v/2")
    ev.feed(session.client, ev.message("3EB0AB02", PEER, Message(documentMessage=document)))
    session.pump()

    [body] = bodies(instance, "incomingMessageReceived")
    file = body["messageData"]["fileMessageData"]
    assert (file["fileName"], file["downloadUrl"]) == ("offer.pdf", "")


def test_history_sync_fills_the_journal_and_chat_list_without_notifications(waweb: tuple[Instance, Session]) -> None:
    from journals.models import ChatState, JournalMessage

    instance, session = waweb
    services.update_settings(instance, {"enableMessagesHistory": True})
    chat = f"{PEER}@s.whatsapp.net"
    sync = ev.history(
        ev.conversation(
            chat,
            ("3EB0H3", "are you there?", False, 1_766_000_300),
            ("3EB0H2", "yes", True, 1_766_000_200),
            ("3EB0H1", "hi", False, 1_766_000_100),
            name="John Smith",
            unread=1,
        )
    )
    ev.feed(session.client, sync)
    session.pump()

    rows = {
        m.id_message: (m.direction, m.is_read, m.message_data["textMessageData"]["textMessage"])
        for m in JournalMessage.objects.filter(instance_id=instance.pk)
    }
    assert rows == {
        "3EB0H1": ("incoming", True, "hi"),
        "3EB0H2": ("outgoing", True, "yes"),
        "3EB0H3": ("incoming", False, "are you there?"),
    }
    listed = ChatState.objects.get(instance_id=instance.pk, chat_id=f"{PEER}@c.us")
    assert (listed.name, int(listed.last_activity.timestamp())) == ("John Smith", 1_766_000_300)
    assert Notification.objects.filter(instance=instance).count() == 0
    assert WawebMessage.objects.count() == 0  # nothing of ours: no receipts mapped to it
    session.connected = True
    assert session.handle("profile", {})["history_sync_progress"] == 40


def test_history_sync_is_ignored_without_enable_messages_history(waweb: tuple[Instance, Session]) -> None:
    from journals.models import JournalMessage

    instance, session = waweb
    ev.feed(session.client, ev.history(ev.conversation(f"{PEER}@s.whatsapp.net", ("3EB0H9", "old", False, 1_766_000_000))))
    session.pump()

    assert not JournalMessage.objects.filter(instance_id=instance.pk).exists()


# --- Poll votes ----------------------------------------------------------------------
# neonize's own vote builder needs a connected client (offline it answers "client is
# nil"), so the votes here are encrypted as a WhatsApp client does (whatsmeow's
# msgsecret.go), with HKDF written out from RFC 5869 rather than the library the
# session uses.

SECRET = bytes(range(32))


def _hkdf_sha256(secret: bytes, info: bytes) -> bytes:
    prk = hmac.new(b"\x00" * 32, secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def _vote(
    wa_id: str, voter: str, poll_id: str, creator: str, choices: list[str], *, from_me_key: bool, remote: str
) -> Any:
    """``voter`` votes ``choices`` on poll ``poll_id`` made by ``creator`` (numbers);
    the key is as the voter's phone writes it."""
    voter_jid, creator_jid = f"{voter}@s.whatsapp.net", f"{creator}@s.whatsapp.net"
    key = _hkdf_sha256(SECRET, f"{poll_id}{creator_jid}{voter_jid}Poll Vote".encode())
    plain = PollVoteMessage(selectedOptions=[hashlib.sha256(c.encode()).digest() for c in choices])
    iv = os.urandom(12)
    payload = AESGCM(key).encrypt(iv, plain.SerializeToString(), f"{poll_id}\x00{voter_jid}".encode())
    update = PollUpdateMessage(
        pollCreationMessageKey=MessageKey(remoteJID=f"{remote}@s.whatsapp.net", fromMe=from_me_key, ID=poll_id),
        vote=PollEncValue(encPayload=payload, encIV=iv),
        senderTimestampMS=1_767_000_050_000,
    )
    return ev.message(wa_id, PEER, Message(pollUpdateMessage=update))


def _poll(multiple: bool = False) -> Message:
    return Message(
        pollCreationMessage=PollCreationMessage(
            name="Lunch?",
            options=[PollCreationMessage.Option(optionName=n) for n in ("Pizza", "Sushi", "Soup")],
            selectableOptionsCount=0 if multiple else 1,
        ),
        messageContextInfo=MessageContextInfo(messageSecret=SECRET),
    )


def test_a_vote_on_our_poll_becomes_poll_update_message(waweb: tuple[Instance, Session]) -> None:
    instance, session = waweb
    ev.feed(session.client, ev.connected())
    # The poll, sent from the phone: the session keeps it with its secret.
    ev.feed(session.client, ev.message("3EB0PO11", PEER, _poll(multiple=True), from_me=True, me=ME))
    ev.feed(
        session.client,
        _vote("3EB0VO11", PEER, "3EB0PO11", ME, ["Pizza", "Soup"], from_me_key=False, remote=ME),
    )
    session.pump()

    [body] = bodies(instance, "incomingMessageReceived")
    assert body["idMessage"] == "3EB0VO11"
    assert body["senderData"]["sender"] == f"{PEER}@c.us"
    assert body["messageData"] == {
        "typeMessage": "pollUpdateMessage",
        "pollMessageData": {
            "stanzaId": "3EB0PO11",
            "name": "Lunch?",
            "votes": [
                {"optionName": "Pizza", "optionVoters": [f"{PEER}@c.us"]},
                {"optionName": "Sushi", "optionVoters": []},
                {"optionName": "Soup", "optionVoters": [f"{PEER}@c.us"]},
            ],
            "multipleAnswers": True,
        },
    }


def test_a_vote_on_a_received_poll_and_a_withdrawn_vote(waweb: tuple[Instance, Session]) -> None:
    instance, session = waweb
    ev.feed(session.client, ev.connected())
    ev.feed(session.client, ev.message("3EB0PO12", PEER, _poll()))
    # The peer votes on their own poll (the key is fromMe on their side), then
    # takes the vote back (no option selected).
    ev.feed(session.client, _vote("3EB0VO12", PEER, "3EB0PO12", PEER, ["Sushi"], from_me_key=True, remote=ME))
    ev.feed(session.client, _vote("3EB0VO13", PEER, "3EB0PO12", PEER, [], from_me_key=True, remote=ME))
    session.pump()

    poll, vote, withdrawn = bodies(instance, "incomingMessageReceived")
    assert poll["messageData"]["typeMessage"] == "pollMessage"
    assert [v["optionVoters"] for v in vote["messageData"]["pollMessageData"]["votes"]] == [
        [],
        [f"{PEER}@c.us"],
        [],
    ]
    assert vote["messageData"]["pollMessageData"]["multipleAnswers"] is False
    assert [v["optionVoters"] for v in withdrawn["messageData"]["pollMessageData"]["votes"]] == [[], [], []]


def test_votes_that_cannot_be_read_are_skipped(waweb: tuple[Instance, Session]) -> None:
    instance, session = waweb
    ev.feed(session.client, ev.connected())
    ev.feed(session.client, ev.message("3EB0PO14", PEER, _poll(), from_me=True, me=ME))
    # A poll the session never saw; a vote encrypted for another creator.
    ev.feed(session.client, _vote("3EB0VO14", PEER, "3EB0NONE", ME, ["Pizza"], from_me_key=False, remote=ME))
    ev.feed(session.client, _vote("3EB0VO15", PEER, "3EB0PO14", PEER, ["Pizza"], from_me_key=False, remote=ME))
    ev.feed(session.client, ev.message("3EB0AA16", PEER, Message(conversation="still here")))
    session.pump()

    [body] = bodies(instance, "incomingMessageReceived")
    assert body["idMessage"] == "3EB0AA16"


# --- Calls ---------------------------------------------------------------------------


def test_a_ringing_call_is_the_call_state_and_callsreject_declines_it(
    waweb: tuple[Instance, Session], api_client: APIClient
) -> None:
    from engines.waweb import transport
    from tests.messaging.calls_helpers import call, refused, state

    instance, session = waweb
    rejected: list[tuple[str, str]] = []
    # whatsmeow's RejectCall reaches WhatsApp; here the caller's side records it.
    session.client.reject_call = lambda call_from, call_id: rejected.append((call_from.User, call_id))
    transport.IN_PROCESS[instance.pk] = session.handle  # as ``serve`` does: the API asks this session
    try:
        ev.feed(session.client, ev.connected())
        session.pump()
        instance.refresh_from_db()
        refused(call(api_client, instance, "callsReject"), "there is no incoming call to reject")

        ev.feed(session.client, ev.call_offer(PEER, "CALL0002"))
        session.pump()
        assert state(api_client, instance) == {
            "state": "inc-call",
            "info": {"id": "CALL0002", "wid": f"{PEER}@c.us", "name": None},
            "reason": None,
        }
        assert call(api_client, instance, "callsReject").status_code == 200
        assert rejected == [(PEER, "CALL0002")]
        assert state(api_client, instance) == {"state": "idle", "info": None, "reason": "rejected"}
        refused(call(api_client, instance, "callsReject"), "there is no incoming call to reject")
    finally:
        transport.IN_PROCESS.pop(instance.pk, None)
