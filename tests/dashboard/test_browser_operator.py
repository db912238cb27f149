"""The operator console in a real browser (Debian chromium), at desktop and phone sizes:
from the /admin/ overview to "what is wrong with instance N" and an action on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from instances import services
from instances.models import Instance
from journals import webhooks
from journals.models import Notification, NotificationState
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import LiveServer, method_url
from tests.dashboard.test_browser import CHROMIUM, browser_page, shots
from tests.dashboard.test_browser_customer import SIZES, axe_violations
from tests.factories import AccountFactory, UserFactory, make_instance

__all__ = ["browser_page", "shots"]  # fixtures shared with test_browser

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture
def troubled(db: None) -> Instance:
    """An instance with the two classic troubles: sends stuck in its queue (it is not
    authorized) and a webhook queue blocked by a refused URL."""
    instance = make_instance(AccountFactory(name="Acme"))
    api = APIClient()
    for n in range(2):
        r = api.post(method_url(instance, "sendMessage"), {"chatId": "79001234567@c.us", "message": f"m{n}"}, format="json")
        assert r.status_code == 200
    services.update_settings(instance, {"webhookUrl": "http://127.0.0.1:9/hook"})
    Notification.objects.create(
        instance=instance, receipt_id=1, type_webhook="stateInstanceChanged",
        body={"typeWebhook": "stateInstanceChanged", "stateInstance": "notAuthorized"}, state=NotificationState.QUEUED,
    )
    webhooks.deliver(instance.id)  # refused by the SSRF guard: the queue is blocked
    return instance


def operator_login(page: Any, live: LiveServer) -> None:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live.url}])


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_operator_finds_what_is_wrong_and_fixes_it(
    live_asgi: LiveServer, browser_page: Any, troubled: Instance, size: str, shots: Any
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size(SIZES[size])
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    operator_login(page, live_asgi)

    page.goto(f"{live_asgi.url}/admin/")
    overview = page.locator("#relay-overview")
    expect(overview).to_contain_text("2 queued")
    expect(overview).to_contain_text("Blocked notification queues")
    expect(overview).to_contain_text("No runner holds a live lease.")
    shots(page, f"26-admin-overview-{size}")
    assert not axe_violations(page)

    # From the deepest queue to the instance's own page.
    overview.get_by_role("link", name=str(troubled.id)).first.click()
    expect(page.locator("h1")).to_contain_text("Change instance")
    expect(page.locator("body")).to_contain_text("2 queued, 0 sending")
    expect(page.locator("body")).to_contain_text("webhook deliveries are blocked")
    expect(page.locator("body")).not_to_contain_text(troubled.api_token)
    shots(page, f"27-admin-instance-{size}")

    # Its send queue, one click away.
    page.get_by_role("link", name="send queue").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)

    # Clear it with the action, as an operator would.
    page.goto(f"{live_asgi.url}/admin/instances/instance/?q={troubled.id}")
    page.locator(f'input[name="_selected_action"][value="{troubled.id}"]').check()
    page.locator('select[name="action"]').select_option("clear_queue")
    page.locator('button[name="index"]').click()
    expect(page.locator(".messagelist")).to_contain_text("Removed 2 queued message(s)")
    assert not OutgoingMessage.objects.filter(instance=troubled, status=OutgoingStatus.QUEUED).exists()
    assert not [e for e in errors if "404" not in e], errors  # the stock admin has no favicon
