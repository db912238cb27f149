from rest_framework.test import APIClient

from engines.emulator.models import EmuPhone
from instances.models import Instance
from tests.conftest import method_url

KEYS = ["platform", "deviceManufacturer", "deviceModel", "osVersion", "waVersion", "battery"]


def test_it_describes_the_linked_phone(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "getDeviceInfo"))
    assert r.status_code == 200
    body = r.json()
    assert list(body) == KEYS
    assert body["platform"] == "android"
    assert all(isinstance(body[k], str) and body[k] for k in KEYS[:-1])
    assert body["battery"] == 100


def test_unlinked_instance_has_empty_fields(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(method_url(instance, "getDeviceInfo")).json() == {
        "platform": "",
        "deviceManufacturer": "",
        "deviceModel": "",
        "osVersion": "",
        "waVersion": "",
        "battery": 0,
    }


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "getDeviceInfo", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(f"/waInstance1{instance.id}/getDeviceInfo/{instance.api_token}").status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    assert api_client.post(method_url(instance, "getDeviceInfo")).status_code == 404


def test_it_reports_the_emulated_handset(api_client: APIClient, authorized_instance: Instance) -> None:
    """The answer is the linked emulated phone's, not a constant: change the
    handset and getDeviceInfo follows."""
    EmuPhone.objects.filter(phone=authorized_instance.phone).update(
        platform="iphone", device_manufacturer="Apple", device_model="iPhone 15", os_version="17.4",
        wa_version="2.24.8", battery=37,
    )
    assert api_client.get(method_url(authorized_instance, "getDeviceInfo")).json() == {
        "platform": "iphone",
        "deviceManufacturer": "Apple",
        "deviceModel": "iPhone 15",
        "osVersion": "17.4",
        "waVersion": "2.24.8",
        "battery": 37,
    }
