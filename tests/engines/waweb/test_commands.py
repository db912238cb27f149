"""Commands the session process runs for web and worker processes (over the command
channel), against a client with neonize's surface: neonize's own ``NewClient`` whose
network calls answer as whatsmeow does once logged in (no WhatsApp is reachable
here), recording what it was asked. Checked: the idMessage -> WhatsApp id map and
the retry rule it gives sends, the batch contract, and the shapes of answers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

pytest.importorskip("neonize", reason="the waweb engine needs neonize (requirements.txt)")

from neonize.client import NewClient  # noqa: E402
from neonize.proto.Neonize_pb2 import Device, IsOnWhatsAppResponse, MessageDebugTimings, SendResponse  # noqa: E402

from engines.contract import OutgoingPayload, TransportError  # noqa: E402
from engines.waweb.models import WawebMessage  # noqa: E402
from engines.waweb.session import Session  # noqa: E402
from engines.waweb.transport import payload_to_wire, result_from_wire  # noqa: E402
from instances.models import Instance, SessionLease  # noqa: E402
from tests.engines.waweb import neonize_events as ev  # noqa: E402
from tests.factories import make_instance  # noqa: E402

pytestmark = pytest.mark.django_db


class RecordingClient(NewClient):
    """neonize's client; the calls that need WhatsApp answer as whatsmeow does."""

    sent: list[tuple[Any, Any]]
    timers: list[tuple[Any, int]]

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

    def set_disappearing_timer(self, jid: Any, timer: Any, setting_ts: Any = None) -> None:
        self.timers.append((jid, timer))


@pytest.fixture
def session(tmp_path: Path) -> Session:
    instance = make_instance(engine="waweb")
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="r", epoch=1, expires_at=timezone.now() + timedelta(minutes=5)
    )
    client = RecordingClient(str(tmp_path / "store.sqlite3"), uuid=f"cmd-{instance.pk}", new_device=True)
    client.sent, client.timers = [], []
    live = Session(Instance.objects.get(pk=instance.pk), 1, "r", client)
    live.connected = True
    return live


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


def test_a_quote_fails_visibly_and_the_batch_goes_on(session: Session) -> None:
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
    assert "quotedMessageId" in str(first)
    assert answers[1] == {"status": "sent"}


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
    assert session.handle("check_whatsapp", {"phone": "79001234567"}) is True
    assert session.handle("check_whatsapp", {"phone": "79001234560"}) is False

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
    client.sent, client.timers = [], []
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
