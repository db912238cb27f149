"""What a waweb session records for its health: real, serialised whatsmeow events
through neonize's own dispatcher (as in test_events.py) stamp the last event and
the last proof of traffic, and the liveness probe asks WhatsApp for a round trip
(the blocklist) when a connected session has proven nothing for a while. The
client is neonize's own ``NewClient``; only the calls that need a logged-in
WhatsApp answer as whatsmeow does (no WhatsApp is reachable here)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

pytest.importorskip("neonize", reason="the waweb engine needs neonize (requirements.txt)")

from neonize.client import NewClient  # noqa: E402
from neonize.proto.Neonize_pb2 import Blocklist, Device, Disconnected, KeepAliveTimeout  # noqa: E402

from engines.waweb.models import WawebSession  # noqa: E402
from engines.waweb.session import Session  # noqa: E402
from instances.models import Instance, SessionLease  # noqa: E402
from tests.engines.waweb import neonize_events as ev  # noqa: E402
from tests.factories import make_instance  # noqa: E402
from tests.processes import wait_for  # noqa: E402

pytestmark = pytest.mark.django_db

LONG_AGO = timedelta(hours=1)


class ProbedClient(NewClient):
    """neonize's client; ``get_me`` and ``get_blocklist`` answer as whatsmeow does
    once logged in, or ``get_blocklist`` fails as it does on a dead connection."""

    refuse: str = ""
    probes: int = 0

    def get_me(self) -> Device:
        return Device(JID=ev.jid("79005550001", device=7), LID=ev.jid("1", "lid"), PushName="Shop", Platform="")

    def get_blocklist(self) -> Blocklist:
        self.probes += 1
        if self.refuse:
            raise RuntimeError(self.refuse)
        return Blocklist(DHash="1", JIDs=[])


@pytest.fixture
def session(tmp_path: Path) -> Session:
    instance = make_instance(engine="waweb")
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="r", epoch=1, expires_at=timezone.now() + timedelta(minutes=5)
    )
    client = ProbedClient(str(tmp_path / "store.sqlite3"), uuid=f"live-{instance.pk}", new_device=True)
    live = Session(Instance.objects.get(pk=instance.pk), 1, "r", client)
    live.install()
    return live


def row(session: Session) -> WawebSession:
    return WawebSession.objects.get(instance_id=session.instance.pk)


def connect(session: Session) -> None:
    ev.feed(session.client, ev.connected())
    session.pump()


def backdate(session: Session) -> None:
    """As if the session had proven nothing for an hour."""
    old = timezone.now() - LONG_AGO
    WawebSession.objects.filter(instance_id=session.instance.pk).update(
        alive_at=old, last_event_at=old, connected_at=old
    )
    session.proven_at = time.monotonic() - LONG_AGO.total_seconds()


def test_connected_marks_the_session_connected_and_alive(session: Session) -> None:
    connect(session)
    stored = row(session)
    assert stored.connected
    assert stored.connected_at is not None
    assert stored.alive_at is not None
    assert stored.last_event_at is not None


def test_a_keep_alive_timeout_is_an_event_but_no_proof_of_traffic(session: Session) -> None:
    connect(session)
    backdate(session)
    before = row(session)

    ev.feed(session.client, KeepAliveTimeout(ErrorCount=1, LastSuccess=0))
    session.pump()

    after = row(session)
    assert after.keepalive_failures == before.keepalive_failures + 1
    assert after.last_event_at is not None and before.last_event_at is not None
    assert after.last_event_at > before.last_event_at
    assert after.alive_at == before.alive_at


def test_an_incoming_message_is_proof_of_traffic(session: Session) -> None:
    from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

    connect(session)
    backdate(session)
    before = row(session)

    ev.feed(session.client, ev.message("3EB0BB01", "79001234567", Message(conversation="hi")))
    session.pump()

    after = row(session)
    assert after.alive_at is not None and before.alive_at is not None
    assert after.alive_at > before.alive_at


def test_disconnected_clears_connected(session: Session) -> None:
    connect(session)
    ev.feed(session.client, Disconnected(status=True))
    session.pump()
    assert not row(session).connected


def test_an_answered_probe_proves_traffic_without_counting_as_an_event(session: Session) -> None:
    connect(session)
    backdate(session)
    before = row(session)

    session.probe_if_due()
    wait_for(lambda: not session.events.empty(), timeout=30, what="the probe's answer")
    session.pump()

    after = row(session)
    assert session.client.probes == 1
    assert after.alive_at is not None and before.alive_at is not None
    assert after.alive_at > before.alive_at
    assert after.last_event_at == before.last_event_at
    assert not session.probing


def test_a_failed_probe_proves_nothing_and_says_why(session: Session) -> None:
    connect(session)
    backdate(session)
    session.client.refuse = "websocket not connected"
    before = row(session)

    session.probe_if_due()
    wait_for(lambda: not session.events.empty(), timeout=30, what="the probe's failure")
    session.pump()

    after = row(session)
    assert after.alive_at == before.alive_at
    assert after.last_error == "liveness probe failed: websocket not connected"
    assert not session.probing


def test_no_probe_while_traffic_is_recent_or_before_connecting(session: Session) -> None:
    session.proven_at = time.monotonic() - LONG_AGO.total_seconds()
    session.probe_if_due()  # not connected: whatsmeow may abort on calls before a login
    connect(session)
    session.probe_if_due()  # the Connected event just proved traffic
    assert session.client.probes == 0
    assert session.events.empty()
