"""The group chat view in a real headless Chromium: subject, each message's sender
name, the info panel with admin badges and invite link, and a sandbox action whose
result appears in the chat once the session runner has taken it in."""

from __future__ import annotations

import os
from typing import Any

import pytest

from engines.emulator import triggers as emulator_events
from engines.emulator.models import EmuMessage
from tests.conftest import LiveServer
from tests.dashboard.conftest import PASSWORD
from tests.dashboard.test_browser import CHROMIUM, browser_page, session_runner, shots  # noqa: F401 - fixtures
from tests.factories import AccountFactory, make_instance
from tests.groups.helpers import ALICE, BOB, wid, with_contacts

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def test_group_chat_view(
    live_asgi: LiveServer,
    session_runner: None,  # noqa: F811
    browser_page: Any,  # noqa: F811
    shots: Any,  # noqa: F811
    settings: Any,
) -> None:
    from playwright.sync_api import expect

    settings.RELAY_API_URL = live_asgi.url
    settings.RELAY_MEDIA_URL = live_asgi.url
    account = AccountFactory()
    instance = with_contacts(make_instance(account, authorized=True), ALICE, BOB)
    group_id = emulator_events.contact_creates_group(
        instance, phone=ALICE, subject="Book club", participants=[BOB]
    )
    emulator_events.contact_posts_in_group(
        instance, group_id=group_id, phone=BOB, kind="textMessage", fields={"message": "chapter 3 tonight"}
    )
    page = browser_page
    page.goto(live_asgi.url + "/dashboard/login/")
    page.get_by_label("Username").fill(account.user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/**")

    page.goto(live_asgi.url + f"/dashboard/instances/{instance.id}/chats/{group_id}/")
    expect(page.locator(".chat-view-head h2")).to_have_text("Book club")
    # The runner takes the message in; the chat refreshes by itself.
    bubble = page.locator(".bubble", has_text="chapter 3 tonight")
    expect(bubble).to_be_visible(timeout=30_000)
    expect(bubble.locator(".bubble-sender")).to_have_text("Contact 2")
    panel = page.get_by_role("complementary", name="Group info")
    expect(panel.locator(f'[data-member="{wid(ALICE)}"] .badge-creator')).to_be_visible()
    expect(panel.locator(f'[data-member="{instance.wid}"]')).to_contain_text("You")
    expect(panel.locator(".group-invite")).to_contain_text("https://chat.whatsapp.com/")
    shots(page, "group-chat")

    # A member posts from the sandbox form; the new bubble shows its sender.
    panel.get_by_label("Member").select_option(label="Contact 1")
    panel.get_by_label("Action").select_option("post")
    panel.get_by_label("Text or new subject").fill("see you there")
    panel.get_by_role("button", name="Do it").click()
    expect(page.locator(".flash")).to_contain_text("Done")
    assert EmuMessage.objects.filter(chat_id=group_id, sender=ALICE, recipient=instance.phone).exists()
    posted = page.locator(".bubble", has_text="see you there")
    expect(posted).to_be_visible(timeout=30_000)
    expect(posted.locator(".bubble-sender")).to_have_text("Contact 1")
