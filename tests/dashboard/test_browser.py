"""The cabinet in a real headless Chromium against the live ASGI server.

Skipped only when /usr/bin/chromium is missing (Playwright cannot download browsers
here; .ci/run installs Debian's chromium). Screenshots go to RELAY_SCREENSHOTS_DIR
when set (docs/screenshots/ is made that way), else to the test's tmp dir."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import close_old_connections, connections

from dashboard.journal_views import LIVE_FALLBACK_SECONDS
from engines.emulator.transport import ensure_phone
from instances import services
from instances.models import Instance, State
from instances.runner import Runner
from journals.models import Notification, WebhookAttempt, WebhookRedelivery
from messaging.models import OutgoingMessage
from tests.conftest import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 30_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture
def session_runner(live_asgi: LiveServer) -> Iterator[None]:
    """A session runner ticking every 0.2 s in a background thread (pairing, receipts)."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        runner = Runner()
        try:
            while not stop.is_set():
                try:
                    runner.tick()
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    errors.append(exc)
                    close_old_connections()
                stop.wait(0.2)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)
    assert len(errors) < 5, errors[:3]


@pytest.fixture
def browser_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM
    # reads are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 860},
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        yield page
        context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Any:
    target = Path(os.environ.get("RELAY_SCREENSHOTS_DIR") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str, full_page: bool = True) -> None:
        page.evaluate("window.scrollTo(0, 0)")  # sticky bars stay at the top of the picture
        page.wait_for_timeout(150)  # let transitions settle
        page.screenshot(path=str(target / f"{name}.png"), full_page=full_page)

    return take


def test_signup_pair_send_and_see_ticks(
    live_asgi: LiveServer, session_runner: None, browser_page: Any, shots: Any, settings: Any
) -> None:
    from playwright.sync_api import expect

    settings.RELAY_API_URL = live_asgi.url
    settings.RELAY_MEDIA_URL = live_asgi.url
    page = browser_page
    base = live_asgi.url

    page.goto(base + "/")
    shots(page, "01-landing")

    # Sign up.
    page.goto(base + "/dashboard/signup/")
    shots(page, "02-signup")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Email").fill("alice@example.com")
    page.locator("#id_password1").fill("Sunny-Harbour-42")
    page.get_by_label("Password confirmation").fill("Sunny-Harbour-42")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="No instances yet")).to_be_visible()
    shots(page, "03-instances-empty")

    # Create an instance.
    page.get_by_role("link", name="Create your first instance").click()
    expect(page.get_by_label("Meta Cloud API")).to_be_enabled()
    page.get_by_label("Name").fill("Support line")
    shots(page, "04-create-instance")
    page.get_by_role("button", name="Create instance").click()
    expect(page.locator("#instance-name")).to_have_text("Support line")
    instance = Instance.objects.get(name="Support line")

    # The QR code arrives over the WebSocket.
    qr = page.locator("[data-qr]")
    expect(qr).to_have_attribute("src", lambda_png())
    badge = page.locator(f'.instance-head [data-state-badge="{instance.id}"]')
    expect(badge).to_have_attribute("data-state", "notAuthorized")
    shots(page, "05-instance-qr")

    # Pair through the emulator button; the badge turns authorized without a reload.
    page.evaluate("window.__sameDocument = 'yes'")
    page.get_by_label("Phone number").first.fill("79005550001")
    page.get_by_label("Profile name").fill("Alice Phone")
    page.get_by_role("button", name="Scan with phone number").click()
    expect(badge).to_have_attribute("data-state", "authorized", timeout=TIMEOUT_MS)
    expect(badge).to_contain_text("Authorized")
    expect(page.get_by_text("Connected as")).to_be_visible()
    assert page.evaluate("window.__sameDocument") == "yes", "the page reloaded"
    instance.refresh_from_db()
    assert instance.state == State.AUTHORIZED
    shots(page, "06-instance-authorized")

    # The list shows it authorized too.
    page.goto(base + "/dashboard/")
    expect(page.locator(f'[data-state-badge="{instance.id}"]')).to_have_attribute("data-state", "authorized")
    shots(page, "07-instances")

    # Send a real sendMessage from the API console to a registered emulated phone.
    ensure_phone("79005550101", "Bob")
    page.goto(base + f"/dashboard/instances/{instance.id}/console/?method=sendMessage")
    page.locator("#f-chatId").fill("79005550101@c.us")
    page.locator("#f-message").fill("Hello from the browser")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("[data-status-code]")).to_have_text("200 OK")
    expect(page.locator("#console-response")).to_contain_text("idMessage")
    expect(page.locator("#snippet-curl")).to_contain_text("curl -X POST")
    expect(page.locator("#snippet-python")).to_contain_text("greenAPI.sending.sendMessage(")
    shots(page, "08-console")
    message = OutgoingMessage.objects.get(instance=instance)

    # It appears in the chat view with its ticks, which advance on their own.
    page.goto(base + f"/dashboard/instances/{instance.id}/chats/")
    shots(page, "09-chats")
    page.get_by_role("link", name="+79005550101").click()
    bubble = page.locator(f'[data-id-message="{message.id_message}"]')
    expect(bubble).to_contain_text("Hello from the browser")
    expect(bubble.locator("[data-status]")).to_have_attribute("data-status", "read", timeout=TIMEOUT_MS)
    shots(page, "10-chat")

    # Live chat: a contact writes (sandbox, in a second tab) and the open chat view
    # shows it without a reload, well before its slow fallback re-read would.
    page.evaluate("window.__sameDocument = 'chat'")
    sandbox_tab = page.context.new_page()
    sandbox_tab.goto(base + f"/dashboard/instances/{instance.id}/sandbox/?kind=textMessage")
    sandbox_tab.locator("#send-phone").fill("79005550101")
    sandbox_tab.locator("#send-name").fill("Bob")
    sandbox_tab.locator("#ev-message").fill("Hi from Bob, live")
    sandbox_tab.get_by_role("button", name="Send", exact=True).click()
    expect(sandbox_tab.get_by_text("+79005550101 sent a text")).to_be_visible()
    shots(sandbox_tab, "13-sandbox")
    live_bubble = page.locator(".bubble-in", has_text="Hi from Bob, live")
    expect(live_bubble).to_be_visible(timeout=(LIVE_FALLBACK_SECONDS - 5) * 1000)
    assert page.evaluate("window.__sameDocument") == "chat", "the chat view reloaded"
    shots(page, "17-chat-live")
    # The generated forms follow the message type picked.
    sandbox_tab.locator("#send-kind").select_option("locationMessage")
    expect(sandbox_tab.locator("#ev-latitude")).to_be_visible()
    sandbox_tab.close()

    # Webhook log: a delivered notification is sent again with one click.
    services.update_settings(instance, {"webhookUrl": "https://hooks.invalid/relay"})
    note = Notification.objects.create(
        instance=instance, receipt_id=9001, type_webhook="incomingMessageReceived", body={}, state="done", attempts=1
    )
    WebhookAttempt.objects.create(notification=note, instance=instance, receipt_id=9001, attempt=1,
                                  url="https://hooks.invalid/relay", ok=True, status_code=200, latency_ms=38)
    page.goto(base + f"/dashboard/instances/{instance.id}/webhooks/")
    page.locator('details.attempt[data-receipt-id="9001"] summary').click()  # rows open to request and answer
    page.get_by_role("button", name="Redeliver receiptId 9001").click()
    expect(page.get_by_text("1 notification (receiptId 9001) queued again")).to_be_visible()
    shots(page, "15-webhooks")
    assert WebhookRedelivery.objects.filter(instance=instance, receipt_from=9001, requested_by="dashboard").exists()
    page.get_by_role("link", name="Failed", exact=True).click()
    expect(page.locator("nav.segmented [aria-current=page]")).to_have_text("Failed")

    # A bad input shows a clear error: first the form's own check, then the server's.
    page.goto(base + f"/dashboard/instances/{instance.id}/console/?method=sendMessage")
    page.locator("summary", has_text="Raw JSON body").click()
    page.locator("#f-raw").fill("{not json")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("#console-errors")).to_contain_text("This is not valid JSON")
    page.locator("#f-raw").fill("")
    page.locator("#f-chatId").fill("not-a-chat")
    page.locator("#f-message").fill("x")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("[data-status-code]")).to_have_text("400 Bad Request")
    expect(page.locator("#console-response")).to_contain_text("chatId")
    expect(page.get_by_role("alert").first).to_be_visible()

    # The settings form refuses what setSettings refuses, with the same words.
    page.goto(base + f"/dashboard/instances/{instance.id}/settings/")
    page.locator("#id_delaySendMessagesMilliseconds").fill("10")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("'delaySendMessagesMilliseconds' must be larger than or equal to 500")).to_be_visible()
    shots(page, "11-settings-error")

    for name, path in (("12-usage", "usage/"), ("14-notifications", "notifications/")):
        page.goto(base + f"/dashboard/instances/{instance.id}/{path}")
        expect(page.locator("main")).to_be_visible()
        shots(page, name)

    # The API console: a multipart upload method has a file input.
    page.goto(base + f"/dashboard/instances/{instance.id}/console/?method=sendFileByUpload")
    expect(page.locator("#f-file")).to_have_attribute("type", "file")
    page.goto(base + f"/dashboard/instances/{instance.id}/console/?method=lastIncomingMessages")
    page.locator("#q-minutes").fill("60")
    page.get_by_role("button", name="Send request").click()
    expect(page.locator("[data-status-code]")).to_have_text("200 OK")
    expect(page.locator("#snippet-curl")).to_contain_text("?minutes=60")
    shots(page, "18-console-query")

    # Partner token rotation asks for confirmation first.
    page.goto(base + "/dashboard/account/")
    page.locator("summary", has_text="Rotate the partner token").click()
    page.get_by_role("button", name="Issue a new partner token").click()
    expect(page.get_by_text("Tick the box to confirm")).to_be_visible()
    shots(page, "19-account-rotate")

    # Narrow screens get the same pages, stacked.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + f"/dashboard/instances/{instance.id}/")
    shots(page, "16-mobile-instance")


def lambda_png() -> Any:
    import re

    return re.compile(r"^data:image/png;base64,")
