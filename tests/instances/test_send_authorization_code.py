import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from instances.models import Instance
from instances.runner import Runner
from tests.conftest import method_url


@pytest.fixture
def pending(api_client: APIClient, instance: Instance) -> Instance:
    """An instance waiting for the SMS code of 79001234567."""
    r = api_client.post(
        method_url(instance, "startAuthorization"),
        {"phoneNumber": 79001234567, "method": "sms"},
        format="json",
    )
    assert r.json()["status"] is True
    instance.refresh_from_db()
    return instance


def row(instance: Instance) -> dict[str, Any]:
    return Instance.objects.values().get(pk=instance.pk)


def send_code(client: APIClient, instance: Instance, body: Any) -> Any:
    return client.post(
        method_url(instance, "sendAuthorizationCode"), json.dumps(body), content_type="application/json"
    )


def state_of(client: APIClient, instance: Instance) -> str:
    return str(client.get(method_url(instance, "getStateInstance")).json()["stateInstance"])


def test_the_right_code_authorizes_the_instance(api_client: APIClient, pending: Instance) -> None:
    r = send_code(api_client, pending, {"code": pending.pairing_code})
    assert r.status_code == 200
    assert r.json() == {"status": True, "data": {"status": "ok"}}
    assert state_of(api_client, pending) == "starting"
    pending.refresh_from_db()
    assert pending.wid == "79001234567@c.us"
    assert pending.pairing_code == ""
    runner = Runner()
    runner.tick()
    runner.tick()
    assert state_of(api_client, pending) == "authorized"
    assert api_client.get(method_url(pending, "getSettings")).json()["wid"] == "79001234567@c.us"
    history = api_client.get(method_url(pending, "getStateInstanceHistory")).json()
    assert [e["stateInstance"] for e in history[:3]] == ["authorized", "starting", "pendingCode"]


def test_a_dashed_code_is_accepted(api_client: APIClient, pending: Instance) -> None:
    code = pending.pairing_code
    r = send_code(api_client, pending, {"code": f"{code[:3]}-{code[3:]}"})
    assert r.json() == {"status": True, "data": {"status": "ok"}}


def test_a_wrong_code_reports_status_false(api_client: APIClient, pending: Instance) -> None:
    before = row(pending)
    wrong = "000000" if pending.pairing_code != "000000" else "111111"
    r = send_code(api_client, pending, {"code": wrong})
    assert r.status_code == 200
    assert r.json() == {"status": False, "data": {"status": "error", "reason": "invalid_code"}}
    assert row(pending) == before
    assert state_of(api_client, pending) == "pendingCode"


def test_an_expired_code_reports_status_false(api_client: APIClient, pending: Instance) -> None:
    Instance.objects.filter(pk=pending.pk).update(pairing_expires_at=timezone.now() - timedelta(seconds=1))
    r = send_code(api_client, pending, {"code": pending.pairing_code})
    assert r.json() == {"status": False, "data": {"status": "error", "reason": "code_expired"}}
    assert state_of(api_client, pending) == "pendingCode"


def test_without_a_registration_it_reports_status_false(api_client: APIClient, instance: Instance) -> None:
    before = row(instance)
    r = send_code(api_client, instance, {"code": "123456"})
    assert r.json() == {"status": False, "data": {"status": "error", "reason": "no_pending_registration"}}
    assert row(instance) == before


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'code' is required"),
        ({"code": 123456}, "'code' must be a string"),
        ({"code": None}, "'code' must be a string"),
        ({"code": ""}, "'code' is not allowed to be empty"),
        ({"code": "1" * 17}, "'code' length must be less than or equal to 16 characters long"),
        ({"code": "123456", "phoneNumber": 79001234567}, "'phoneNumber' is not allowed"),
        (["123456"], "'value' must be of type object"),
    ],
)
def test_it_rejects_invalid_input(api_client: APIClient, pending: Instance, body: Any, detail: str) -> None:
    before = row(pending)
    r = send_code(api_client, pending, body)
    assert r.status_code == 400
    payload = r.json()
    assert set(payload) == {"statusCode", "timestamp", "path", "message"}
    assert payload["message"] == f"Validation failed. Details: {detail}"
    assert row(pending) == before


def test_it_rejects_wrong_token(api_client: APIClient, pending: Instance) -> None:
    before = row(pending)
    r = api_client.post(
        method_url(pending, "sendAuthorizationCode", token="0" * 50),
        {"code": pending.pairing_code},
        format="json",
    )
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert row(pending) == before


def test_it_rejects_unknown_instance(api_client: APIClient, pending: Instance) -> None:
    r = api_client.post(
        f"/waInstance1{pending.id}/sendAuthorizationCode/{pending.api_token}",
        {"code": pending.pairing_code},
        format="json",
    )
    assert r.status_code == 403
    assert state_of(api_client, pending) == "pendingCode"


def test_wrong_verb_is_404(api_client: APIClient, pending: Instance) -> None:
    r = api_client.generic(
        "GET",
        method_url(pending, "sendAuthorizationCode"),
        json.dumps({"code": pending.pairing_code}),
        content_type="application/json",
    )
    assert r.status_code == 404
    assert state_of(api_client, pending) == "pendingCode"
