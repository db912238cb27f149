from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from instances import services
from instances.models import Account, Instance, InstanceStateChange
from tests.conftest import method_url
from tests.factories import make_instance


def history(client: APIClient, instance: Instance, query: str = "") -> list[dict[str, object]]:
    r = client.get(method_url(instance, "getStateInstanceHistory") + query)
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body, list)
    return body


def test_it_lists_states_newest_first(api_client: APIClient, authorized_instance: Instance) -> None:
    phone = authorized_instance.phone
    body = history(api_client, authorized_instance)
    assert [(e["stateInstance"], e["phoneNumber"]) for e in body] == [
        ("authorized", phone),
        ("starting", phone),
        ("notAuthorized", ""),
    ]
    assert all(list(e) == ["stateInstance", "timestamp", "phoneNumber"] for e in body)
    stamps = [e["timestamp"] for e in body]
    assert all(isinstance(t, int) for t in stamps)
    assert stamps == sorted(stamps, reverse=True)
    assert abs(int(timezone.now().timestamp()) - int(stamps[0])) < 60  # seconds, not ms


def test_order_follows_time_not_insertion(api_client: APIClient, instance: Instance) -> None:
    older = timezone.now() - timedelta(hours=1)
    InstanceStateChange.objects.create(instance=instance, state="blocked", created_at=older)
    body = history(api_client, instance)
    assert [e["stateInstance"] for e in body] == ["notAuthorized", "blocked"]
    assert body[1]["timestamp"] == int(older.timestamp())


def test_count_limits_the_list(api_client: APIClient, authorized_instance: Instance) -> None:
    services.change_state(authorized_instance, "yellowCard")
    assert [e["stateInstance"] for e in history(api_client, authorized_instance, "?count=1")] == [
        "yellowCard"
    ]
    two = history(api_client, authorized_instance, "?count=2")
    assert [e["stateInstance"] for e in two] == ["yellowCard", "authorized"]
    assert len(history(api_client, authorized_instance, "?count=100")) == 4


def test_it_shows_only_this_instance(api_client: APIClient, instance: Instance, account: Account) -> None:
    make_instance(account, authorized=True)
    assert [e["stateInstance"] for e in history(api_client, instance)] == ["notAuthorized"]


def test_the_sdk_spelling_works(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "GetStateInstanceHistory") + "?count=1")
    assert r.status_code == 200
    assert r.json()[0]["stateInstance"] == "notAuthorized"


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("?count=many", "'count' must be a number"),
        ("?count=1.5", "'count' must be a number"),
        ("?count=0", "'count' must be larger than or equal to 1"),
        ("?count=10001", "'count' must be less than or equal to 10000"),
        ("?since=1", "'since' is not allowed"),
    ],
)
def test_it_rejects_invalid_query(api_client: APIClient, instance: Instance, query: str, detail: str) -> None:
    r = api_client.get(method_url(instance, "getStateInstanceHistory") + query)
    assert r.status_code == 400
    assert r.json()["message"] == f"Validation failed. Details: {detail}"


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "getStateInstanceHistory", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(f"/waInstance1{instance.id}/getStateInstanceHistory/{instance.api_token}")
    assert r.status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    assert api_client.post(method_url(instance, "getStateInstanceHistory")).status_code == 404
