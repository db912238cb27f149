import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuPhone
from instances.models import Instance
from tests.conftest import method_url

BODY = {"phoneNumber": 79001234567, "method": "sms", "locale": "en-US", "name": "Ann"}


def row(instance: Instance) -> dict[str, Any]:
    return Instance.objects.values().get(pk=instance.pk)


def start(client: APIClient, instance: Instance, body: Any, verb: str = "POST") -> Any:
    return client.generic(
        verb, method_url(instance, "startAuthorization"), json.dumps(body), content_type="application/json"
    )


def test_it_starts_registration(api_client: APIClient, instance: Instance) -> None:
    r = start(api_client, instance, BODY)
    assert r.status_code == 200
    assert r.json() == {"status": True, "data": {"status": "success"}}
    instance.refresh_from_db()
    assert instance.state == "pendingCode"
    assert instance.pairing_phone == "79001234567"
    assert len(instance.pairing_code) == 6
    assert instance.pairing_code.isdigit()
    assert EmuPhone.objects.filter(phone="79001234567").exists()
    assert api_client.get(method_url(instance, "getStateInstance")).json() == {"stateInstance": "pendingCode"}


def test_get_with_a_json_body_works_as_documented(api_client: APIClient, instance: Instance) -> None:
    r = start(api_client, instance, {"phoneNumber": 79001234567, "method": "voice"}, verb="GET")
    assert r.json() == {"status": True, "data": {"status": "success"}}
    instance.refresh_from_db()
    assert instance.state == "pendingCode"


def test_it_can_be_restarted_with_a_new_code(api_client: APIClient, instance: Instance) -> None:
    start(api_client, instance, BODY)
    start(api_client, instance, {**BODY, "phoneNumber": 79001234568, "method": "app"})
    instance.refresh_from_db()
    assert (instance.state, instance.pairing_phone) == ("pendingCode", "79001234568")


def test_authorized_instance_reports_already_registered(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    before = row(authorized_instance)
    r = start(api_client, authorized_instance, BODY)
    assert r.status_code == 200
    assert r.json() == {"status": False, "data": {"status": "error", "reason": "already_registered"}}
    assert row(authorized_instance) == before


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"method": "sms"}, "'phoneNumber' is required"),
        ({"phoneNumber": 79001234567}, "'method' is required"),
        ({**BODY, "method": "fax"}, "'method' must be one of [sms, voice, app]"),
        ({**BODY, "phoneNumber": "+7 900"}, "'phoneNumber' must be a number"),
        ({**BODY, "locale": "x" * 17}, "'locale' length must be less than or equal to 16 characters long"),
        ({**BODY, "name": 5}, "'name' must be a string"),
        ({**BODY, "code": "123456"}, "'code' is not allowed"),
        ("sms", "'value' must be of type object"),
    ],
)
def test_it_rejects_invalid_input(api_client: APIClient, instance: Instance, body: Any, detail: str) -> None:
    before = row(instance)
    r = start(api_client, instance, body)
    assert r.status_code == 400
    payload = r.json()
    assert set(payload) == {"statusCode", "timestamp", "path", "message"}
    assert payload["message"] == f"Validation failed. Details: {detail}"
    assert row(instance) == before


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    before = row(instance)
    r = api_client.post(method_url(instance, "startAuthorization", token="0" * 50), BODY, format="json")
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert row(instance) == before


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    r = api_client.post(
        f"/waInstance1{instance.id}/startAuthorization/{instance.api_token}", BODY, format="json"
    )
    assert r.status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    assert start(api_client, instance, BODY, verb="PUT").status_code == 404
    assert start(api_client, instance, BODY, verb="DELETE").status_code == 404
    instance.refresh_from_db()
    assert instance.state == "notAuthorized"
