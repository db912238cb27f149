from rest_framework.test import APIClient

from instances import services
from instances.models import Instance
from tests.conftest import method_url


def test_it_resets_a_custom_proxy(api_client: APIClient, instance: Instance) -> None:
    services.update_settings(
        instance, {"proxyInstance": "10.0.0.1:3128:user:secret", "incomingWebhook": True}
    )
    r = api_client.get(method_url(instance, "setSystemProxy"))
    assert r.status_code == 200
    assert r.json() == {"setSystemProxy": True}
    settings = api_client.get(method_url(instance, "getSettings")).json()
    assert settings["proxyInstance"] == "system proxy"
    assert settings["incomingWebhook"] == "yes"  # nothing else changes


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    services.update_settings(instance, {"proxyInstance": "10.0.0.1:3128"})
    r = api_client.get(method_url(instance, "setSystemProxy", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    instance.refresh_from_db()
    assert instance.settings["proxyInstance"] == "10.0.0.1:3128"


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(f"/waInstance1{instance.id}/setSystemProxy/{instance.api_token}").status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    services.update_settings(instance, {"proxyInstance": "10.0.0.1:3128"})
    assert api_client.post(method_url(instance, "setSystemProxy")).status_code == 404
    instance.refresh_from_db()
    assert instance.settings["proxyInstance"] == "10.0.0.1:3128"
