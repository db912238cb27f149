"""The official GREEN-API Python SDK drives the partner API of a live server."""

from __future__ import annotations

from whatsapp_api_client_python import API

from tests.conftest import LiveServer
from tests.factories import AccountFactory


def test_sdk_partner_lifecycle(live_asgi: LiveServer) -> None:
    account = AccountFactory()
    partner = API.GreenApiPartner(account.partner_token, host=live_asgi.url)

    created = partner.partner.createInstance({"name": "from sdk", "incomingWebhook": "yes"})
    assert created.code == 200, created.error
    assert created.data is not None
    id_instance = created.data["idInstance"]
    token = created.data["apiTokenInstance"]
    assert created.data["typeInstance"] == "whatsapp"

    listed = partner.partner.getInstances()
    assert listed.code == 200
    assert [(row["idInstance"], row["name"], row["deleted"]) for row in listed.data] == [
        (id_instance, "from sdk", False)
    ]

    client = API.GreenAPI(str(id_instance), token, host=live_asgi.url, media=live_asgi.url)
    state = client.account.getStateInstance()
    assert state.code == 200
    assert state.data == {"stateInstance": "notAuthorized"}
    settings = client.account.getSettings()
    assert settings.data["incomingWebhook"] == "yes"

    deleted = partner.partner.deleteInstanceAccount(id_instance)
    assert deleted.code == 200
    assert deleted.data == {"deleteInstanceAccount": True}

    assert client.account.getStateInstance().code == 403
    listed = partner.partner.getInstances()
    assert listed.data[0]["deleted"] is True
    assert listed.data[0]["timeDeleted"] != "0001-01-01T00:00:00"


def test_sdk_partner_with_bad_token_is_unauthorized(live_asgi: LiveServer) -> None:
    partner = API.GreenApiPartner("gac." + "f" * 46, host=live_asgi.url)
    r = partner.partner.getInstances()
    assert r.code == 401
    assert r.error is not None and '"Unauthorized"' in r.error


def test_sdk_partner_cannot_delete_a_foreign_instance(live_asgi: LiveServer) -> None:
    owner = API.GreenApiPartner(AccountFactory().partner_token, host=live_asgi.url)
    stranger = API.GreenApiPartner(AccountFactory().partner_token, host=live_asgi.url)
    id_instance = owner.partner.createInstance({}).data["idInstance"]
    assert stranger.partner.deleteInstanceAccount(id_instance).data == {"deleteInstanceAccount": False}
    assert stranger.partner.getInstances().data == []
    assert owner.partner.getInstances().data[0]["deleted"] is False
