"""Partner token rotation (cabinet and operator console) and the operator console's
read-only journals."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from instances.models import Account, Instance
from journals.models import Notification, WebhookAttempt
from messaging.models import OutgoingMessage
from tests.factories import UserFactory


def partner_status(token: str) -> int:
    return APIClient().get(f"/partner/getInstances/{token}").status_code


def test_rotation_needs_confirmation(owner_client: Client, account: Account) -> None:
    old = account.partner_token
    response = owner_client.post(reverse("dashboard:rotate_partner_token"), {})
    assert response.status_code == 422
    assert "Tick the box to confirm" in response.content.decode()
    account.refresh_from_db()
    assert account.partner_token == old


def test_rotation_issues_a_new_token_and_the_old_one_stops(owner_client: Client, account: Account) -> None:
    old = account.partner_token
    assert partner_status(old) == 200
    response = owner_client.post(reverse("dashboard:rotate_partner_token"), {"rotate-confirm": "on"}, follow=True)
    account.refresh_from_db()
    assert account.partner_token != old and account.partner_token.startswith("gac.")
    assert account.partner_token in response.content.decode() and "New partner token issued" in response.content.decode()
    assert partner_status(old) == 401 and partner_status(account.partner_token) == 200


def test_rotation_is_post_only_and_signed_in_only(owner_client: Client) -> None:
    url = reverse("dashboard:rotate_partner_token")
    assert owner_client.get(url).status_code == 405
    assert Client().post(url, {"rotate-confirm": "on"}).status_code == 302  # to the login page


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_admin_rotates_partner_tokens(admin_client: Client, account: Account) -> None:
    old = account.partner_token
    admin_client.post("/admin/instances/account/", {"action": "rotate_partner_token", "_selected_action": [account.pk]})
    account.refresh_from_db()
    assert account.partner_token != old


@pytest.mark.parametrize(
    "path",
    ["messaging/outgoingmessage", "messaging/sendcursor", "journals/notification", "journals/webhookattempt",
     "journals/webhookredelivery", "instances/sessionlease"],
)
def test_operator_console_journals_are_read_only(admin_client: Client, instance: Instance, path: str) -> None:
    note = Notification.objects.create(instance=instance, receipt_id=1, type_webhook="stateInstanceChanged", body={})
    WebhookAttempt.objects.create(notification=note, instance=instance, receipt_id=1, attempt=1, url="https://x")
    OutgoingMessage.objects.create(instance=instance, chat_id="1@c.us", method="sendMessage", type_message="textMessage")
    response = admin_client.get(f"/admin/{path}/")
    assert response.status_code == 200
    assert admin_client.get(f"/admin/{path}/add/").status_code == 403
