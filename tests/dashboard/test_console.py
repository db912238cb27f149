"""The API console: one list with the registry, generated forms, real requests."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from dashboard import console
from instances import registry
from instances.models import Instance
from instances.transport.emulator import ensure_phone
from messaging.models import OutgoingMessage

HTMX = {"HTTP_HX_REQUEST": "true"}


def send(client: Client, instance: Instance, data: dict[str, str]) -> str:
    response = client.post(reverse("dashboard:console_send", args=[instance.id]), data, **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def test_the_console_offers_exactly_the_implemented_http_methods(owner_client: Client, instance: Instance) -> None:
    body = owner_client.get(reverse("dashboard:console", args=[instance.id])).content.decode()
    implemented = [spec.name for spec, _ in registry.implemented() if spec.host != "ws"]
    assert [m.name for m in console.methods()] == implemented
    for name in implemented:
        assert f'<option value="{name}"' in body


def test_forms_come_from_the_input_serializers(owner_client: Client, instance: Instance) -> None:
    for spec, view in registry.implemented():
        method = console.method_by_name(spec.name)
        if method is None:
            continue
        input_class = getattr(view, "Input", None)
        expected = set(input_class().fields) if input_class else set()
        assert {f.name for f in method.fields} == expected, spec.name
    form = owner_client.get(reverse("dashboard:console", args=[instance.id]) + "?method=sendMessage", **HTMX).content.decode()
    assert 'name="chatId"' in form and 'name="message"' in form and "<html" not in form
    assert 'aria-label="required"' in form


def test_send_message_really_sends(owner_client: Client, authorized_instance: Instance) -> None:
    ensure_phone("79005550101", "Bob")
    body = send(
        owner_client, authorized_instance,
        {"__method": "sendMessage", "chatId": "79005550101@c.us", "message": "Hi Bob", "linkPreview": ""},
    )
    message = OutgoingMessage.objects.get(instance=authorized_instance)
    assert message.request["message"] == "Hi Bob"
    assert 'data-status-code="200"' in body and message.id_message in body
    assert "curl -X POST" in body and f"/waInstance{authorized_instance.id}/sendMessage/" in body
    assert "greenAPI.sending.sendMessage(chatId=&#x27;79005550101@c.us&#x27;, message=&#x27;Hi Bob&#x27;)" in body


def test_empty_optional_fields_are_left_out() -> None:
    method = console.method_by_name("sendMessage")
    assert method is not None
    data = {"chatId": "1@c.us", "message": "y", "linkPreview": "", "typingTime": " ", "archiveChat": "false"}
    built = console.build_request(method, data, {})
    assert built.body == {"chatId": "1@c.us", "message": "y", "archiveChat": False}


def test_get_methods_need_no_body(owner_client: Client, instance: Instance) -> None:
    body = send(owner_client, instance, {"__method": "getStateInstance"})
    assert "notAuthorized" in body and 'data-status-code="200"' in body


def test_server_validation_errors_are_shown(owner_client: Client, authorized_instance: Instance) -> None:
    body = send(owner_client, authorized_instance, {"__method": "sendMessage", "chatId": "nope", "message": "x"})
    assert 'data-status-code="400"' in body
    assert "Validation failed" in body and "chatId" in body
    assert "The server refused the request" in body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"__method": "sendMessage", "__raw": "{oops"}, "This is not valid JSON"),
        ({"__method": "sendMessage", "__raw": "[1, 2]"}, "must be a JSON object"),
        ({"__method": "sendMessage", "chatId": "1@c.us", "message": "x", "typingTime": "soon"}, "Enter a number"),
        ({"__method": "sendPoll", "chatId": "1@c.us", "message": "Q", "options": "[{bad"}, "This is not valid JSON"),
    ],
)
def test_form_errors_are_explained_and_nothing_is_sent(
    owner_client: Client, authorized_instance: Instance, data: dict[str, str], message: str
) -> None:
    body = send(owner_client, authorized_instance, data)
    assert "Fix the form first" in body and message in body
    assert not OutgoingMessage.objects.filter(instance=authorized_instance).exists()


def test_raw_json_body_replaces_the_fields(owner_client: Client, authorized_instance: Instance) -> None:
    ensure_phone("79005550102", "Carl")
    raw = json.dumps({"chatId": "79005550102@c.us", "message": "raw hello"})
    body = send(owner_client, authorized_instance, {"__method": "sendMessage", "__raw": raw, "message": "ignored"})
    assert 'data-status-code="200"' in body
    assert OutgoingMessage.objects.get(instance=authorized_instance).request["message"] == "raw hello"


def test_unknown_method_is_404(owner_client: Client, instance: Instance) -> None:
    assert owner_client.post(reverse("dashboard:console_send", args=[instance.id]), {"__method": "nope"}).status_code == 404


def test_path_extras_are_asked_for(owner_client: Client, instance: Instance) -> None:
    method = console.method_by_name("deleteNotification")
    if method is None:
        pytest.skip("deleteNotification is not implemented in this build")
    assert method.path_extra
    body = send(owner_client, instance, {"__method": "deleteNotification"})
    assert "part of the URL" in body


def test_partner_methods_use_the_partner_token(owner_client: Client, instance: Instance) -> None:
    if console.method_by_name("getInstances") is None:
        pytest.skip("partner methods are not implemented in this build")
    body = send(owner_client, instance, {"__method": "getInstances"})
    assert 'data-status-code="200"' in body and str(instance.id) in body
    assert "/partner/getInstances/" in body and "GreenApiPartner" in body
