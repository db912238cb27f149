"""The cabinet's session health panel on the instance page: the waweb engine's own
figures, and the short version (engine, state, runner) for engines that keep none."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from engines.models import CommandListener
from engines.waweb.models import WawebSession
from instances.models import Account, Instance, SessionLease
from tests.factories import make_instance


def panel(client: Client, instance: Instance) -> str:
    body = client.get(reverse("dashboard:instance", args=[instance.id])).content.decode()
    start = body.index('id="session-health"')
    return body[start : body.index("</section>", start)]


def test_a_waweb_instance_shows_its_session_figures(owner_client: Client, account: Account) -> None:
    instance = make_instance(account, engine="waweb")
    hour_ago = timezone.now() - timedelta(hours=1)
    WawebSession.objects.create(
        instance_id=instance.pk, started_at=hour_ago, connected=True, connected_at=hour_ago,
        alive_at=hour_ago, last_event_at=hour_ago, reconnects=4, keepalive_failures=6, restarts=3,
        silent_restarts=2, last_error="silent for 400 s: said connected, but no event and no answered probe",
    )
    CommandListener.objects.create(instance_id=instance.pk, epoch=1, pid=1, heartbeat_at=timezone.now() + timedelta(hours=1))  # fresh however slow the run

    html = panel(owner_client, instance)

    assert 'data-health="silent"' in html
    assert "1\xa0hour ago" in html  # the last event, as timesince says it
    assert 'data-health-reconnects>4<' in html
    assert 'data-health-keepalive>6<' in html
    assert "3 (2 for silence)" in html
    assert "silent for 400 s" in html
    assert "getSessionHealth" in html


def test_a_backing_off_waweb_session_says_until_when(owner_client: Client, account: Account) -> None:
    instance = make_instance(account, engine="waweb")
    until = timezone.now() + timedelta(seconds=90)
    WawebSession.objects.create(instance_id=instance.pk, restarts=1, parked_reason="crashed", parked_until=until)

    html = panel(owner_client, instance)

    assert 'data-health="backingOff"' in html
    assert f"crashed, until {until:%H:%M:%S} UTC" in html
    assert "none yet" in html  # no event ever


def test_an_emulator_instance_shows_the_short_version(owner_client: Client, instance: Instance) -> None:
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="runner-1", expires_at=timezone.now() + timedelta(minutes=1)
    )
    html = panel(owner_client, instance)
    assert "<code>emulator</code>" in html
    assert "holds the session" in html
    assert "data-health=" not in html
    assert "keeps no session health" in html


def test_another_account_cannot_see_the_panel(client: Client, stranger: Account, account: Account) -> None:
    instance = make_instance(account, engine="waweb")
    client.force_login(stranger.user)
    assert client.get(reverse("dashboard:instance", args=[instance.id])).status_code == 404
