"""The cabinet's side of the cloud engine: the create form takes the credentials,
the instance page shows the callback URL and verify token to paste at Meta, never
the secrets in full, and why the credentials were refused."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from engines.cloud.models import CloudAccount
from instances.models import Account, Instance
from tests.engines.cloud.conftest import APP_SECRET, CREDENTIALS, TOKEN, VERIFY_TOKEN
from tests.engines.cloud.fakegraph import FakeGraph

FORM = {
    "name": "Support",
    "engine": "cloud",
    "cloud_phone_number_id": CREDENTIALS["phoneNumberId"],
    "cloud_access_token": TOKEN,
    "cloud_app_secret": APP_SECRET,
    "cloud_verify_token": VERIFY_TOKEN,
}


def test_create_a_cloud_instance_from_the_cabinet(client: Client, account: Account, graph: FakeGraph) -> None:
    client.force_login(account.user)
    page = client.get(reverse("dashboard:create")).content.decode()
    assert 'value="cloud"' in page and 'value="cloud" disabled' not in page
    assert 'name="cloud_access_token"' in page and 'type="password"' in page
    response = client.post(reverse("dashboard:create"), FORM)
    instance = Instance.objects.get(account=account)
    assert response.status_code == 302
    assert instance.engine == "cloud" and instance.state == "authorized"
    detail = client.get(reverse("dashboard:instance", args=[instance.id])).content.decode()
    assert f"/engines/cloud/webhook/{instance.id}" in detail
    assert VERIFY_TOKEN in detail
    assert TOKEN not in detail and APP_SECRET not in detail
    assert "…" + TOKEN[-4:] in detail
    assert "data-qr" not in detail  # linked by credentials, not a QR code


def test_missing_credentials_are_a_form_error(client: Client, account: Account, graph: FakeGraph) -> None:
    client.force_login(account.user)
    response = client.post(reverse("dashboard:create"), {**FORM, "cloud_access_token": ""})
    assert response.status_code == 200
    assert "accessToken" in response.content.decode() and "is required" in response.content.decode()
    assert not Instance.objects.filter(account=account).exists()


def test_a_refused_token_shows_metas_reason(client: Client, account: Account, graph: FakeGraph) -> None:
    client.force_login(account.user)
    client.post(reverse("dashboard:create"), {**FORM, "cloud_access_token": "revoked-token-xyz"})
    instance = Instance.objects.get(account=account)
    assert instance.state == "notAuthorized"
    detail = client.get(reverse("dashboard:instance", args=[instance.id])).content.decode()
    assert "data-engine-problem" in detail and "refused the access token" in detail


def test_the_admin_shows_only_masked_secrets(client: Client, cloud_instance: Instance) -> None:
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-Correct-Horse-1")
    client.force_login(admin)
    account = CloudAccount.objects.get(instance=cloud_instance)
    listing = client.get(reverse("admin:cloud_cloudaccount_changelist")).content.decode()
    page = client.get(reverse("admin:cloud_cloudaccount_change", args=[account.pk])).content.decode()
    for body in (listing, page):
        assert TOKEN not in body and APP_SECRET not in body and VERIFY_TOKEN not in body
    assert "…" + TOKEN[-4:] in page
