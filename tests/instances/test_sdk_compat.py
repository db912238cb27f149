"""The official GREEN-API Python SDK (whatsapp-api-client-python) against a live server.

Each test drives one account method exactly as the SDK sends it (its URLs, verbs,
casing and bodies) through the real ASGI stack.
"""

import base64
import json
from pathlib import Path

from PIL import Image
from whatsapp_api_client_python import API

from instances.models import Instance
from instances.runner import Runner
from tests.conftest import LiveServer
from tests.factories import make_instance


def sdk(live: LiveServer, instance: Instance, token: str | None = None) -> API.GreenAPI:
    return API.GreenAPI(str(instance.id), token or instance.api_token, host=live.url, media=live.url)


def test_get_settings(live_asgi: LiveServer) -> None:
    instance = make_instance(authorized=True)
    r = sdk(live_asgi, instance).account.getSettings()
    assert r.code == 200
    assert r.data["wid"] == instance.wid
    assert r.data["incomingWebhook"] == "no"
    assert r.data["delaySendMessagesMilliseconds"] == 3000


def test_set_settings(live_asgi: LiveServer) -> None:
    instance = make_instance(authorized=True)
    client = sdk(live_asgi, instance)
    r = client.account.setSettings(
        {
            "webhookUrl": "https://mysite.com/webhook/green-api/",
            "incomingWebhook": "yes",
            "delaySendMessagesMilliseconds": 1000,
        }
    )
    assert r.code == 200
    assert r.data == {"saveSettings": True}
    shown = client.account.getSettings().data
    assert (shown["webhookUrl"], shown["incomingWebhook"], shown["delaySendMessagesMilliseconds"]) == (
        "https://mysite.com/webhook/green-api/",
        "yes",
        1000,
    )


def test_set_settings_validation_error(live_asgi: LiveServer) -> None:
    instance = make_instance()
    r = sdk(live_asgi, instance).account.setSettings({"delaySendMessagesMilliseconds": 10})
    assert r.code == 400
    assert r.error is not None
    assert json.loads(r.error)["message"] == (
        "Validation failed. Details: 'delaySendMessagesMilliseconds' must be larger than or equal to 500"
    )


def test_get_state_instance(live_asgi: LiveServer) -> None:
    r = sdk(live_asgi, make_instance()).account.getStateInstance()
    assert (r.code, r.data) == (200, {"stateInstance": "notAuthorized"})


def test_get_status_instance(live_asgi: LiveServer) -> None:
    r = sdk(live_asgi, make_instance(authorized=True)).account.getStatusInstance()
    assert (r.code, r.data) == (200, {"statusInstance": "online"})


def test_reboot(live_asgi: LiveServer) -> None:
    instance = make_instance(authorized=True)
    client = sdk(live_asgi, instance)
    r = client.account.reboot()
    assert (r.code, r.data) == (200, {"isReboot": True})
    assert client.account.getStateInstance().data == {"stateInstance": "starting"}
    runner = Runner()
    runner.tick()
    runner.tick()
    runner.shutdown()
    assert client.account.getStateInstance().data == {"stateInstance": "authorized"}


def test_logout(live_asgi: LiveServer) -> None:
    instance = make_instance(authorized=True)
    client = sdk(live_asgi, instance)
    r = client.account.logout()
    assert (r.code, r.data) == (200, {"isLogout": True})
    assert client.account.getStateInstance().data == {"stateInstance": "notAuthorized"}
    assert client.account.getSettings().data["wid"] == ""


def test_qr(live_asgi: LiveServer) -> None:
    r = sdk(live_asgi, make_instance()).account.qr()
    assert r.code == 200
    assert r.data["type"] == "qrCode"
    assert base64.b64decode(r.data["message"]).startswith(b"\x89PNG\r\n\x1a\n")
    r = sdk(live_asgi, make_instance(authorized=True)).account.qr()
    assert r.data == {"type": "alreadyLogged", "message": "instance account already authorized"}


def test_get_authorization_code(live_asgi: LiveServer) -> None:
    instance = make_instance()
    r = sdk(live_asgi, instance).account.getAuthorizationCode(79001234567)
    assert r.code == 200
    assert r.data["status"] is True
    instance.refresh_from_db()
    assert r.data["code"] == instance.pairing_code


def test_set_profile_picture(live_asgi: LiveServer, tmp_path: Path) -> None:
    instance = make_instance(authorized=True)
    picture = tmp_path / "avatar.jpg"
    Image.new("RGB", (320, 320), (30, 120, 200)).save(picture, format="JPEG")
    r = sdk(live_asgi, instance).account.setProfilePicture(str(picture))
    assert r.code == 200
    assert r.data["setProfilePicture"] is True
    assert r.data["reason"] == ""
    instance.refresh_from_db()
    assert r.data["urlAvatar"] == instance.avatar_url != ""


def test_get_wa_settings(live_asgi: LiveServer) -> None:
    instance = make_instance(authorized=True)
    r = sdk(live_asgi, instance).account.getWaSettings()
    assert r.code == 200
    assert r.data["phone"] == instance.phone
    assert r.data["stateInstance"] == "authorized"
    assert r.data["chatId"].endswith("@lid")


def test_update_api_token(live_asgi: LiveServer) -> None:
    instance = make_instance()
    old = instance.api_token
    r = sdk(live_asgi, instance).account.updateApiToken()
    assert r.code == 200
    new = r.data["apiTokenInstance"]
    assert new != old
    stale = sdk(live_asgi, instance, token=old).account.getStateInstance()
    assert stale.code == 401
    assert stale.error is not None
    assert json.loads(stale.error) == {"code": 401, "description": "Unauthorized"}
    assert sdk(live_asgi, instance, token=new).account.getStateInstance().code == 200


def test_get_state_instance_history(live_asgi: LiveServer) -> None:
    instance = make_instance(authorized=True)
    client = sdk(live_asgi, instance)  # the SDK spells the path GetStateInstanceHistory
    r = client.account.getStateInstanceHistory()
    assert r.code == 200
    assert [e["stateInstance"] for e in r.data] == ["authorized", "starting", "notAuthorized"]
    r = client.account.getStateInstanceHistory(count=1)
    assert r.data == [
        {"stateInstance": "authorized", "timestamp": r.data[0]["timestamp"], "phoneNumber": instance.phone}
    ]


def test_get_device_info(live_asgi: LiveServer) -> None:
    r = sdk(live_asgi, make_instance(authorized=True)).device.getDeviceInfo()
    assert r.code == 200
    assert r.data["platform"] == "android"


def test_unknown_instance(live_asgi: LiveServer) -> None:
    instance = make_instance()
    client = API.GreenAPI(f"1{instance.id}", instance.api_token, host=live_asgi.url, media=live_asgi.url)
    r = client.account.getSettings()
    assert (r.code, r.error) == (403, "Forbidden")
