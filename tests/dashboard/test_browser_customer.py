"""Issue 19 in a real browser, at desktop (1280x860) and phone (390x844) sizes:
every cabinet page passes an axe-core scan (WCAG 2 A/AA, contrast included) with
no console errors; the phone menu, the tabs, the webhook log cards, the console's
search, chat picker and side-by-side answer, replies from the chat view and the
blocked-webhook banner work as a customer uses them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from engines.emulator.transport import ensure_phone
from instances import services
from instances.models import Account, Instance
from journals import webhooks
from journals.models import Notification, NotificationState
from messaging.models import OutgoingMessage
from tests.conftest import LiveServer
from tests.dashboard.test_browser import CHROMIUM, browser_page, shots
from tests.factories import AccountFactory, make_instance

__all__ = ["browser_page", "shots"]  # fixtures shared with test_browser

AXE = Path(django_settings.BASE_DIR) / "static" / "vendor" / "axe.min.js"
SIZES = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def login(page: Any, live: LiveServer, account: Account) -> None:
    from django.test import Client

    client = Client()
    client.force_login(account.user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live.url}]
    )


def axe_violations(page: Any) -> list[str]:
    """Serious and critical WCAG 2 A/AA violations (colour contrast included)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}});
          return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ': ' + v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' ' + (n.any[0] && n.any[0].data ? JSON.stringify([n.any[0].data.fgColor, n.any[0].data.bgColor, n.any[0].data.contrastRatio]) : '')).join(' | '));
        }"""
    )
    return list(result)


@pytest.fixture
def customer(db: None) -> tuple[Account, Instance]:
    account = AccountFactory()
    instance = make_instance(account, authorized=True)
    ensure_phone("79005550777", "Carol Contact")
    services.update_settings(instance, {"webhookUrl": "http://127.0.0.1:9/hook"})
    Notification.objects.create(
        instance=instance, receipt_id=1, type_webhook="stateInstanceChanged",
        body={"typeWebhook": "stateInstanceChanged", "stateInstance": "authorized"}, state=NotificationState.QUEUED,
    )
    webhooks.deliver(instance.id)  # refused by the SSRF guard: the queue is blocked
    return account, instance


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_page_is_accessible_and_quiet(
    live_asgi: LiveServer, browser_page: Any, customer: tuple[Account, Instance], size: str, shots: Any
) -> None:
    from playwright.sync_api import expect

    account, instance = customer
    page = browser_page
    page.set_viewport_size(SIZES[size])
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, live_asgi, account)
    base = f"{live_asgi.url}/dashboard/instances/{instance.id}"
    pages = {
        "instances": f"{live_asgi.url}/dashboard/",
        "overview": f"{base}/",
        "settings": f"{base}/settings/",
        "console": f"{base}/console/",
        "chats": f"{base}/chats/",
        "notifications": f"{base}/notifications/",
        "webhooks": f"{base}/webhooks/",
        "usage": f"{base}/usage/",
        "sandbox": f"{base}/sandbox/",
        "account": f"{live_asgi.url}/dashboard/account/",
        "not-found": f"{live_asgi.url}/dashboard/instances/999999999/",
    }
    problems: dict[str, list[str]] = {}
    for name, url in pages.items():
        page.goto(url)
        expect(page.locator("main")).to_be_visible()
        found = axe_violations(page)
        if found:
            problems[name] = found
        # Nothing may stick out sideways on a phone (tables become cards).
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at {size}"
    assert not problems, problems
    assert not [e for e in errors if "404" not in e], errors  # the 404 page itself logs its status


def test_phone_menu_tabs_cards_and_chat_first(
    live_asgi: LiveServer, browser_page: Any, customer: tuple[Account, Instance], shots: Any
) -> None:
    from playwright.sync_api import expect

    account, instance = customer
    page = browser_page
    page.set_viewport_size(SIZES["phone"])
    login(page, live_asgi, account)
    base = f"{live_asgi.url}/dashboard/instances/{instance.id}"

    page.goto(f"{base}/webhooks/")
    nav = page.locator("#mainnav")
    expect(nav).to_be_hidden()
    page.get_by_role("button", name="Menu").focus()
    page.keyboard.press("Enter")  # keyboard reachable
    expect(nav).to_be_visible()
    expect(page.locator("[data-nav-toggle]")).to_have_attribute("aria-expanded", "true")
    expect(nav.get_by_role("link", name="Account & API keys")).to_be_visible()
    page.locator("[data-nav-toggle]").click()
    expect(nav).to_be_hidden()

    # The active tab (Webhook log, far right) is scrolled into view.
    tab = page.locator('.tabs [aria-current="page"]')
    box = tab.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    # The log is cards: the blocked banner, then a row that opens to the exact request.
    expect(page.locator("[data-webhook-blocked]")).to_contain_text("Webhook deliveries are blocked")
    row = page.locator("details.attempt").first
    row.locator("summary").click()
    expect(row).to_contain_text("X-Webhook-Signature: sha256=")
    expect(row).to_contain_text("blocked by Relay")
    shots(page, "21-mobile-webhooks")

    # Chat first: the conversation starts high on the page and the reply bar is there.
    page.goto(f"{base}/chats/79005550777@c.us/")
    bubbles = page.locator("#bubbles").bounding_box()
    assert bubbles is not None and bubbles["y"] < 330, bubbles
    expect(page.locator("#reply textarea")).to_be_visible()
    shots(page, "22-mobile-chat", full_page=False)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_console_search_chat_picker_and_answer_in_view(
    live_asgi: LiveServer, browser_page: Any, customer: tuple[Account, Instance], size: str, shots: Any, settings: Any
) -> None:
    from playwright.sync_api import expect

    account, instance = customer
    page = browser_page
    page.set_viewport_size(SIZES[size])
    settings.RELAY_API_URL = live_asgi.url
    login(page, live_asgi, account)
    # A known chat for the picker.
    OutgoingMessage.objects.create(
        instance=instance, chat_id="79005550777@c.us", method="sendMessage", type_message="textMessage",
        request={"chatId": "79005550777@c.us", "message": "earlier"},
    )
    page.goto(f"{live_asgi.url}/dashboard/instances/{instance.id}/console/?method=getSettings")
    search = page.get_by_label("Find a method")
    search.fill("sendMess")
    search.press("Enter")
    expect(page.locator("#console-form h2")).to_contain_text("sendMessage")
    expect(page.locator("#console-form .docs-link")).to_have_attribute("href", "/api/docs/#/sending/sendMessage")
    options = page.locator("#known-chats option")
    expect(options.first).to_have_attribute("value", "79005550777@c.us")
    chat = page.locator("#f-chatId")
    chat.fill("+7 900 555-07-77")
    page.locator("#f-message").fill("Hello from the console")
    expect(chat).to_have_value("79005550777@c.us")  # completed when the field was left
    page.get_by_role("button", name="Send request").click()
    status = page.locator("[data-status-code]")
    expect(status).to_have_text("200 OK")
    box = status.bounding_box()
    assert box is not None and 0 <= box["y"] <= SIZES[size]["height"], f"the answer is out of view: {box}"
    if size == "desktop":
        form = page.locator("#console-form").bounding_box()
        assert form is not None and box["x"] > form["x"] + form["width"] - 1, "request and answer side by side"
        shots(page, "23-console-side-by-side", full_page=False)
    assert OutgoingMessage.objects.filter(instance=instance, request__message="Hello from the console").exists()


def test_reply_from_the_chat_view_and_settings_warnings(
    live_asgi: LiveServer, browser_page: Any, customer: tuple[Account, Instance], shots: Any
) -> None:
    from playwright.sync_api import expect

    account, instance = customer
    page = browser_page
    login(page, live_asgi, account)
    base = f"{live_asgi.url}/dashboard/instances/{instance.id}"
    page.goto(f"{base}/chats/79005550777@c.us/")
    expect(page.locator("[data-chat-name]")).to_have_text("+79005550777")
    page.get_by_label("Reply to 79005550777@c.us").fill("Reply typed in the chat")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator(".bubble-out", has_text="Reply typed in the chat")).to_be_visible()
    expect(page.get_by_label("Reply to 79005550777@c.us")).to_have_value("")
    expect(page.locator(".legend")).to_contain_text("stays delivered until that instance reads the chat")
    shots(page, "24-chat-reply")

    page.goto(f"{base}/settings/")
    expect(page.locator("[data-webhook-problem]")).to_contain_text("127.0.0.1 is a loopback address")
    expect(page.locator("#webhook-secret")).to_have_text(instance.webhook_secret)
    page.get_by_role("button", name="Switch on the recommended set").click()
    expect(page.get_by_text("Recommended notifications switched on")).to_be_visible()
    expect(page.locator("#id_incomingWebhook")).to_be_checked()
    shots(page, "20-settings-recommended")
    page.goto(f"{base}/webhooks/")
    page.locator("details.attempt summary").first.click()
    expect(page.locator("details.attempt").first).to_contain_text("X-Webhook-Id")
    shots(page, "25-webhook-request")
