"""Instance list, create, rename, delete, token rotation and pairing from the cabinet."""

from __future__ import annotations

import sys

import pytest
from django.test import Client
from django.urls import reverse

from instances.models import Account, Engine, Instance, State

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_empty_list_invites_to_create(owner_client: Client) -> None:
    body = owner_client.get(reverse("dashboard:instances")).content.decode()
    assert "No instances yet" in body
    assert "Create your first instance" in body


def test_list_shows_live_badges(owner_client: Client, instance: Instance) -> None:
    body = owner_client.get(reverse("dashboard:instances")).content.decode()
    assert f'data-state-badge="{instance.id}"' in body
    assert 'data-live="/dashboard/"' in body  # the page opens the live socket
    rows = owner_client.get(reverse("dashboard:instances") + "?partial=rows", **HTMX).content.decode()
    assert "<html" not in rows and str(instance.id) in rows


@pytest.fixture
def neonize_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """This server without neonize: the waweb engine is not installed."""
    monkeypatch.setitem(sys.modules, "neonize", None)


@pytest.mark.usefixtures("neonize_absent")
def test_create_an_emulator_instance(owner_client: Client, account: Account) -> None:
    page = owner_client.get(reverse("dashboard:create")).content.decode()
    assert 'value="waweb" disabled' in page and "Coming soon" in page
    response = owner_client.post(reverse("dashboard:create"), {"name": "Sales", "engine": "emulator"})
    instance = Instance.objects.get(account=account)
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:instance", args=[instance.id])
    assert instance.name == "Sales" and instance.engine == Engine.EMULATOR and instance.state == State.NOT_AUTHORIZED


@pytest.mark.usefixtures("neonize_absent")
def test_other_engines_are_refused_with_a_note(owner_client: Client, account: Account) -> None:
    response = owner_client.post(reverse("dashboard:create"), {"name": "x", "engine": "waweb"})
    assert response.status_code == 200
    assert "cannot be used here" in response.content.decode()
    assert not Instance.objects.filter(account=account).exists()


def test_instance_page_shows_credentials_and_pairing(owner_client: Client, instance: Instance, settings: object) -> None:
    body = owner_client.get(reverse("dashboard:instance", args=[instance.id])).content.decode()
    assert instance.api_token in body
    assert 'data-copy="#cred-token"' in body
    assert "Scan with phone number" in body
    assert f'data-live-instance="{instance.id}"' in body


def test_rename(owner_client: Client, instance: Instance) -> None:
    response = owner_client.post(reverse("dashboard:rename", args=[instance.id]), {"name": "  Support  "}, **HTMX)
    assert response.status_code == 200 and "Saved." in response.content.decode()
    instance.refresh_from_db()
    assert instance.name == "Support"


def test_rename_refuses_blank(owner_client: Client, instance: Instance) -> None:
    response = owner_client.post(reverse("dashboard:rename", args=[instance.id]), {"name": "   "}, **HTMX)
    assert "This field is required" in response.content.decode() or "cannot be empty" in response.content.decode()
    instance.refresh_from_db()
    assert instance.name != ""


def test_delete_needs_the_id_typed(owner_client: Client, instance: Instance) -> None:
    url = reverse("dashboard:delete", args=[instance.id])
    assert "cannot be undone" in owner_client.get(url).content.decode()
    wrong = owner_client.post(url, {"confirm_id": "123"})
    assert "Type the instance id exactly" in wrong.content.decode()
    instance.refresh_from_db()
    assert not instance.is_deleted
    response = owner_client.post(url, {"confirm_id": str(instance.id)})
    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.is_deleted
    assert owner_client.get(reverse("dashboard:instance", args=[instance.id])).status_code == 404


def test_rotate_token(owner_client: Client, instance: Instance) -> None:
    old = instance.api_token
    response = owner_client.post(reverse("dashboard:rotate_token", args=[instance.id]), **HTMX)
    instance.refresh_from_db()
    assert instance.api_token != old
    assert instance.api_token in response.content.decode()
    assert "old one stopped working" in response.content.decode()


def test_rotate_token_needs_post(owner_client: Client, instance: Instance) -> None:
    assert owner_client.get(reverse("dashboard:rotate_token", args=[instance.id])).status_code == 405


def test_link_phone_starts_the_session(owner_client: Client, instance: Instance) -> None:
    response = owner_client.post(
        reverse("dashboard:link_phone", args=[instance.id]), {"link-phone": "+7 900 555-00-01", "link-name": "Ann"}, **HTMX
    )
    assert response.status_code == 200
    instance.refresh_from_db()
    assert instance.state == State.STARTING and instance.wid == "79005550001@c.us"
    assert "Connecting" in response.content.decode()


def test_link_phone_validates_the_number(owner_client: Client, instance: Instance) -> None:
    response = owner_client.post(reverse("dashboard:link_phone", args=[instance.id]), {"link-phone": "abc"}, **HTMX)
    assert "Enter the number with country code" in response.content.decode()
    instance.refresh_from_db()
    assert instance.state == State.NOT_AUTHORIZED


def test_link_phone_when_already_paired_says_so(owner_client: Client, authorized_instance: Instance) -> None:
    response = owner_client.post(
        reverse("dashboard:link_phone", args=[authorized_instance.id]), {"link-phone": "79005550002"}, **HTMX
    )
    assert "already authorized" in response.content.decode()


def test_pairing_code_flow(owner_client: Client, instance: Instance) -> None:
    response = owner_client.post(reverse("dashboard:pairing_code", args=[instance.id]), {"code-phone": "79005550003"}, **HTMX)
    instance.refresh_from_db()
    code = instance.pairing_code
    assert f"{code[:4]}-{code[4:]}" in response.content.decode()
    confirmed = owner_client.post(reverse("dashboard:confirm_code", args=[instance.id]), {"code": code}, **HTMX)
    assert "Code accepted" in confirmed.content.decode()
    instance.refresh_from_db()
    assert instance.state == State.STARTING


def test_wrong_pairing_code(owner_client: Client, instance: Instance) -> None:
    owner_client.post(reverse("dashboard:pairing_code", args=[instance.id]), {"code-phone": "79005550003"}, **HTMX)
    response = owner_client.post(reverse("dashboard:confirm_code", args=[instance.id]), {"code": "ZZZZZZZZ"}, **HTMX)
    assert "Wrong pairing code" in response.content.decode()


def test_logout_and_reboot(owner_client: Client, authorized_instance: Instance) -> None:
    owner_client.post(reverse("dashboard:reboot", args=[authorized_instance.id]))
    authorized_instance.refresh_from_db()
    assert authorized_instance.state == State.STARTING
    owner_client.post(reverse("dashboard:logout_instance", args=[authorized_instance.id]))
    authorized_instance.refresh_from_db()
    assert authorized_instance.state == State.NOT_AUTHORIZED and authorized_instance.wid == ""


def test_account_page_shows_partner_token_and_docs(owner_client: Client, account: Account) -> None:
    body = owner_client.get(reverse("dashboard:account")).content.decode()
    assert account.partner_token in body
    assert 'href="/api/docs/"' in body


def test_landing_page(client: Client, db: None) -> None:
    body = client.get("/").content.decode()
    assert "Create a free account" in body and "/static/vendor/htmx.min.js" in body
