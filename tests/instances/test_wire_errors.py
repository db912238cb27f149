import http.client
import json
import re
from typing import Any
from urllib.parse import urlparse

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from instances import services
from instances.models import Instance
from tests.conftest import LiveServer, method_url
from tests.factories import make_instance

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def row(instance: Instance) -> dict[str, Any]:
    return Instance.objects.values().get(pk=instance.pk)


def post_raw(client: APIClient, url: str, body: bytes, content_type: str = "application/json") -> Any:
    return client.generic("POST", url, body, content_type=content_type)


def assert_envelope(r: Any, url: str, message: str, status: int = 400) -> None:
    assert r.status_code == status
    assert r["Content-Type"] == "application/json"
    payload = r.json()
    assert list(payload) == ["statusCode", "timestamp", "path", "message"]
    assert payload["statusCode"] == status
    assert TIMESTAMP.match(payload["timestamp"])
    assert payload["path"] == url  # GREEN-API echoes the path, token included
    assert payload["message"] == message


# --- Malformed and non-object bodies ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"incomingWebhook": "yes",}', "Unexpected token } in JSON at position 26"),
        (b"{'incomingWebhook': 'yes'}", "Unexpected token ' in JSON at position 1"),
        (b'{"incomingWebhook": "yes"} x', "Unexpected token x in JSON at position 27"),
        (b'{"incomingWebhook": yes}', "Unexpected token y in JSON at position 20"),
        (b"incomingWebhook=yes", "Unexpected token i in JSON at position 0"),
        (b'{"incomingWebhook": ', "Unexpected end of JSON input"),
        (b'{"incomingWebhook": "yes"', "Unexpected end of JSON input"),
    ],
)
def test_malformed_json_is_a_400_envelope(
    api_client: APIClient, instance: Instance, body: bytes, message: str
) -> None:
    before = row(instance)
    url = method_url(instance, "setSettings")
    assert_envelope(post_raw(api_client, url, body), url, message)
    assert row(instance) == before


def test_invalid_utf8_is_a_400_envelope(api_client: APIClient, instance: Instance) -> None:
    r = post_raw(api_client, method_url(instance, "setSettings"), b'{"webhookUrl": "\xff"}')
    assert r.status_code == 400
    assert r.json()["message"].startswith("Unexpected token")


def test_deeply_nested_json_is_a_400_not_a_500(api_client: APIClient, instance: Instance) -> None:
    before = row(instance)
    url = method_url(instance, "setSettings")
    body = b'{"webhookUrl": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert len(body) < settings.MAX_JSON_BODY_BYTES
    r = post_raw(api_client, url, body)
    assert r.status_code == 400
    assert r.json()["statusCode"] == 400
    assert row(instance) == before


def test_a_huge_integer_is_a_400_not_a_500(api_client: APIClient, instance: Instance) -> None:
    # Python refuses to parse integers over 4300 digits; JavaScript reads Infinity,
    # which no field takes and jsonb cannot store.
    url = method_url(instance, "setSettings")
    r = post_raw(api_client, url, b'{"delaySendMessagesMilliseconds": 1' + b"0" * 5000 + b"}")
    assert_envelope(r, url, "Bad Request: the number 10000000000000000000000000000000 is out of range")


def test_json_is_read_whatever_the_content_type(api_client: APIClient, instance: Instance) -> None:
    # curl users often leave out Content-Type: application/json.
    r = post_raw(
        api_client,
        method_url(instance, "setSettings"),
        b'{"incomingWebhook": "yes"}',
        content_type="application/x-www-form-urlencoded",
    )
    assert r.json() == {"saveSettings": True}
    instance.refresh_from_db()
    assert instance.settings["incomingWebhook"] is True


@pytest.mark.parametrize("body", [b"[]", b'[{"incomingWebhook": "yes"}]', b'"yes"', b"42", b"true", b"null"])
def test_a_body_that_is_not_an_object_is_rejected(
    api_client: APIClient, instance: Instance, body: bytes
) -> None:
    before = row(instance)
    url = method_url(instance, "setSettings")
    assert_envelope(
        post_raw(api_client, url, body), url, "Validation failed. Details: 'value' must be of type object"
    )
    assert row(instance) == before


@pytest.mark.parametrize("method", ["getAuthorizationCode", "startAuthorization", "sendAuthorizationCode"])
def test_every_body_method_rejects_non_objects(
    api_client: APIClient, instance: Instance, method: str
) -> None:
    url = method_url(instance, method)
    assert_envelope(
        post_raw(api_client, url, b"[1]"), url, "Validation failed. Details: 'value' must be of type object"
    )


def test_unknown_fields_are_not_allowed(api_client: APIClient, instance: Instance) -> None:
    before = row(instance)
    url = method_url(instance, "setSettings")
    r = post_raw(api_client, url, b'{"incomingWebhook": "yes", "x": 1}')
    assert_envelope(r, url, "Validation failed. Details: 'x' is not allowed")
    assert row(instance) == before


# --- Body size ---------------------------------------------------------------------------


def padded_body(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    shell = b'{"webhookUrlToken": ""}'
    return shell[:-2] + b"a" * (size - len(shell)) + shell[-2:]


def test_a_body_over_100_kb_is_413_and_writes_nothing(api_client: APIClient, instance: Instance) -> None:
    before = row(instance)
    url = method_url(instance, "setSettings")
    body = padded_body(settings.MAX_JSON_BODY_BYTES + 1)
    assert_envelope(post_raw(api_client, url, body), url, "request entity too large", status=413)
    assert row(instance) == before


def test_a_body_of_exactly_100_kb_reaches_validation(api_client: APIClient, instance: Instance) -> None:
    url = method_url(instance, "setSettings")
    r = post_raw(api_client, url, padded_body(settings.MAX_JSON_BODY_BYTES))
    assert_envelope(
        r,
        url,
        "Validation failed. Details: 'webhookUrlToken' length must be less than or equal to 2000 characters long",
    )


def post_chunked(live: LiveServer, path: str, body: bytes) -> tuple[int, bytes]:
    """POST with Transfer-Encoding: chunked (no Content-Length), as streaming clients do."""
    url = urlparse(live.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for start in range(0, len(body), 8192):
            chunk = body[start : start + 8192]
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_chunked_body_is_read(live_asgi: LiveServer) -> None:
    instance = make_instance()
    status, body = post_chunked(
        live_asgi, method_url(instance, "setSettings"), b'{"webhookUrl": "https://a.example/hook"}'
    )
    assert (status, json.loads(body)) == (200, {"saveSettings": True})
    instance.refresh_from_db()
    assert instance.settings["webhookUrl"] == "https://a.example/hook"


def test_a_chunked_body_over_100_kb_is_413(live_asgi: LiveServer) -> None:
    instance = make_instance()
    before = row(instance)
    status, body = post_chunked(
        live_asgi, method_url(instance, "setSettings"), padded_body(settings.MAX_JSON_BODY_BYTES + 1)
    )
    assert status == 413
    assert json.loads(body)["message"] == "request entity too large"
    assert row(instance) == before


# --- Routing and authentication -------------------------------------------------------


@pytest.mark.parametrize("name", ["sendMessages", "getSetting", "waInstance", "scanQrCodes"])
def test_unknown_method_is_404(api_client: APIClient, instance: Instance, name: str) -> None:
    r = api_client.get(method_url(instance, name))
    assert r.status_code == 404
    assert r.content == b"Not Found"


def test_a_path_without_token_is_404(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(f"/waInstance{instance.id}/getSettings/").status_code == 404
    assert api_client.get(f"/waInstance{instance.id}/getSettings").status_code == 404


def test_method_names_are_case_insensitive(api_client: APIClient, instance: Instance) -> None:
    url = method_url(instance, "SETSETTINGS")
    assert api_client.post(url, {"incomingWebhook": "yes"}, format="json").json() == {"saveSettings": True}
    # Errors still echo the path as sent.
    assert_envelope(
        post_raw(api_client, url, b"[]"), url, "Validation failed. Details: 'value' must be of type object"
    )


def test_wrong_token_body_is_exact(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "getSettings", token=instance.api_token.upper()))
    assert r.status_code == 401
    assert r["Content-Type"] == "application/json"
    assert json.loads(r.content) == {"code": 401, "description": "Unauthorized"}
    assert list(json.loads(r.content)) == ["code", "description"]


def test_a_token_of_another_instance_is_401(api_client: APIClient, instance: Instance, account: Any) -> None:
    other = make_instance(account)
    assert api_client.get(method_url(instance, "getSettings", token=other.api_token)).status_code == 401


def test_unknown_instance_is_403(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(f"/waInstance1{instance.id}/getSettings/{instance.api_token}")
    assert r.status_code == 403
    assert r.content == b"Forbidden"


def test_an_id_beyond_int64_is_403(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(f"/waInstance{10**25}/getSettings/{instance.api_token}")
    assert r.status_code == 403


def test_deleted_instance_is_403_even_with_its_token(api_client: APIClient, instance: Instance) -> None:
    services.delete_instance(instance)
    r = api_client.get(method_url(instance, "getSettings"))
    assert r.status_code == 403
    assert r.content == b"Forbidden"
    before = row(instance)
    assert (
        api_client.post(
            method_url(instance, "setSettings"), {"incomingWebhook": "yes"}, format="json"
        ).status_code
        == 403
    )
    assert row(instance) == before


def test_suspended_instance_is_403(api_client: APIClient, instance: Instance) -> None:
    services.set_suspended(instance, True)
    before = row(instance)
    assert api_client.get(method_url(instance, "getSettings")).status_code == 403
    assert (
        api_client.post(
            method_url(instance, "setSettings"), {"incomingWebhook": "yes"}, format="json"
        ).status_code
        == 403
    )
    assert row(instance) == before
    # The token is still checked first: a wrong one stays 401.
    assert api_client.get(method_url(instance, "getSettings", token="0" * 50)).status_code == 401
    services.set_suspended(instance, False)
    assert api_client.get(method_url(instance, "getSettings")).status_code == 200


def test_wrong_verb_is_404_before_authentication(api_client: APIClient, instance: Instance) -> None:
    r = api_client.delete(method_url(instance, "getSettings", token="0" * 50))
    assert r.status_code == 404
    assert r.content == b"Not Found"


def test_options_is_204_with_cors_for_any_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.options(method_url(instance, "setSettings", token="0" * 50))
    assert r.status_code == 204
    assert r["Access-Control-Allow-Origin"] == "*"
    assert "POST" in r["Access-Control-Allow-Methods"]
    assert "Content-Type" in r["Access-Control-Allow-Headers"]


def test_error_responses_carry_cors(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "getSettings", token="0" * 50))
    assert r["Access-Control-Allow-Origin"] == "*"
