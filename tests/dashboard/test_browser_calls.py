"""The cabinet's calls in a real headless Chromium against the live ASGI server: the
sandbox dials a simulated contact, the contact answers, a hang-up through the API and
an incoming call show up live, and the chat view lists the calls."""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings as django_settings
from django.test import Client

from engines.emulator import triggers as emulator_events
from engines.emulator.services import add_simulated_contact
from instances import services as instance_services
from tests.conftest import LiveServer, method_url
from tests.dashboard.test_browser import TIMEOUT_MS, browser_page, pytestmark, session_runner, shots
from tests.factories import make_instance

__all__ = ["browser_page", "pytestmark", "session_runner", "shots"]

CONTACT = "79005550401"


def test_calls_in_the_sandbox_and_the_chat_view(
    live_asgi: LiveServer, session_runner: None, browser_page: Any, shots: Any, settings: Any
) -> None:
    from playwright.sync_api import expect

    settings.EMULATOR_CALL_ANSWER_AFTER_SECONDS = 0
    instance = make_instance(authorized=True, phone="79005550400")
    # The account's own calls are journalled with outgoingCallWebhook on (API.md §9.4).
    instance_services.update_settings(instance, {"outgoingCallWebhook": True})
    add_simulated_contact(owner_phone=instance.phone, phone=CONTACT, name="Dora", call_rule="silent")
    client = Client()
    client.force_login(instance.account.user)
    page = browser_page
    page.context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
          "url": live_asgi.url}]
    )
    base = live_asgi.url
    page.goto(base + f"/dashboard/instances/{instance.id}/sandbox/")
    state = page.locator("#call-panel [data-call-state]")
    expect(state).to_have_attribute("data-call-state", "idle")

    # The instance dials a contact that lets it ring; the contact answers from the panel.
    page.locator("#id_dial-phone").fill(CONTACT)
    page.get_by_role("button", name="Call this contact").click()
    expect(state).to_have_attribute("data-call-state", "out-call")
    expect(state).to_contain_text("Calling +79005550401 (Dora)")
    page.get_by_role("button", name="Contact answers").click()
    expect(state).to_have_attribute("data-call-state", "on-call")
    shots(page, "calls-01-on-call")

    # A hang-up through the wire API shows without a reload.
    page.evaluate("window.__sameDocument = 'calls'")
    r = httpx.post(f"{base}{method_url(instance, 'callsHangUp')}", timeout=30)
    assert r.status_code == 200
    expect(state).to_have_attribute("data-call-state", "idle", timeout=TIMEOUT_MS)
    expect(state).to_contain_text("Last call ended: hangup")

    # A contact rings the instance (control API side); the panel shows it live, and
    # the instance accepts from the panel.
    emulator_events.contact_calls(instance, phone="79005550402", name="Eve")
    expect(state).to_have_attribute("data-call-state", "inc-call", timeout=TIMEOUT_MS)
    expect(state).to_contain_text("+79005550402 (Eve) is calling")
    assert page.evaluate("window.__sameDocument") == "calls", "the page reloaded"
    shots(page, "calls-02-incoming")
    page.get_by_role("button", name="Accept (callsAccept)").click()
    expect(state).to_have_attribute("data-call-state", "on-call")
    page.get_by_role("button", name="Contact hangs up").click()
    expect(state).to_have_attribute("data-call-state", "idle")

    # The chat view lists the calls (the session runner journals them).
    page.goto(base + f"/dashboard/instances/{instance.id}/chats/{CONTACT}@c.us/")
    expect(page.locator(".bubble", has_text="Outgoing call · answered")).to_be_visible(timeout=TIMEOUT_MS)
    page.goto(base + f"/dashboard/instances/{instance.id}/chats/79005550402@c.us/")
    expect(page.locator(".bubble", has_text="Incoming call · answered")).to_be_visible(timeout=TIMEOUT_MS)
    shots(page, "calls-03-chat")
