import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from instances.models import Instance
from tests.conftest import method_url

# The "configure after create" body recommended by the docs (API.md §7).
RECOMMENDED = {
    "webhookUrl": "https://mysite.com/webhook/green-api/",
    "webhookUrlToken": "",
    "delaySendMessagesMilliseconds": 3000,
    "markIncomingMessagesReaded": "no",
    "markIncomingMessagesReadedOnReply": "no",
    "outgoingWebhook": "yes",
    "outgoingMessageWebhook": "yes",
    "outgoingAPIMessageWebhook": "yes",
    "incomingWebhook": "yes",
    "stateWebhook": "yes",
    "keepOnlineStatus": "no",
    "pollMessageWebhook": "yes",
    "incomingCallWebhook": "yes",
}


def row(instance: Instance) -> dict[str, Any]:
    return Instance.objects.values().get(pk=instance.pk)


def set_settings(client: APIClient, instance: Instance, body: Any) -> Any:
    return client.post(method_url(instance, "setSettings"), body, format="json")


def get_settings(client: APIClient, instance: Instance) -> dict[str, Any]:
    return client.get(method_url(instance, "getSettings")).json()


def test_it_saves_and_getsettings_shows_it_at_once(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    r = set_settings(api_client, authorized_instance, RECOMMENDED)
    assert r.status_code == 200
    assert r.json() == {"saveSettings": True}
    body = get_settings(api_client, authorized_instance)
    assert {k: body[k] for k in RECOMMENDED} == RECOMMENDED
    assert body["deviceWebhook"] == "no"


def test_it_is_a_partial_update(api_client: APIClient, instance: Instance) -> None:
    set_settings(api_client, instance, RECOMMENDED)
    r = set_settings(api_client, instance, {"incomingWebhook": "no", "delaySendMessagesMilliseconds": 500})
    assert r.json() == {"saveSettings": True}
    body = get_settings(api_client, instance)
    assert body["incomingWebhook"] == "no"
    assert body["delaySendMessagesMilliseconds"] == 500
    assert body["outgoingWebhook"] == "yes"
    assert body["webhookUrl"] == RECOMMENDED["webhookUrl"]


def test_flags_are_stored_as_booleans(api_client: APIClient, instance: Instance) -> None:
    set_settings(api_client, instance, {"incomingWebhook": "yes", "outgoingWebhook": "no"})
    instance.refresh_from_db()
    assert instance.settings["incomingWebhook"] is True
    assert instance.settings["outgoingWebhook"] is False


def test_it_accepts_every_setting_kind(api_client: APIClient, instance: Instance) -> None:
    body = {
        "autoTyping": 4,
        "linkPreview": False,
        "enableLidMode": True,
        "proxyInstance": "10.0.0.1:3128:user:secret",
        "sendFromUTC": "09:00",
        "sendToUTC": "15:30",
        "outgoingCallWebhook": "yes",
        "webhookUrlToken": "Bearer abc",
        "delaySendMessagesMilliseconds": 600_000,
    }
    assert set_settings(api_client, instance, body).json() == {"saveSettings": True}
    shown = get_settings(api_client, instance)
    assert {k: shown[k] for k in body} == body


@pytest.mark.parametrize("url", ["", "http://127.0.0.1:8080/hook", "HTTPS://Example.COM/Hook?x=1"])
def test_it_accepts_webhook_urls(api_client: APIClient, instance: Instance, url: str) -> None:
    assert set_settings(api_client, instance, {"webhookUrl": url}).status_code == 200
    assert get_settings(api_client, instance)["webhookUrl"] == url


def test_proxy_instance_accepts_system_proxy_and_ip_port(api_client: APIClient, instance: Instance) -> None:
    assert set_settings(api_client, instance, {"proxyInstance": "10.0.0.1:3128"}).status_code == 200
    assert set_settings(api_client, instance, {"proxyInstance": "system proxy"}).status_code == 200
    assert get_settings(api_client, instance)["proxyInstance"] == "system proxy"


@pytest.mark.parametrize("body", [{}, None])
def test_it_needs_at_least_one_key(api_client: APIClient, instance: Instance, body: Any) -> None:
    before = row(instance)
    if body is None:
        r = api_client.post(method_url(instance, "setSettings"))  # no body at all
    else:
        r = set_settings(api_client, instance, body)
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'value' must have at least 1 key"
    assert row(instance) == before


INVALID = [
    ({"incomingWebhook": "maybe"}, "'incomingWebhook' must be one of [yes, no]"),
    ({"incomingWebhook": True}, "'incomingWebhook' must be one of [yes, no]"),
    ({"incomingWebhook": None}, "'incomingWebhook' must be one of [yes, no]"),
    ({"stateWebhook": ""}, "'stateWebhook' must be one of [yes, no]"),
    (
        {"delaySendMessagesMilliseconds": 499},
        "'delaySendMessagesMilliseconds' must be larger than or equal to 500",
    ),
    (
        {"delaySendMessagesMilliseconds": 600_001},
        "'delaySendMessagesMilliseconds' must be less than or equal to 600000",
    ),
    ({"delaySendMessagesMilliseconds": "soon"}, "'delaySendMessagesMilliseconds' must be a number"),
    ({"delaySendMessagesMilliseconds": 1000.5}, "'delaySendMessagesMilliseconds' must be a number"),
    ({"delaySendMessagesMilliseconds": True}, "'delaySendMessagesMilliseconds' must be a number"),
    ({"delaySendMessagesMilliseconds": None}, "'delaySendMessagesMilliseconds' must be a number"),
    ({"typeAccount": "trial"}, "'typeAccount' is not allowed"),
    ({"sharedSession": "yes"}, "'sharedSession' is not allowed"),
    ({"wid": "79001234567@c.us"}, "'wid' is not allowed"),
    ({"incomingWebhooks": "yes"}, "'incomingWebhooks' is not allowed"),
    ({"webhookUrl": "not a url"}, "'webhookUrl' must be a valid uri"),
    ({"webhookUrl": "ftp://example.com/hook"}, "'webhookUrl' must be a valid uri"),
    ({"webhookUrl": "https://exa mple.com/"}, "'webhookUrl' must be a valid uri"),
    ({"webhookUrl": 42}, "'webhookUrl' must be a string"),
    ({"webhookUrl": None}, "'webhookUrl' must be a string"),
    (
        {"webhookUrl": "https://example.com/" + "a" * 2000},
        "'webhookUrl' length must be less than or equal to 2000 characters long",
    ),
    ({"autoTyping": 5}, "'autoTyping' must be less than or equal to 4"),
    ({"autoTyping": -1}, "'autoTyping' must be larger than or equal to 0"),
    ({"linkPreview": "yes"}, "'linkPreview' must be a boolean"),
    ({"linkPreview": None}, "'linkPreview' must be a boolean"),
    (
        {"proxyInstance": "my proxy"},
        "'proxyInstance' must be 'system proxy' or {ip}:{port}:{login}:{password}",
    ),
    ({"sendFromUTC": "09:00"}, "'sendFromUTC' and 'sendToUTC' must be set together"),
    ({"sendFromUTC": "24:00", "sendToUTC": "10:00"}, "'sendFromUTC' must be in HH:MM format"),
    ([], "'value' must be of type object"),
    ("yes", "'value' must be of type object"),
    (1, "'value' must be of type object"),
]


@pytest.mark.parametrize(("body", "detail"), INVALID)
def test_it_rejects_invalid_input(
    api_client: APIClient, authorized_instance: Instance, body: Any, detail: str
) -> None:
    before = row(authorized_instance)
    r = api_client.post(
        method_url(authorized_instance, "setSettings"), json.dumps(body), content_type="application/json"
    )
    assert r.status_code == 400
    payload = r.json()
    assert set(payload) == {"statusCode", "timestamp", "path", "message"}
    assert payload["statusCode"] == 400
    assert payload["message"] == f"Validation failed. Details: {detail}"
    assert row(authorized_instance) == before


def test_one_bad_field_writes_nothing(api_client: APIClient, instance: Instance) -> None:
    before = row(instance)
    r = set_settings(
        api_client, instance, {"incomingWebhook": "yes", "webhookUrl": "https://a.example/", "autoTyping": 9}
    )
    assert r.status_code == 400
    assert row(instance) == before
    assert get_settings(api_client, instance)["incomingWebhook"] == "no"


def test_it_does_not_touch_other_instances(api_client: APIClient, instance: Instance, account: Any) -> None:
    from tests.factories import make_instance

    other = make_instance(account)
    set_settings(api_client, instance, {"incomingWebhook": "yes"})
    assert get_settings(api_client, other)["incomingWebhook"] == "no"


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    before = row(instance)
    r = api_client.post(
        method_url(instance, "setSettings", token=instance.api_token[:-1] + "x"),
        {"incomingWebhook": "yes"},
        format="json",
    )
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert row(instance) == before


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    r = api_client.post(
        f"/waInstance{instance.id + 1}/setSettings/{instance.api_token}",
        {"incomingWebhook": "yes"},
        format="json",
    )
    assert r.status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(method_url(instance, "setSettings")).status_code == 404
    assert (
        api_client.put(
            method_url(instance, "setSettings"), {"incomingWebhook": "yes"}, format="json"
        ).status_code
        == 404
    )
