"""Emulator control API ``/api/v1/emulator/…``: pairing by QR and code, forced states,
simulated contacts, avatars, and who may call it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator import transport as emulator
from engines.emulator.models import EmuContact
from engines.emulator.transport import EmulatorTransport
from instances import services
from instances.models import Account, Instance, State
from instances.runner import Runner
from tests.conftest import method_url
from tests.factories import AccountFactory, UserFactory, make_instance

pytestmark = pytest.mark.django_db

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def control_url(instance: Instance | int, action: str) -> str:
    pk = instance if isinstance(instance, int) else instance.pk
    return f"/api/v1/emulator/instances/{pk}/{action}"


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def post(client: APIClient, instance: Instance, action: str, body: dict[str, Any], token: str | None = None) -> Any:
    headers = bearer(token if token is not None else instance.api_token)
    return client.post(control_url(instance, action), body, format="json", **headers)


def tick() -> None:
    """One session-runner tick: finishes ``starting`` connects."""
    runner = Runner(runner_id="test-runner", ttl=30)
    runner.tick()
    runner.shutdown()


def state_of(client: APIClient, instance: Instance) -> str:
    r = client.get(method_url(instance, "getStateInstance"))
    assert r.status_code == 200
    return str(r.json()["stateInstance"])


def current_qr_text(instance: Instance) -> str:
    return EmulatorTransport(instance).current_qr().text


# --- Pairing by QR ---------------------------------------------------------------------


def test_scan_current_qr_pairs_after_a_runner_tick(api_client: APIClient, instance: Instance) -> None:
    r = post(api_client, instance, "scan-qr", {"phoneNumber": "+79001230001", "name": "Alice", "qr": current_qr_text(instance)})

    assert r.status_code == 200, r.content
    assert r.json() == {"result": True, "stateInstance": "starting"}
    tick()
    assert state_of(api_client, instance) == "authorized"
    settings_body = api_client.get(method_url(instance, "getSettings")).json()
    assert settings_body["wid"] == "79001230001@c.us"
    fresh = Instance.objects.get(pk=instance.pk)
    assert (fresh.phone, fresh.profile_name) == ("79001230001", "Alice")


def test_scan_just_rotated_out_qr_is_accepted(api_client: APIClient, instance: Instance) -> None:
    previous = emulator.qr_text(instance.id, instance.qr_secret, emulator.qr_window() - 1)
    r = post(api_client, instance, "scan-qr", {"phoneNumber": "79001230002", "qr": previous})
    assert r.json()["result"] is True


@pytest.mark.parametrize("which", ["stale", "foreign", "garbage"])
def test_scan_refuses_stale_or_foreign_qr(api_client: APIClient, instance: Instance, which: str) -> None:
    if which == "stale":
        qr = emulator.qr_text(instance.id, instance.qr_secret, emulator.qr_window() - 2)
    elif which == "foreign":
        qr = current_qr_text(make_instance(instance.account))
    else:
        qr = "relay-emu:1:2:3"

    r = post(api_client, instance, "scan-qr", {"phoneNumber": "79001230003", "qr": qr})

    assert r.status_code == 409
    body = r.json()
    assert body["result"] is False
    assert body["stateInstance"] == "notAuthorized"
    assert "expired" in body["reason"]
    tick()
    assert Instance.objects.get(pk=instance.pk).state == State.NOT_AUTHORIZED


def test_scan_without_qr_scans_what_is_shown(api_client: APIClient, instance: Instance) -> None:
    r = post(api_client, instance, "scan-qr", {"phoneNumber": "79001230004"})
    assert r.json() == {"result": True, "stateInstance": "starting"}


def test_scan_of_an_authorized_instance_is_refused(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "scan-qr", {"phoneNumber": "79001230005"})
    assert r.status_code == 409
    assert r.json()["result"] is False
    assert r.json()["stateInstance"] == "authorized"


@pytest.mark.parametrize("body", [{}, {"phoneNumber": "12ab456789"}, {"phoneNumber": 79001230006}, {"phoneNumber": "79001230006", "x": 1}])
def test_scan_validates_input(api_client: APIClient, instance: Instance, body: dict[str, Any]) -> None:
    r = post(api_client, instance, "scan-qr", body)
    assert r.status_code == 400
    assert "Validation failed" in r.json()["message"]


# --- Pairing by code -------------------------------------------------------------------


def request_code(client: APIClient, instance: Instance, phone: int = 79001230010) -> str:
    r = client.post(method_url(instance, "getAuthorizationCode"), {"phoneNumber": phone}, format="json")
    assert r.status_code == 200
    assert r.json()["status"] is True
    return str(r.json()["code"])


def test_confirm_pairing_code_pairs(api_client: APIClient, instance: Instance) -> None:
    code = request_code(api_client, instance)
    typed = f"{code[:4]}-{code[4:]}".lower()  # as a user types it

    r = post(api_client, instance, "confirm-pairing-code", {"code": typed})

    assert r.status_code == 200, r.content
    assert r.json() == {"result": True, "stateInstance": "starting"}
    tick()
    assert state_of(api_client, instance) == "authorized"
    assert Instance.objects.get(pk=instance.pk).wid == "79001230010@c.us"
    # The code is single use.
    again = post(api_client, instance, "confirm-pairing-code", {"code": code})
    assert again.json()["result"] is False


def test_wrong_pairing_code_is_refused(api_client: APIClient, instance: Instance) -> None:
    code = request_code(api_client, instance)
    wrong = ("A" if code[0] != "A" else "B") + code[1:]

    r = post(api_client, instance, "confirm-pairing-code", {"code": wrong})

    assert r.status_code == 409
    assert r.json()["result"] is False
    assert r.json()["reason"] == "wrong pairing code"
    assert Instance.objects.get(pk=instance.pk).state == State.NOT_AUTHORIZED


def test_expired_pairing_code_is_refused(api_client: APIClient, instance: Instance) -> None:
    code = request_code(api_client, instance)
    Instance.objects.filter(pk=instance.pk).update(pairing_expires_at=timezone.now() - timedelta(seconds=1))

    r = post(api_client, instance, "confirm-pairing-code", {"code": code})

    assert r.json()["result"] is False
    assert "expired" in r.json()["reason"]
    assert Instance.objects.get(pk=instance.pk).state == State.NOT_AUTHORIZED


def test_confirm_without_pending_code_is_refused(api_client: APIClient, instance: Instance) -> None:
    r = post(api_client, instance, "confirm-pairing-code", {"code": "ABCDEFGH"})
    assert r.json()["result"] is False


def test_registration_code_shows_the_sms(api_client: APIClient, instance: Instance) -> None:
    empty = api_client.get(control_url(instance, "registration-code"), **bearer(instance.api_token))
    assert empty.json() == {"phoneNumber": "", "code": ""}
    services.start_authorization(instance, phone="79001230020", method="sms")

    r = api_client.get(control_url(instance, "registration-code"), **bearer(instance.api_token))

    assert r.status_code == 200
    body = r.json()
    assert body["phoneNumber"] == "79001230020"
    assert len(body["code"]) == 6 and body["code"].isdigit()


# --- Forced states ------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["blocked", "yellowCard", "sleepMode"])
def test_force_state(api_client: APIClient, authorized_instance: Instance, state: str) -> None:
    r = post(api_client, authorized_instance, "state", {"state": state})

    assert r.status_code == 200
    assert r.json() == {"result": True, "stateInstance": state}
    assert state_of(api_client, authorized_instance) == state


def test_force_authorized_needs_pairing(api_client: APIClient, instance: Instance) -> None:
    r = post(api_client, instance, "state", {"state": "authorized"})
    assert r.status_code == 409
    assert r.json()["result"] is False
    assert state_of(api_client, instance) == "notAuthorized"


@pytest.mark.parametrize("state", ["notAuthorized", "pendingCode", "bogus", ""])
def test_force_state_refuses_other_values(api_client: APIClient, authorized_instance: Instance, state: str) -> None:
    r = post(api_client, authorized_instance, "state", {"state": state})
    assert r.status_code == 400
    assert Instance.objects.get(pk=authorized_instance.pk).state == State.AUTHORIZED


# --- Contacts and avatars -----------------------------------------------------------------


def test_contacts_create_and_list(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "contacts", {"phoneNumber": "79009990001", "name": "Carol", "script": "echo"})
    assert r.status_code == 201, r.content
    assert r.json() == {
        "phoneNumber": "79009990001",
        "chatId": "79009990001@c.us",
        "name": "Carol",
        "registered": True,
        "script": "echo",
        "callRule": "answer",
        "avatar": emulator.avatar_url(EmuContact.objects.get().contact),
        "inAddressbook": True,
    }
    post(api_client, authorized_instance, "contacts", {"phoneNumber": "79009990002", "registered": False})
    r = post(api_client, authorized_instance, "contacts", {"phoneNumber": "79009990001", "callRule": "silent"})
    assert r.json()["callRule"] == "silent"
    assert post(api_client, authorized_instance, "contacts", {"phoneNumber": "79009990003", "callRule": "maybe"}).status_code == 400

    listed = api_client.get(control_url(authorized_instance, "contacts"), **bearer(authorized_instance.api_token))

    assert listed.status_code == 200
    assert [(c["phoneNumber"], c["registered"]) for c in listed.json()] == [("79009990001", True), ("79009990002", False)]


def test_contacts_are_per_linked_phone(api_client: APIClient, authorized_instance: Instance) -> None:
    post(api_client, authorized_instance, "contacts", {"phoneNumber": "79009990003"})
    other = make_instance(authorized=True, phone="79008880000")

    r = api_client.get(control_url(other, "contacts"), **bearer(other.api_token))

    assert r.status_code == 200
    assert r.json() == []


def test_contacts_need_a_paired_instance(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(control_url(instance, "contacts"), **bearer(instance.api_token)).json() == []
    r = post(api_client, instance, "contacts", {"phoneNumber": "79009990004"})
    assert r.status_code == 400
    assert EmuContact.objects.count() == 0


def test_avatar_is_a_png(api_client: APIClient) -> None:
    r = api_client.get("/api/v1/emulator/avatars/79009990005.png")
    assert r.status_code == 200
    assert r["Content-Type"] == "image/png"
    assert r.content.startswith(PNG_MAGIC)
    assert "max-age" in r["Cache-Control"]


# --- Who may call it ------------------------------------------------------------------------


def test_no_credentials_is_401(api_client: APIClient, instance: Instance) -> None:
    r = api_client.post(control_url(instance, "scan-qr"), {"phoneNumber": "79001230030"}, format="json")
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_no_credentials_for_unknown_instance_is_also_401(api_client: APIClient, instance: Instance) -> None:
    """Anonymous callers must not learn which ids exist."""
    r = api_client.get(control_url(instance.pk + 1, "contacts"))
    assert r.status_code == 401


def test_non_bearer_scheme_is_401(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(control_url(instance, "contacts"), HTTP_AUTHORIZATION=f"Token {instance.api_token}")
    assert r.status_code == 401


def test_other_instances_token_is_403(api_client: APIClient, instance: Instance) -> None:
    other = make_instance(instance.account)
    r = post(api_client, instance, "scan-qr", {"phoneNumber": "79001230031"}, token=other.api_token)
    assert r.status_code == 403
    assert Instance.objects.get(pk=instance.pk).state == State.NOT_AUTHORIZED


def test_unknown_instance_with_a_token_is_403(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(control_url(instance.pk + 1, "contacts"), **bearer(instance.api_token))
    assert r.status_code == 403


def test_deleted_instance_is_403(api_client: APIClient, instance: Instance) -> None:
    services.delete_instance(instance)
    r = api_client.get(control_url(instance, "contacts"), **bearer(instance.api_token))
    assert r.status_code == 403


def test_owner_partner_token_works(api_client: APIClient, instance: Instance, account: Account) -> None:
    r = post(api_client, instance, "scan-qr", {"phoneNumber": "79001230032"}, token=account.partner_token)
    assert r.status_code == 200
    assert r.json()["result"] is True


def test_other_accounts_partner_token_is_403(api_client: APIClient, instance: Instance) -> None:
    stranger = AccountFactory()
    r = post(api_client, instance, "scan-qr", {"phoneNumber": "79001230033"}, token=stranger.partner_token)
    assert r.status_code == 403
    assert Instance.objects.get(pk=instance.pk).state == State.NOT_AUTHORIZED


def test_owner_session_works(api_client: APIClient, instance: Instance, account: Account) -> None:
    api_client.force_login(account.user)
    r = api_client.post(control_url(instance, "scan-qr"), {"phoneNumber": "79001230034"}, format="json")
    assert r.status_code == 200
    assert r.json()["result"] is True


def test_non_owner_session_is_403(api_client: APIClient, instance: Instance) -> None:
    api_client.force_login(AccountFactory().user)
    r = api_client.post(control_url(instance, "scan-qr"), {"phoneNumber": "79001230035"}, format="json")
    assert r.status_code == 403
    assert Instance.objects.get(pk=instance.pk).state == State.NOT_AUTHORIZED


def test_staff_session_works(api_client: APIClient, instance: Instance) -> None:
    api_client.force_login(UserFactory(is_staff=True))
    r = api_client.get(control_url(instance, "contacts"))
    assert r.status_code == 200


def test_owner_session_write_needs_csrf_token(instance: Instance, account: Account) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(account.user)

    forged = client.post(control_url(instance, "state"), {"state": "starting"}, format="json")
    assert forged.status_code == 403
    assert Instance.objects.get(pk=instance.pk).state == State.NOT_AUTHORIZED

    reads = client.get(control_url(instance, "contacts"))
    assert reads.status_code == 200

    secret = "0123456789abcdefghijklmnopqrstuv"  # a CSRF cookie as the cabinet would set it
    client.cookies["csrftoken"] = secret
    ok = client.post(control_url(instance, "state"), {"state": "starting"}, format="json", HTTP_X_CSRFTOKEN=secret)
    assert ok.status_code == 200, ok.content


def test_bearer_callers_need_no_csrf_token(instance: Instance) -> None:
    client = APIClient(enforce_csrf_checks=True)
    r = client.post(control_url(instance, "state"), {"state": "starting"}, format="json", **bearer(instance.api_token))
    assert r.status_code == 200


def test_non_emulator_instance_is_refused(api_client: APIClient, account: Account) -> None:
    inst = make_instance(account, engine="waweb")
    r = post(api_client, inst, "scan-qr", {"phoneNumber": "79001230036"})
    assert r.status_code == 400
    assert Instance.objects.get(pk=inst.pk).state == State.NOT_AUTHORIZED
