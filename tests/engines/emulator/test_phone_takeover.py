"""One tenant per number: another account's instance cannot link a number that is
linked (or claimed) elsewhere, by any pairing path, nor claim, script or write as
another account's simulated contacts. Same-account use keeps working."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from engines.emulator.models import EmuMessage, EmuPhone
from instances import services
from instances.models import Account, Instance, State
from tests.conftest import method_url
from tests.engines.emulator.test_emulator_api import control_url, post
from tests.factories import AccountFactory, make_instance

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def victim() -> Instance:
    """Another account's instance, linked and authorized on 79001110001."""
    return make_instance(AccountFactory(), authorized=True, phone="79001110001")


def assert_untouched(attacker: Instance, victim: Instance) -> None:
    attacker.refresh_from_db()
    assert attacker.phone == ""
    assert attacker.state in (State.NOT_AUTHORIZED, State.PENDING_CODE)
    assert EmuPhone.objects.get(phone=victim.phone).account_id == victim.account_id


def test_scan_qr_of_another_accounts_number_is_refused(api_client: APIClient, instance: Instance, victim: Instance) -> None:
    r = post(api_client, instance, "scan-qr", {"phoneNumber": victim.phone, "name": "Mallory"})
    assert r.status_code == 409
    assert r.json()["result"] is False
    assert "another account" in r.json()["reason"]
    assert_untouched(instance, victim)
    assert EmuPhone.objects.get(phone=victim.phone).name != "Mallory"  # no renaming either


def test_cabinet_link_phone_of_another_accounts_number_is_refused(
    client: Client, instance: Instance, victim: Instance
) -> None:
    client.force_login(instance.account.user)
    r = client.post(reverse("dashboard:link_phone", args=[instance.id]), {"link-phone": victim.phone}, **HTMX)
    assert "another account" in r.content.decode()
    assert_untouched(instance, victim)


def test_pairing_code_for_another_accounts_number_is_refused(
    api_client: APIClient, instance: Instance, victim: Instance
) -> None:
    r = api_client.post(method_url(instance, "getAuthorizationCode"), {"phoneNumber": int(victim.phone)}, format="json")
    assert r.json() == {"status": False, "code": ""}
    assert_untouched(instance, victim)


def test_cabinet_pairing_code_for_another_accounts_number_is_refused(
    client: Client, instance: Instance, victim: Instance
) -> None:
    client.force_login(instance.account.user)
    r = client.post(reverse("dashboard:pairing_code", args=[instance.id]), {"code-phone": victim.phone}, **HTMX)
    assert "another account" in r.content.decode()
    instance.refresh_from_db()
    assert instance.pairing_code == ""


def test_a_code_issued_before_the_number_was_taken_cannot_link_it(
    api_client: APIClient, instance: Instance
) -> None:
    """The check at link time covers codes requested while the number was free."""
    code = services.request_pairing_code(instance, phone="79001110002")
    make_instance(AccountFactory(), authorized=True, phone="79001110002")
    r = post(api_client, instance, "confirm-pairing-code", {"code": code})
    assert r.status_code == 409
    assert "another account" in r.json()["reason"]
    instance.refresh_from_db()
    assert instance.phone == ""


def test_sms_registration_of_another_accounts_number_is_refused(
    api_client: APIClient, instance: Instance, victim: Instance
) -> None:
    r = api_client.post(
        method_url(instance, "startAuthorization"), {"phoneNumber": int(victim.phone), "method": "sms"}, format="json"
    )
    assert r.json()["status"] is False
    assert "another account" in r.json()["data"]["reason"]
    assert_untouched(instance, victim)


def test_sms_code_issued_before_the_number_was_taken_cannot_link_it(
    api_client: APIClient, instance: Instance
) -> None:
    services.start_authorization(instance, phone="79001110003", method="sms")
    instance.refresh_from_db()
    make_instance(AccountFactory(), authorized=True, phone="79001110003")
    r = api_client.post(method_url(instance, "sendAuthorizationCode"), {"code": instance.pairing_code}, format="json")
    assert r.json()["status"] is False
    instance.refresh_from_db()
    assert instance.phone == ""


def test_a_number_stays_claimed_after_its_instance_logs_out(api_client: APIClient, instance: Instance, victim: Instance) -> None:
    phone = victim.phone
    services.logout(victim)
    r = post(api_client, instance, "scan-qr", {"phoneNumber": phone})
    assert r.status_code == 409


def test_same_account_may_link_its_number_on_a_second_instance(
    api_client: APIClient, account: Account, authorized_instance: Instance
) -> None:
    second = make_instance(account)
    r = post(api_client, second, "scan-qr", {"phoneNumber": authorized_instance.phone})
    assert r.status_code == 200
    second.refresh_from_db()
    assert second.phone == authorized_instance.phone


def test_numbers_linked_before_claims_existed_are_protected(api_client: APIClient, instance: Instance, victim: Instance) -> None:
    EmuPhone.objects.filter(phone=victim.phone).update(account=None)
    r = post(api_client, instance, "scan-qr", {"phoneNumber": victim.phone})
    assert r.status_code == 409


# --- Simulated contacts ---------------------------------------------------------------


def test_another_accounts_simulated_contact_cannot_be_linked(
    api_client: APIClient, instance: Instance, victim: Instance
) -> None:
    r = post(api_client, victim, "contacts", {"phoneNumber": "79001110009", "script": "echo"})
    assert r.status_code == 201
    r = post(api_client, instance, "scan-qr", {"phoneNumber": "79001110009"})
    assert r.status_code == 409
    assert EmuPhone.objects.get(phone="79001110009").account_id == victim.account_id


def test_another_accounts_contact_cannot_be_rescripted(api_client: APIClient, authorized_instance: Instance, victim: Instance) -> None:
    assert post(api_client, victim, "contacts", {"phoneNumber": "79001110010", "script": "echo"}).status_code == 201
    r = post(api_client, authorized_instance, "contacts", {"phoneNumber": "79001110010", "script": ""})
    assert r.status_code == 400
    assert "another account" in r.json()["message"]
    r = post(api_client, authorized_instance, "contacts", {"phoneNumber": victim.phone, "registered": False})
    assert r.status_code == 400
    phone = EmuPhone.objects.get(phone="79001110010")
    assert phone.script == "echo"
    assert EmuPhone.objects.get(phone=victim.phone).registered is True


def test_another_accounts_number_may_be_kept_in_the_address_book(
    api_client: APIClient, authorized_instance: Instance, victim: Instance
) -> None:
    r = post(api_client, authorized_instance, "contacts", {"phoneNumber": victim.phone, "name": "Bob at work"})
    assert r.status_code == 201
    assert r.json()["name"] == "Bob at work"
    assert EmuPhone.objects.get(phone=victim.phone).name == "Test Phone"  # the owner's profile stays


def test_cabinet_cannot_rescript_another_accounts_contact(
    client: Client, authorized_instance: Instance, victim: Instance
) -> None:
    client.force_login(authorized_instance.account.user)
    r = client.post(
        reverse("dashboard:sandbox_contact", args=[authorized_instance.id]),
        {"contact-phone": victim.phone, "contact-registered": "", "contact-script": "echo"},
    )
    assert r.status_code == 409
    phone = EmuPhone.objects.get(phone=victim.phone)
    assert (phone.registered, phone.script) == (True, "")


# --- Writing as another account's number -----------------------------------------------


def _incoming(client: APIClient, instance: Instance, phone: str) -> Any:
    return client.post(
        control_url(instance, "incoming/textMessage"),
        {"phoneNumber": phone, "message": "I am your phone"},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {instance.api_token}",
    )


def test_events_cannot_be_written_as_another_accounts_number(
    api_client: APIClient, authorized_instance: Instance, victim: Instance
) -> None:
    r = _incoming(api_client, authorized_instance, victim.phone)
    assert r.status_code == 400
    assert "another account" in r.json()["message"]
    assert not EmuMessage.objects.filter(sender=victim.phone).exists()
    r = api_client.post(
        control_url(authorized_instance, "calls"),
        {"phoneNumber": victim.phone},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {authorized_instance.api_token}",
    )
    assert r.status_code == 400


def test_events_as_own_or_unclaimed_numbers_still_work(api_client: APIClient, authorized_instance: Instance) -> None:
    assert _incoming(api_client, authorized_instance, "79001110020").status_code == 200
    assert EmuMessage.objects.filter(sender="79001110020").count() == 1
