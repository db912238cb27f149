"""The API console: one list with the registry, generated forms, real requests."""

from __future__ import annotations

import ast
import functools
import inspect
import io
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from dashboard import console
from engines.emulator.transport import ensure_phone
from instances import registry
from instances.models import Instance
from messaging.models import MediaFile, OutgoingMessage

HTMX = {"HTTP_HX_REQUEST": "true"}


@functools.cache
def openapi_schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return dict(SchemaGenerator().get_schema(request=None, public=True))


def documented_upload_fields(name: str) -> set[str]:
    """What /api/schema/ documents as the multipart (or raw) body of an upload method."""
    for item in openapi_schema()["paths"].values():
        operation = item.get("post")
        if not operation or operation.get("operationId") != name:
            continue
        content = operation.get("requestBody", {}).get("content", {})
        if "application/octet-stream" in content:
            return {"file"}
        multipart = content.get("multipart/form-data", {}).get("schema", {})
        ref = multipart.get("$ref", "")
        if ref:
            multipart = openapi_schema()["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        return set(multipart.get("properties", {}))
    return set()


def sdk_call_binds(snippet: str) -> str:
    """The snippet's greenAPI.<group>.<method>(...) call binds to the real SDK's
    signature (whatsapp-api-client-python): same argument names, nothing missing."""
    from whatsapp_api_client_python import API

    tree = ast.parse(snippet)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and isinstance(n.func.value, ast.Attribute) and isinstance(n.func.value.value, ast.Name)
             and n.func.value.value.id == "greenAPI"]
    assert calls, snippet
    call = calls[0]
    assert isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Attribute)
    helper = getattr(getattr(API.GreenAPI("1", "t"), call.func.value.attr), call.func.attr)
    inspect.signature(helper).bind(**{k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg})
    return f"{call.func.value.attr}.{call.func.attr}"


def jpeg(name: str = "me.jpg") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 200)).save(out, "JPEG")
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


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
        expected = set(input_class().fields) if input_class else documented_upload_fields(spec.name)
        assert {f.name for f in method.fields} == expected, spec.name
        query_class = getattr(view, "Query", None)
        assert {q.name for q in method.query} == (set(query_class().fields) if query_class else set()), spec.name
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


def test_query_string_methods_have_query_fields(owner_client: Client, authorized_instance: Instance) -> None:
    method = console.method_by_name("lastIncomingMessages")
    assert method is not None and [q.name for q in method.query] == ["minutes"]
    form = owner_client.get(reverse("dashboard:console", args=[authorized_instance.id]) + "?method=lastIncomingMessages",
                            **HTMX).content.decode()
    assert 'name="q-minutes"' in form and 'for="q-minutes"' in form
    body = send(owner_client, authorized_instance, {"__method": "lastIncomingMessages", "q-minutes": "5"})
    assert 'data-status-code="200"' in body
    assert f"/lastIncomingMessages/{authorized_instance.api_token}?minutes=5" in body  # curl and request line
    assert "greenAPI.journals.lastIncomingMessages(minutes=5)" in body
    # The server judges query values, in its own words.
    body = send(owner_client, authorized_instance, {"__method": "lastIncomingMessages", "q-minutes": "soon"})
    assert 'data-status-code="400"' in body and "minutes" in body


def test_upload_methods_have_file_inputs(owner_client: Client, authorized_instance: Instance) -> None:
    for name in ("sendFileByUpload", "uploadFile", "setProfilePicture"):
        form = owner_client.get(reverse("dashboard:console", args=[authorized_instance.id]) + f"?method={name}",
                                **HTMX).content.decode()
        assert 'type="file"' in form and 'enctype="multipart/form-data"' in form, name
        assert "Raw JSON body" not in form, name


def test_send_file_by_upload(owner_client: Client, authorized_instance: Instance) -> None:
    ensure_phone("79005550103", "Dan")
    body = send(owner_client, authorized_instance, {
        "__method": "sendFileByUpload", "chatId": "79005550103@c.us", "caption": "Look", "file": jpeg("pic.jpg"),
    })
    assert 'data-status-code="200"' in body and "urlFile" in body
    message = OutgoingMessage.objects.get(instance=authorized_instance)
    assert message.is_file and message.request["caption"] == "Look"
    assert "-F file=@pic.jpg" in body and "-F chatId=79005550103@c.us" in body
    assert "greenAPI.sending.sendFileByUpload(chatId=&#x27;79005550103@c.us&#x27;, caption=&#x27;Look&#x27;, path=&#x27;pic.jpg&#x27;)" in body


def test_upload_file_sends_the_raw_body(owner_client: Client, authorized_instance: Instance) -> None:
    body = send(owner_client, authorized_instance, {"__method": "uploadFile", "file": jpeg("raw.jpg")})
    assert 'data-status-code="200"' in body and "urlFile" in body
    stored = MediaFile.objects.get(instance=authorized_instance)
    assert stored.file_name == "raw.jpg" and stored.mime_type == "image/jpeg"
    assert "--data-binary @raw.jpg" in body and "-H &#x27;GA-Filename: raw.jpg&#x27;" in body
    assert "greenAPI.sending.uploadFile(path=&#x27;raw.jpg&#x27;)" in body


def test_a_missing_file_is_explained(owner_client: Client, authorized_instance: Instance) -> None:
    body = send(owner_client, authorized_instance, {"__method": "uploadFile"})
    assert "Choose a file to upload" in body


def test_set_profile_picture(owner_client: Client, authorized_instance: Instance) -> None:
    body = send(owner_client, authorized_instance, {"__method": "setProfilePicture", "file": jpeg()})
    assert 'data-status-code="200"' in body and "urlAvatar" in body
    assert "greenAPI.account.setProfilePicture(path=&#x27;me.jpg&#x27;)" in body


@pytest.mark.parametrize(
    ("name", "data", "files"),
    [
        ("sendMessage", {"chatId": "1@c.us", "message": "hi"}, {}),
        ("lastIncomingMessages", {"q-minutes": "30"}, {}),
        ("getChats", {"q-count": "3"}, {}),
        ("getContacts", {"q-group": "true", "q-count": "3"}, {}),
        ("getStateInstanceHistory", {"q-count": "2"}, {}),
        ("receiveNotification", {"q-receiveTimeout": "5"}, {}),
        ("sendFileByUpload", {"chatId": "1@c.us", "fileName": "a.jpg"}, {"file": "a.jpg"}),
        ("uploadFile", {}, {"file": "a.jpg"}),
        ("setProfilePicture", {}, {"file": "a.jpg"}),
    ],
)
def test_sdk_snippets_call_the_real_sdk_correctly(
    instance: Instance, name: str, data: dict[str, str], files: dict[str, str]
) -> None:
    method = console.method_by_name(name)
    if method is None:
        pytest.skip(f"{name} is not implemented in this build")
    built = console.build_request(method, data, {k: jpeg(v) for k, v in files.items()})
    assert sdk_call_binds(console.python_snippet(instance, method, built)).endswith("." + name)
