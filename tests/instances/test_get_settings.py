from typing import Any

from rest_framework.test import APIClient

from engines.emulator import pairing
from instances import services, settings_spec
from instances.models import Instance
from tests.conftest import method_url

# getSettings keys in the documented order (API.md §9.1), before Relay's extra settings.
DOCUMENTED_KEYS = [
    "wid",
    "countryInstance",
    "typeAccount",
    "webhookUrl",
    "webhookUrlToken",
    "delaySendMessagesMilliseconds",
    "markIncomingMessagesReaded",
    "markIncomingMessagesReadedOnReply",
    "sharedSession",
    "proxyInstance",
    "outgoingWebhook",
    "outgoingMessageWebhook",
    "outgoingAPIMessageWebhook",
    "incomingWebhook",
    "deviceWebhook",
    "statusInstanceWebhook",
    "stateWebhook",
    "enableMessagesHistory",
    "keepOnlineStatus",
    "pollMessageWebhook",
    "incomingBlockWebhook",
    "incomingCallWebhook",
    "editedMessageWebhook",
    "deletedMessageWebhook",
]
EXTRA_KEYS = ["outgoingCallWebhook", "autoTyping", "linkPreview", "enableLidMode", "sendFromUTC", "sendToUTC"]
# Relay extensions (number protection, messaging/pacing.py), after everything GREEN-API knows.
RELAY_KEYS = ["sendJitterPercent", "newChatsPerHour", "warmUpDailyLimit", "warmUpDays"]


def get_settings(client: APIClient, instance: Instance) -> dict[str, Any]:
    r = client.get(method_url(instance, "getSettings"))
    assert r.status_code == 200
    return r.json()


def test_it_returns_the_documented_keys_in_order(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    body = get_settings(api_client, authorized_instance)
    assert list(body) == DOCUMENTED_KEYS + EXTRA_KEYS + RELAY_KEYS


def test_a_new_instance_has_greenapi_defaults(api_client: APIClient, authorized_instance: Instance) -> None:
    body = get_settings(api_client, authorized_instance)
    flags = [s.name for s in settings_spec.SETTINGS if s.kind == "flag"]
    assert {body[name] for name in flags} == {"no"}  # strings, every flag off
    assert body["wid"] == authorized_instance.wid
    assert body["wid"].endswith("@c.us")
    assert body["countryInstance"] == ""
    assert body["typeAccount"] == ""
    assert body["webhookUrl"] == ""
    assert body["webhookUrlToken"] == ""
    assert body["delaySendMessagesMilliseconds"] == 3000
    assert body["proxyInstance"] == "system proxy"
    assert body["autoTyping"] == 0
    assert body["linkPreview"] is True
    assert body["enableLidMode"] is False


def test_wid_is_empty_until_authorized(api_client: APIClient, instance: Instance) -> None:
    assert get_settings(api_client, instance)["wid"] == ""


def test_wid_is_empty_while_a_linked_instance_is_starting(api_client: APIClient, instance: Instance) -> None:
    pairing.link_phone(instance, phone="79001234567")  # paired, the runner has not connected yet
    assert instance.wid == "79001234567@c.us"
    assert get_settings(api_client, instance)["wid"] == ""


def test_it_renders_stored_flags_as_yes_no(api_client: APIClient, instance: Instance) -> None:
    services.update_settings(instance, {"incomingWebhook": True, "delaySendMessagesMilliseconds": 500})
    body = get_settings(api_client, instance)
    assert body["incomingWebhook"] == "yes"
    assert body["outgoingWebhook"] == "no"
    assert body["delaySendMessagesMilliseconds"] == 500


def test_method_name_is_case_insensitive(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "GetSettings"))
    assert r.status_code == 200
    assert list(r.json()) == DOCUMENTED_KEYS + EXTRA_KEYS + RELAY_KEYS


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "getSettings", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(f"/waInstance1{instance.id}/getSettings/{instance.api_token}")
    assert r.status_code == 403
    assert r.content == b"Forbidden"


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    r = api_client.post(method_url(instance, "getSettings"), {"webhookUrl": ""}, format="json")
    assert r.status_code == 404
    assert r.content == b"Not Found"
