"""The settings form: every setting of settings_spec, validated like setSettings, and
the "send test webhook" button."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from instances import settings_spec
from instances.models import Instance


def form_data(instance: Instance, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for spec in settings_spec.SETTINGS:
        value = instance.setting(spec.name)
        if spec.kind in ("flag", "bool"):
            if value:
                data[spec.name] = "on"
        else:
            data[spec.name] = value
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_every_setting_is_on_the_form_with_its_help(owner_client: Client, instance: Instance) -> None:
    body = owner_client.get(reverse("dashboard:settings", args=[instance.id])).content.decode()
    for spec in settings_spec.SETTINGS:
        assert f'name="{spec.name}"' in body, spec.name
        assert spec.help.replace("'", "&#x27;") in body, spec.name


def test_saving_applies_the_changes(owner_client: Client, instance: Instance) -> None:
    data = form_data(
        instance, webhookUrl="https://hooks.example.com/relay", incomingWebhook="on", delaySendMessagesMilliseconds=1500
    )
    response = owner_client.post(reverse("dashboard:settings", args=[instance.id]), data)
    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.setting("webhookUrl") == "https://hooks.example.com/relay"
    assert instance.setting("incomingWebhook") is True
    assert instance.setting("delaySendMessagesMilliseconds") == 1500
    assert instance.setting("outgoingWebhook") is False


def test_unticking_a_flag_turns_it_off(owner_client: Client, instance: Instance) -> None:
    instance.settings = {**instance.settings, "stateWebhook": True}
    instance.save(update_fields=["settings"])
    data = form_data(instance)
    data.pop("stateWebhook")
    owner_client.post(reverse("dashboard:settings", args=[instance.id]), data)
    instance.refresh_from_db()
    assert instance.setting("stateWebhook") is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"delaySendMessagesMilliseconds": 10}, "&#x27;delaySendMessagesMilliseconds&#x27; must be larger than or equal to 500"),
        ({"webhookUrl": "ftp://example.com"}, "&#x27;webhookUrl&#x27; must be a valid uri"),
        ({"proxyInstance": "nonsense"}, "&#x27;proxyInstance&#x27; must be &#x27;system proxy&#x27;"),
        ({"autoTyping": 9}, "&#x27;autoTyping&#x27; must be less than or equal to 4"),
        ({"sendFromUTC": "25:00", "sendToUTC": "10:00"}, "&#x27;sendFromUTC&#x27; must be in HH:MM format"),
        ({"delaySendMessagesMilliseconds": "soon"}, "Enter a whole number"),
    ],
)
def test_invalid_values_are_refused_in_setsettings_words(
    owner_client: Client, instance: Instance, changes: dict[str, Any], message: str
) -> None:
    before = dict(Instance.objects.get(pk=instance.pk).settings)
    response = owner_client.post(reverse("dashboard:settings", args=[instance.id]), form_data(instance, **changes))
    body = response.content.decode()
    assert response.status_code == 200
    assert message in body
    assert "nothing was saved" in body
    assert Instance.objects.get(pk=instance.pk).settings == before


def test_read_only_settings_cannot_be_changed(owner_client: Client, instance: Instance) -> None:
    owner_client.post(reverse("dashboard:settings", args=[instance.id]), form_data(instance, typeAccount="business"))
    instance.refresh_from_db()
    assert instance.setting("typeAccount") == ""


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []
    headers_seen: list[str] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Receiver.bodies.append(json.loads(self.rfile.read(length)))
        _Receiver.headers_seen.append(self.headers.get("Authorization", ""))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_test_webhook_reports_status_and_latency(
    owner_client: Client, instance: Instance, receiver: str, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = True
    instance.settings = {**instance.settings, "webhookUrl": receiver, "webhookUrlToken": "s3cret"}
    instance.save(update_fields=["settings"])
    response = owner_client.post(reverse("dashboard:test_webhook", args=[instance.id]), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "HTTP 204" in body and " ms" in body and "accepted it" in body
    assert _Receiver.bodies[-1]["typeWebhook"] == "relayTestWebhook"
    assert _Receiver.bodies[-1]["instanceData"]["idInstance"] == instance.id
    assert _Receiver.headers_seen[-1] == "Bearer s3cret"


def test_test_webhook_uses_the_url_in_the_box(owner_client: Client, instance: Instance, receiver: str, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = True
    response = owner_client.post(reverse("dashboard:test_webhook", args=[instance.id]), {"webhookUrl": receiver})
    assert "HTTP 204" in response.content.decode()


def test_test_webhook_refuses_private_addresses(owner_client: Client, instance: Instance, receiver: str, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    count = len(_Receiver.bodies)
    response = owner_client.post(reverse("dashboard:test_webhook", args=[instance.id]), {"webhookUrl": receiver})
    body = response.content.decode()
    assert "Refused" in body and "loopback" in body
    assert len(_Receiver.bodies) == count


@pytest.mark.parametrize("url", ["", "file:///etc/passwd", "not a url"])
def test_test_webhook_explains_missing_or_bad_urls(owner_client: Client, instance: Instance, url: str) -> None:
    body = owner_client.post(reverse("dashboard:test_webhook", args=[instance.id]), {"webhookUrl": url}).content.decode()
    assert "result-bad" in body
    assert "Enter a URL or save a webhook URL first" in body or "Enter a valid URL" in body


def test_test_webhook_reports_connection_failures(owner_client: Client, instance: Instance, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = True
    body = owner_client.post(
        reverse("dashboard:test_webhook", args=[instance.id]), {"webhookUrl": "http://127.0.0.1:9/closed"}
    ).content.decode()
    assert "Not delivered" in body and "Could not connect" in body
