"""The Statuses tab in a real headless Chromium against the live ASGI server: post a
text status, watch a simulated viewer receive and view it, make a simulated contact
post a status and see it, delete ours."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from engines.emulator.services import add_simulated_contact
from tests.conftest import LiveServer
from tests.dashboard.test_browser import CHROMIUM, browser_page, session_runner, shots
from tests.factories import AccountFactory, make_instance
from tests.journals.emulated import set_flags

__all__ = ["browser_page", "session_runner", "shots"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium"),
]

VIEWER = "79270000099"


def reload_until(page: Any, selector: str, text: str, timeout: float = 20.0) -> None:
    """The tab renders on the server: reload until ``selector`` shows ``text``."""
    deadline = time.monotonic() + timeout
    while True:
        found = page.locator(selector)
        if found.count() and text in found.first.inner_text():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{selector} never showed {text!r}")
        page.wait_for_timeout(300)
        page.reload()


def test_statuses_tab(
    live_asgi: LiveServer, session_runner: None, browser_page: Any, shots: Any, settings: Any
) -> None:
    from playwright.sync_api import expect

    settings.RELAY_API_URL = live_asgi.url
    settings.RELAY_MEDIA_URL = live_asgi.url
    settings.EMULATOR_STATUS_DELIVERED_AFTER_SECONDS = 0.5
    settings.EMULATOR_STATUS_READ_AFTER_SECONDS = 1.5
    account = AccountFactory()
    instance = set_flags(make_instance(account, authorized=True, phone="79270000001"), delaySendMessagesMilliseconds=0)
    add_simulated_contact(owner_phone=instance.phone, phone=VIEWER, name="Vera")
    page = browser_page
    base = live_asgi.url

    page.goto(base + "/dashboard/login/")
    page.get_by_label("Username").fill(account.user.username)
    page.get_by_label("Password").fill("pw-Correct-Horse-1")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{base}/dashboard/instances/{instance.id}/")
    page.get_by_role("link", name="Statuses", exact=True).click()
    expect(page.get_by_role("heading", name="Post a status")).to_be_visible()

    # Post a text status to all contacts.
    page.locator("#status-message").fill("Hello from the browser")
    page.locator("#status-color").fill("#336699")
    page.locator("#status-font").select_option("SERIF")
    page.get_by_role("button", name="Post status").click()
    expect(page.locator(".flash").first).to_contain_text("queued")
    reload_until(page, f'[data-viewer="{VIEWER}@c.us"]', "read")
    expect(page.locator(".status-item").first).to_contain_text("Hello from the browser")
    shots(page, "statuses-01-posted-and-viewed")

    # A simulated contact posts a status; it appears under Contacts' statuses.
    page.locator("#contact-phone").fill("79270000050")
    page.locator("#contact-name").fill("Bob")
    page.locator("#contact-message").fill("Beach day")
    page.locator("#contact-font").select_option("OSWALD_HEAVY")
    page.get_by_role("button", name="Post as contact").click()
    reload_until(page, "[data-incoming]", "Beach day")
    expect(page.locator("[data-incoming]").first).to_contain_text("OSWALD_HEAVY")
    shots(page, "statuses-02-contact-status")

    # Delete ours: the list marks it.
    page.locator(".status-item").first.get_by_role("button", name="Delete").click()
    expect(page.locator(".status-item").first).to_contain_text("deleted")

    # Invalid input shows the wire method's message.
    page.locator("#status-message").fill("x")
    page.locator("#status-color").fill("blue")
    page.get_by_role("button", name="Post status").click()
    expect(page.locator("#status-error")).to_contain_text("fails to match the required pattern")
