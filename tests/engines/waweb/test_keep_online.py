"""keepOnlineStatus on waweb: a connected session tells WhatsApp the account is
``available`` while the setting is on and ``unavailable`` once it is turned off, and
again on every new connection (whatsmeow sends no presence by itself)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

pytest.importorskip("neonize", reason="the waweb engine needs neonize (requirements.txt)")

from neonize.utils.enum import Presence  # noqa: E402

from engines.waweb.session import Session  # noqa: E402
from instances import services  # noqa: E402
from instances.models import Instance, SessionLease  # noqa: E402
from tests.engines.waweb import neonize_events as ev  # noqa: E402
from tests.engines.waweb.test_commands import RecordingClient  # noqa: E402
from tests.factories import make_instance  # noqa: E402

pytestmark = pytest.mark.django_db


class PresenceClient(RecordingClient):
    presences: list[Any]

    def send_presence(self, presence: Any) -> None:
        self.presences.append(presence)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    instance = make_instance(engine="waweb")
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="r", epoch=1, expires_at=timezone.now() + timedelta(minutes=5)
    )
    client = PresenceClient(str(tmp_path / "store.sqlite3"), uuid=f"presence-{instance.pk}", new_device=True)
    client.sent, client.timers, client.read, client.revoked, client.presences = [], [], [], [], []
    live = Session(Instance.objects.get(pk=instance.pk), 1, "r", client)
    live.install()
    return live


def connect(session: Session) -> None:
    ev.feed(session.client, ev.connected())
    session.pump()
    assert session.connected


def check(session: Session) -> None:
    """The session's periodic read of the setting, as when its interval has passed."""
    session.presence_due = 0.0
    session.sync_presence()


def test_off_sends_no_presence(session: Session) -> None:
    connect(session)
    check(session)
    assert session.client.presences == []


def test_on_is_available_on_connect_and_unavailable_once_turned_off(session: Session) -> None:
    services.update_settings(session.instance, {"keepOnlineStatus": True})
    connect(session)
    session.sync_presence()  # due at once on a new connection
    assert session.client.presences == [Presence.AVAILABLE]
    check(session)
    assert session.client.presences == [Presence.AVAILABLE]  # not repeated while unchanged

    services.update_settings(session.instance, {"keepOnlineStatus": False})
    check(session)
    assert session.client.presences == [Presence.AVAILABLE, Presence.UNAVAILABLE]

    services.update_settings(session.instance, {"keepOnlineStatus": True})
    check(session)
    assert session.client.presences[-1] == Presence.AVAILABLE


def test_a_reconnection_sends_it_again(session: Session) -> None:
    services.update_settings(session.instance, {"keepOnlineStatus": True})
    connect(session)
    session.sync_presence()
    session.on_disconnected(None)
    connect(session)
    session.sync_presence()
    assert session.client.presences == [Presence.AVAILABLE, Presence.AVAILABLE]


def test_the_api_accepts_it_on_waweb(api_client: Any, session: Session) -> None:
    from tests.conftest import method_url

    r = api_client.post(method_url(session.instance, "setSettings"), {"keepOnlineStatus": "yes"}, format="json")
    assert r.json() == {"saveSettings": True}
    connect(session)
    session.sync_presence()
    assert session.client.presences == [Presence.AVAILABLE]
