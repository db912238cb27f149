import pytest
from rest_framework.test import APIClient

from instances import services
from instances.models import Instance, State
from tests.conftest import method_url


def test_authorized_instance_is_online(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "getStatusInstance"))
    assert r.status_code == 200
    assert r.json() == {"statusInstance": "online"}


@pytest.mark.parametrize("state", [State.STARTING, State.BLOCKED, State.YELLOW_CARD, State.SLEEP_MODE])
def test_other_states_are_offline(api_client: APIClient, authorized_instance: Instance, state: str) -> None:
    services.change_state(authorized_instance, state)
    r = api_client.get(method_url(authorized_instance, "getStatusInstance"))
    assert r.json() == {"statusInstance": "offline"}


def test_unpaired_instance_is_offline(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(method_url(instance, "getStatusInstance")).json() == {"statusInstance": "offline"}


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "getStatusInstance", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(f"/waInstance1{instance.id}/getStatusInstance/{instance.api_token}")
    assert r.status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    assert api_client.post(method_url(instance, "getStatusInstance")).status_code == 404
