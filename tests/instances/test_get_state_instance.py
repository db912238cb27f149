from rest_framework.test import APIClient

from instances.models import Instance
from tests.conftest import method_url


def test_it_reports_the_state(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "getStateInstance"))
    assert r.status_code == 200
    assert r.json() == {"stateInstance": "authorized"}


def test_new_instance_is_not_authorized(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "getStateInstance"))
    assert r.json() == {"stateInstance": "notAuthorized"}


def test_method_segment_is_case_insensitive(api_client: APIClient, instance: Instance) -> None:
    for spelling in ("GetStateInstance", "getstateinstance", "GETSTATEINSTANCE"):
        assert api_client.get(method_url(instance, spelling)).status_code == 200


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "getStateInstance", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(f"/waInstance1{instance.id}/getStateInstance/{instance.api_token}")
    assert r.status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    r = api_client.post(method_url(instance, "getStateInstance"), {}, format="json")
    assert r.status_code == 404


def test_options_is_204(api_client: APIClient, instance: Instance) -> None:
    r = api_client.options(method_url(instance, "getStateInstance"))
    assert r.status_code == 204
    assert r["Access-Control-Allow-Origin"] == "*"
