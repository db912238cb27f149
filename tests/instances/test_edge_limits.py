"""The ASGI edge (instances.edge) and the JSON/number parsing at the wire's edge:
bodies over a cap are refused before they are buffered, an unauthenticated upload is
refused before its body is read, and input PostgreSQL cannot store or that overflows
answers 400, never 500."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from instances.http import BadRequest, parse_json_body
from instances.models import Instance
from tests.conftest import LiveServer, method_url, partner_url
from tests.factories import AccountFactory, make_instance

pytestmark = pytest.mark.django_db(transaction=True)


def raw_request(live: LiveServer, head: str, first_chunk: bytes = b"", timeout: float = 10) -> str:
    """Send a request head (and maybe a first part of the body) and read the answer
    without sending the rest: the edge must answer from the head alone."""
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + first_chunk)
        return sock.recv(65536).decode("latin-1")


def test_a_declared_json_body_over_the_cap_is_413_before_reading(live_asgi: LiveServer) -> None:
    instance = make_instance()
    answer = raw_request(
        live_asgi,
        f"POST {method_url(instance, 'setSettings')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {600 * 1024 * 1024}",
    )
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert '"request entity too large"' in answer


def test_an_upload_with_a_bad_token_is_refused_before_its_body_is_read(live_asgi: LiveServer) -> None:
    """600 MB to a bad token: 401 from the head, nothing spooled to disk."""
    instance = make_instance(authorized=True)
    declared = settings.MEDIA_MAX_BYTES // 2  # under the cap: only the token stops it
    answer = raw_request(
        live_asgi,
        f"POST {method_url(instance, 'uploadFile', token='0' * 50)} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: image/png\r\nContent-Length: {declared}",
        b"\0" * 1024,
    )
    assert answer.startswith("HTTP/1.1 401"), answer[:200]
    assert '{"code": 401, "description": "Unauthorized"}' in answer or '"code":401' in answer


def test_an_upload_to_an_unknown_instance_is_403_before_reading(live_asgi: LiveServer) -> None:
    answer = raw_request(
        live_asgi,
        f"POST /waInstance99999999999999999/sendFileByUpload/{'0' * 50} HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 50000000",
    )
    assert answer.startswith("HTTP/1.1 403"), answer[:200]


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"a" * min(size, total - sent)
        sent += size


def test_a_chunked_api_v1_body_is_cut_at_its_cap(live_asgi: LiveServer, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 256 * 1024
    instance = make_instance(authorized=True)
    r = httpx.post(
        f"{live_asgi.url}/api/v1/emulator/instances/{instance.id}/contacts",
        content=_chunks(4 * 1024 * 1024),
        headers={"Authorization": f"Bearer {instance.api_token}", "Content-Type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 413


def test_a_declared_api_v1_body_over_its_cap_is_413(live_asgi: LiveServer, settings: Any) -> None:
    settings.API_MAX_BODY_BYTES = 256 * 1024
    answer = raw_request(
        live_asgi,
        "POST /api/v1/emulator/instances/1/contacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {300 * 1024}",
    )
    assert answer.startswith("HTTP/1.1 413"), answer[:200]


def test_an_anonymous_cabinet_body_over_its_cap_is_413(live_asgi: LiveServer) -> None:
    answer = raw_request(
        live_asgi,
        "POST /dashboard/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {settings.ANONYMOUS_MAX_BODY_BYTES + 1}",
    )
    assert answer.startswith("HTTP/1.1 413"), answer[:200]


def test_requests_within_the_caps_are_served(live_asgi: LiveServer) -> None:
    instance = make_instance()
    r = httpx.post(
        f"{live_asgi.url}{method_url(instance, 'setSettings')}", json={"webhookUrlToken": "x" * 1000}, timeout=30
    )
    assert r.status_code == 200


# --- Strings PostgreSQL cannot store ------------------------------------------------


def test_a_nul_byte_in_the_partner_token_path_is_400(live_asgi: LiveServer) -> None:
    AccountFactory()
    r = httpx.get(f"{live_asgi.url}{partner_url('getInstances', 'gac.abc%00def')}", timeout=30)
    assert r.status_code == 400
    assert r.json()["statusCode"] == 400


def test_a_nul_byte_in_the_query_string_is_400(live_asgi: LiveServer) -> None:
    instance = make_instance(authorized=True)
    r = httpx.get(f"{live_asgi.url}{method_url(instance, 'lastIncomingMessages')}?minutes=%00", timeout=30)
    assert r.status_code == 400


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a\\u0000b": 1}',
        b'{"x": {"k\\u0000": "v"}}',
        b'{"x": ["ok", "nul\\u0000"]}',
        b'{"x": "half \\ud800 pair"}',
        b'{"x": 1e400}',
        b'{"x": -1e400}',
        b'{"x": NaN}',
        b'{"x": Infinity}',
    ],
)
def test_json_postgresql_cannot_store_is_refused_at_parse(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json_body(raw)


@pytest.mark.parametrize(
    "raw",
    [b'{"x": "a \\\\u0000 escaped backslash"}', b'{"x": "pair \\ud83d\\ude00"}', b'{"x": 1e300}'],
)
def test_json_that_looks_close_but_is_fine_is_kept(raw: bytes) -> None:
    assert parse_json_body(raw) == json.loads(raw)


def test_a_nul_inside_a_json_key_stored_as_jsonb_is_400(api_client: APIClient, authorized_instance: Instance) -> None:
    body = (
        b'{"chatId": "79001234567@c.us", "message": "m", "templateButtons": '
        b'[{"index": 1, "urlButton": {"displayText": "x", "u\\u0000rl": "https://e.x"}}]}'
    )
    r = api_client.generic(
        "POST", method_url(authorized_instance, "sendTemplateButtons"), body, content_type="application/json"
    )
    assert r.status_code == 400


# --- Numbers bounded where they are parsed -----------------------------------------


def test_get_chat_history_count_1e30_is_400(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(
        method_url(authorized_instance, "getChatHistory"),
        {"chatId": "79001234567@c.us", "count": 1e30},
        format="json",
    )
    assert r.status_code == 400
    assert "'count'" in r.json()["message"]


@pytest.mark.parametrize("method", ["lastIncomingMessages", "lastOutgoingMessages", "lastIncomingCalls", "lastOutgoingCalls"])
@pytest.mark.parametrize("minutes", ["1e30", str(2**63 - 1), str(2**63), str(10**400)])
def test_huge_minutes_on_last_methods_never_500(
    api_client: APIClient, authorized_instance: Instance, method: str, minutes: str
) -> None:
    r = api_client.get(method_url(authorized_instance, method) + f"?minutes={minutes}")
    assert r.status_code in (200, 400), r.content
    if minutes == str(2**63 - 1):
        assert r.status_code == 200  # "everything": the window reaches before any journal
        assert r.json() == []


def test_a_request_with_a_declared_length_within_its_cap_passes_untouched() -> None:
    """The fast lane's path: the edge neither reads the body nor wraps ``receive``
    (the app gets the server's own callable)."""
    import asyncio

    from instances.edge import EdgeGuard

    calls: list[str] = []

    async def app(scope: Any, got: Any, send: Any) -> None:
        calls.append("app")
        assert got is receive

    async def receive() -> dict[str, Any]:
        calls.append("receive")
        return {"type": "http.request", "body": b"{}", "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/waInstance1/sendMessage/t",
        "query_string": b"",
        "headers": [(b"content-length", b"2")],
    }
    asyncio.run(EdgeGuard(app)(scope, receive, None))
    assert calls == ["app"]
