import pytest
from rest_framework.test import APIClient

from engines.emulator.transport import lid_for
from instances import services
from instances.models import Instance, State
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


def test_history_sync_progress_follows_the_session(api_client: APIClient, authorized_instance: Instance) -> None:
    """historySyncProgress is how much of the phone's network traffic this device has
    taken in: behind after messages it has not read yet, 100 once its session
    caught up."""
    from engines.emulator.models import EmuMessage
    from instances.runner import Runner

    for n in range(4):
        EmuMessage.objects.create(
            sender="79005550100", recipient=authorized_instance.phone, chat_id=authorized_instance.wid,
            id_message=f"H{n}", type_message="textMessage",
            message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": str(n)}},
        )
    behind = api_client.get(method_url(authorized_instance, "getWaSettings")).json()["historySyncProgress"]
    assert 0 <= behind < 100
    runner = Runner()
    runner.tick()
    runner.tick()
    assert api_client.get(method_url(authorized_instance, "getWaSettings")).json()["historySyncProgress"] == 100
