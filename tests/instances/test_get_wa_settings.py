import pytest
from rest_framework.test import APIClient

from instances import services
from instances.models import Instance, State
from instances.transport.emulator import lid_for
from tests.conftest import method_url

KEYS = [
    "avatar",
    "base64Avatar",
    "chatId",
    "phone",
    "historySyncProgress",
    "stateInstance",
    "deviceId",
    "logoutProcess",
]


def test_it_describes_the_linked_account(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "getWaSettings"))
    assert r.status_code == 200
    body = r.json()
    assert list(body) == KEYS
    phone = authorized_instance.phone
    assert body["phone"] == phone
    assert body["chatId"] == lid_for(phone)
    assert body["chatId"].endswith("@lid")
    assert body["deviceId"].startswith(f"{phone}:")
    assert body["deviceId"].endswith("@s.whatsapp.net")
    assert body["avatar"].startswith("http")
    assert body["base64Avatar"] == ""
    assert body["historySyncProgress"] == 100
    assert body["stateInstance"] == "authorized"
    assert body["logoutProcess"] is False


def test_unlinked_instance_has_empty_fields(api_client: APIClient, instance: Instance) -> None:
    body = api_client.get(method_url(instance, "getWaSettings")).json()
    assert body == {
        "avatar": "",
        "base64Avatar": "",
        "chatId": "",
        "phone": "",
        "historySyncProgress": 0,
        "stateInstance": "notAuthorized",
        "deviceId": "",
        "logoutProcess": False,
    }


@pytest.mark.parametrize("state", [State.STARTING, State.BLOCKED])
def test_starting_and_blocked_have_empty_fields(
    api_client: APIClient, authorized_instance: Instance, state: str
) -> None:
    services.change_state(authorized_instance, state)
    body = api_client.get(method_url(authorized_instance, "getWaSettings")).json()
    assert body["stateInstance"] == state
    assert (body["avatar"], body["chatId"], body["phone"], body["deviceId"]) == ("", "", "", "")


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "getWaSettings", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(f"/waInstance1{instance.id}/getWaSettings/{instance.api_token}").status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    assert api_client.post(method_url(instance, "getWaSettings")).status_code == 404
