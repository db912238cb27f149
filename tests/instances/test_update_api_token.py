import re

from rest_framework.test import APIClient

from instances.models import Instance
from tests.conftest import method_url


def test_it_issues_a_new_token(api_client: APIClient, instance: Instance) -> None:
    old = instance.api_token
    r = api_client.get(method_url(instance, "updateApiToken"))
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["apiTokenInstance"]
    new = body["apiTokenInstance"]
    assert re.fullmatch(r"[0-9a-f]{50}", new)
    assert new != old
    instance.refresh_from_db()
    assert instance.api_token == new


def test_the_old_token_stops_working_at_once(api_client: APIClient, instance: Instance) -> None:
    old = instance.api_token
    new = api_client.get(method_url(instance, "updateApiToken")).json()["apiTokenInstance"]
    r = api_client.get(method_url(instance, "getStateInstance", token=old))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert api_client.get(method_url(instance, "updateApiToken", token=old)).status_code == 401
    assert api_client.get(method_url(instance, "getStateInstance", token=new)).status_code == 200


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    old = instance.api_token
    r = api_client.get(method_url(instance, "updateApiToken", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    instance.refresh_from_db()
    assert instance.api_token == old


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    old = instance.api_token
    assert api_client.get(f"/waInstance1{instance.id}/updateApiToken/{instance.api_token}").status_code == 403
    instance.refresh_from_db()
    assert instance.api_token == old


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    old = instance.api_token
    assert api_client.post(method_url(instance, "updateApiToken")).status_code == 404
    instance.refresh_from_db()
    assert instance.api_token == old
