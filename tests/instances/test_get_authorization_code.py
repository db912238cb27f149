import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator import pairing
from engines.emulator.models import EmuPhone
from engines.emulator.transport import PAIRING_ALPHABET
from instances.models import Instance
from instances.runner import Runner
from tests.conftest import method_url

PHONE = 79001234567


def row(instance: Instance) -> dict[str, Any]:
    return Instance.objects.values().get(pk=instance.pk)


def get_code(client: APIClient, instance: Instance, body: Any) -> Any:
    return client.post(
        method_url(instance, "getAuthorizationCode"), json.dumps(body), content_type="application/json"
    )


def test_it_returns_a_pairing_code(api_client: APIClient, instance: Instance) -> None:
    r = get_code(api_client, instance, {"phoneNumber": PHONE})
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["status", "code"]
    assert body["status"] is True
    assert len(body["code"]) == 8
    assert set(body["code"]) <= set(PAIRING_ALPHABET)


def test_it_stores_the_code_for_about_two_and_a_half_minutes(
    api_client: APIClient, instance: Instance
) -> None:
    code = get_code(api_client, instance, {"phoneNumber": PHONE}).json()["code"]
    instance.refresh_from_db()
    assert instance.pairing_code == code
    assert instance.pairing_phone == str(PHONE)
    assert instance.pairing_expires_at is not None
    ttl = instance.pairing_expires_at - timezone.now()
    assert timedelta(seconds=140) < ttl <= timedelta(seconds=150)
    assert EmuPhone.objects.filter(phone=str(PHONE)).exists()


def test_entering_the_code_links_the_instance(api_client: APIClient, instance: Instance) -> None:
    code = get_code(api_client, instance, {"phoneNumber": PHONE}).json()["code"]
    pairing.confirm_pairing_code(instance, code=code.lower())  # the user types it on the phone
    state = api_client.get(method_url(instance, "getStateInstance")).json()["stateInstance"]
    assert state == "starting"
    runner = Runner()
    runner.tick()
    runner.tick()
    assert api_client.get(method_url(instance, "getStateInstance")).json() == {"stateInstance": "authorized"}
    assert api_client.get(method_url(instance, "getSettings")).json()["wid"] == f"{PHONE}@c.us"


def test_authorized_instance_gets_status_false(api_client: APIClient, authorized_instance: Instance) -> None:
    before = row(authorized_instance)
    r = get_code(api_client, authorized_instance, {"phoneNumber": PHONE})
    assert r.status_code == 200
    assert r.json() == {"status": False, "code": ""}
    assert row(authorized_instance) == before


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'phoneNumber' is required"),
        ({"phoneNumber": "seven"}, "'phoneNumber' must be a number"),
        ({"phoneNumber": True}, "'phoneNumber' must be a number"),
        ({"phoneNumber": 79001234567.5}, "'phoneNumber' must be a number"),
        ({"phoneNumber": None}, "'phoneNumber' must be a number"),
        ({"phoneNumber": [PHONE]}, "'phoneNumber' must be a number"),
        ({"phoneNumber": 12345}, "'phoneNumber' must be larger than or equal to 1000000"),
        ({"phoneNumber": 10**16}, "'phoneNumber' must be less than or equal to 999999999999999"),
        ({"phoneNumber": PHONE, "chatId": "79001234567@c.us"}, "'chatId' is not allowed"),
        ([PHONE], "'value' must be of type object"),
    ],
)
def test_it_rejects_invalid_input(api_client: APIClient, instance: Instance, body: Any, detail: str) -> None:
    before = row(instance)
    r = get_code(api_client, instance, body)
    assert r.status_code == 400
    payload = r.json()
    assert set(payload) == {"statusCode", "timestamp", "path", "message"}
    assert payload["message"] == f"Validation failed. Details: {detail}"
    assert row(instance) == before
    assert not EmuPhone.objects.exists()


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    before = row(instance)
    r = api_client.post(
        method_url(instance, "getAuthorizationCode", token="0" * 50), {"phoneNumber": PHONE}, format="json"
    )
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert row(instance) == before


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    r = api_client.post(
        f"/waInstance1{instance.id}/getAuthorizationCode/{instance.api_token}",
        {"phoneNumber": PHONE},
        format="json",
    )
    assert r.status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(method_url(instance, "getAuthorizationCode")).status_code == 404
