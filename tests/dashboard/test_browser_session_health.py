"""The session health panel in a real headless Chromium: a waweb instance whose
session went silent shows it (and why) on its page, passes an axe-core scan, and
shows healthy once its row says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from engines.models import CommandListener
from engines.waweb.models import WawebSession
from instances.models import Account, Instance
from tests.conftest import LiveServer
from tests.dashboard.test_browser import CHROMIUM, browser_page, shots
from tests.dashboard.test_browser_customer import axe_violations, login
from tests.factories import AccountFactory, make_instance

__all__ = ["browser_page", "shots"]  # fixtures shared with test_browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture
def silent_waweb(db: None) -> tuple[Account, Instance]:
    account = AccountFactory()
    instance = make_instance(account, engine="waweb")
    hour_ago = timezone.now() - timedelta(hours=1)
    WawebSession.objects.create(
        instance_id=instance.pk, started_at=hour_ago, connected=True, connected_at=hour_ago,
        alive_at=hour_ago, last_event_at=hour_ago, reconnects=1, keepalive_failures=5, restarts=2,
        silent_restarts=1, last_error="silent for 3600 s: said connected, but no event and no answered probe",
    )
    CommandListener.objects.create(instance_id=instance.pk, epoch=1, pid=1, heartbeat_at=timezone.now() + timedelta(hours=1))  # fresh however slow the run
    return account, instance


def test_the_instance_page_shows_a_silent_session_then_a_healthy_one(
    live_asgi: LiveServer, browser_page: Any, silent_waweb: tuple[Account, Instance], shots: Any
) -> None:
    from playwright.sync_api import expect

    account, instance = silent_waweb
    page = browser_page
    login(page, live_asgi, account)
    page.goto(f"{live_asgi.url}/dashboard/instances/{instance.id}/")

    panel = page.get_by_role("region", name="Session health")
    expect(panel).to_be_visible()
    expect(panel.locator("[data-health]")).to_have_text("Silent: restarting")
    expect(panel.locator("[data-health-keepalive]")).to_have_text("5")
    expect(panel.locator("[data-health-restarts]")).to_have_text("2 (1 for silence)")
    expect(panel.locator("[data-health-error]")).to_contain_text("silent for 3600 s")
    assert axe_violations(page) == []
    shots(page, "session-health-silent")

    now = timezone.now()
    WawebSession.objects.filter(instance_id=instance.pk).update(alive_at=now, last_event_at=now)
    CommandListener.objects.filter(instance_id=instance.pk).update(heartbeat_at=now + timedelta(hours=1))
    page.reload()
    expect(panel.locator("[data-health]")).to_have_text("Healthy")
    expect(panel.locator("[data-health-last-event]")).to_contain_text("ago")
