from rest_framework.test import APIClient

from instances.models import Instance, InstanceStateChange
from instances.runner import Runner
from tests.conftest import method_url


def state_of(client: APIClient, instance: Instance) -> str:
    return str(client.get(method_url(instance, "getStateInstance")).json()["stateInstance"])


def run_runner() -> None:
    runner = Runner()
    runner.tick()
    runner.tick()


def test_it_reboots_into_starting(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "reboot"))
    assert r.status_code == 200
    assert r.json() == {"isReboot": True}
    assert state_of(api_client, authorized_instance) == "starting"
    assert InstanceStateChange.objects.filter(instance=authorized_instance).latest("id").state == "starting"


def test_the_runner_brings_a_linked_instance_back(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    api_client.get(method_url(authorized_instance, "reboot"))
    run_runner()
    assert state_of(api_client, authorized_instance) == "authorized"
    settings = api_client.get(method_url(authorized_instance, "getSettings")).json()
    assert settings["wid"] == authorized_instance.wid  # the link survives a reboot


def test_an_unlinked_instance_comes_back_not_authorized(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(method_url(instance, "reboot")).json() == {"isReboot": True}
    assert state_of(api_client, instance) == "starting"
    run_runner()
    assert state_of(api_client, instance) == "notAuthorized"


def test_settings_survive_a_reboot(api_client: APIClient, authorized_instance: Instance) -> None:
    api_client.post(method_url(authorized_instance, "setSettings"), {"incomingWebhook": "yes"}, format="json")
    api_client.get(method_url(authorized_instance, "reboot"))
    run_runner()
    assert api_client.get(method_url(authorized_instance, "getSettings")).json()["incomingWebhook"] == "yes"


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "reboot", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert state_of(api_client, authorized_instance) == "authorized"


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(f"/waInstance1{instance.id}/reboot/{instance.api_token}").status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    assert api_client.post(method_url(authorized_instance, "reboot")).status_code == 404
    assert state_of(api_client, authorized_instance) == "authorized"


def test_it_restarts_the_session(api_client: APIClient, authorized_instance: Instance) -> None:
    """A new session is opened (the lease is taken again at a new epoch) and the
    instance goes starting -> authorized, each a stateInstanceChanged."""
    from instances.models import SessionLease
    from journals.models import Notification

    Instance.objects.filter(pk=authorized_instance.pk).update(
        settings={**authorized_instance.settings, "stateWebhook": True}
    )
    runner = Runner()
    runner.tick()
    epoch = SessionLease.objects.get(instance=authorized_instance).epoch
    api_client.get(method_url(authorized_instance, "reboot"))
    assert SessionLease.objects.get(instance=authorized_instance).runner_id == ""  # the session is dropped
    runner.tick()
    runner.tick()
    assert SessionLease.objects.get(instance=authorized_instance).epoch == epoch + 1
    assert state_of(api_client, authorized_instance) == "authorized"
    states = [
        n.body["stateInstance"]
        for n in Notification.objects.filter(instance_id=authorized_instance.pk, type_webhook="stateInstanceChanged").order_by("receipt_id")
    ]
    assert states[-2:] == ["starting", "authorized"]
