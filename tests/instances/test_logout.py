from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from instances.models import Instance, InstanceStateChange
from tests.conftest import method_url


def test_it_unlinks_the_account(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "logout"))
    assert r.status_code == 200
    assert r.json() == {"isLogout": True}
    authorized_instance.refresh_from_db()
    assert authorized_instance.state == "notAuthorized"
    assert authorized_instance.wid == ""
    assert authorized_instance.phone == ""
    assert authorized_instance.profile_name == ""


def test_wire_reads_show_the_logout(api_client: APIClient, authorized_instance: Instance) -> None:
    api_client.get(method_url(authorized_instance, "logout"))
    assert api_client.get(method_url(authorized_instance, "getStateInstance")).json() == {
        "stateInstance": "notAuthorized"
    }
    assert api_client.get(method_url(authorized_instance, "getSettings")).json()["wid"] == ""
    wa = api_client.get(method_url(authorized_instance, "getWaSettings")).json()
    assert (wa["phone"], wa["chatId"], wa["stateInstance"]) == ("", "", "notAuthorized")
    assert api_client.get(method_url(authorized_instance, "qr")).json()["type"] == "qrCode"


def test_it_records_the_state_change(api_client: APIClient, authorized_instance: Instance) -> None:
    api_client.get(method_url(authorized_instance, "logout"))
    last = InstanceStateChange.objects.filter(instance=authorized_instance).latest("id")
    assert (last.state, last.phone) == ("notAuthorized", "")


def test_it_drops_a_pending_pairing_code(api_client: APIClient, instance: Instance) -> None:
    Instance.objects.filter(pk=instance.pk).update(
        pairing_code="ABCD1234",
        pairing_phone="79001234567",
        pairing_expires_at=timezone.now() + timedelta(minutes=2),
    )
    api_client.get(method_url(instance, "logout"))
    instance.refresh_from_db()
    assert (instance.pairing_code, instance.pairing_phone, instance.pairing_expires_at) == ("", "", None)


def test_logout_of_an_unlinked_instance_unlinks_nothing(api_client: APIClient, instance: Instance) -> None:
    """The engine is asked; with no linked account it has nothing to unlink, and
    the answer says so instead of claiming a logout."""
    r = api_client.get(method_url(instance, "logout"))
    assert r.json() == {"isLogout": False}
    instance.refresh_from_db()
    assert instance.state == "notAuthorized"
    assert InstanceStateChange.objects.filter(instance=instance).count() == 1  # no new state


def test_a_starting_instance_is_logged_out(api_client: APIClient, authorized_instance: Instance) -> None:
    Instance.objects.filter(pk=authorized_instance.pk).update(state="starting")
    assert api_client.get(method_url(authorized_instance, "logout")).json() == {"isLogout": True}
    authorized_instance.refresh_from_db()
    assert (authorized_instance.state, authorized_instance.wid) == ("notAuthorized", "")


def test_an_engine_that_cannot_answers_an_error(api_client: APIClient, authorized_instance: Instance) -> None:
    Instance.objects.filter(pk=authorized_instance.pk).update(engine="cloud")  # an engine that cannot do it
    r = api_client.get(method_url(authorized_instance, "logout"))
    assert r.status_code == 400
    assert "cloud" in r.json()["message"]
    authorized_instance.refresh_from_db()
    assert authorized_instance.state == "authorized"


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "logout", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    authorized_instance.refresh_from_db()
    assert authorized_instance.state == "authorized"
    assert authorized_instance.wid != ""


def test_it_rejects_unknown_instance(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(f"/waInstance1{authorized_instance.id}/logout/{authorized_instance.api_token}")
    assert r.status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    assert api_client.post(method_url(authorized_instance, "logout")).status_code == 404
    authorized_instance.refresh_from_db()
    assert authorized_instance.state == "authorized"
