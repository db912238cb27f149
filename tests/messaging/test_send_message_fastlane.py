"""The sendMessage fast lane answers exactly like the Django view and writes the
same row (PostgreSQL only: elsewhere every request takes the Django path)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from instances.models import Instance
from instances.transport.emulator import ensure_phone
from messaging.fastlane import INSERT_FIELDS
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import LiveServer, method_url
from tests.factories import make_instance
from tests.processes import wait_for

pytestmark = pytest.mark.skipif(not settings.IS_POSTGRES, reason="the fast lane serves PostgreSQL only")

RECIPIENT = "79001112299"
COMPARED = ("chat_id", "method", "type_message", "request", "payload", "is_file", "idempotency_key")


@pytest.fixture
def sender(live_asgi: LiveServer) -> Instance:
    ensure_phone(RECIPIENT, "Recipient")
    return make_instance(authorized=True)


def post(live: LiveServer, instance: Instance, body: Any, *, token: str | None = None, **headers: str) -> httpx.Response:
    url = f"{live.url}{method_url(instance, 'sendMessage', token=token)}"
    if isinstance(body, bytes | str):
        return httpx.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    return httpx.post(url, json=body, headers=headers)


def test_it_writes_the_same_row_as_the_django_view(live_asgi: LiveServer, sender: Instance) -> None:
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "see https://example.org", "typingTime": 1500}
    fast = post(live_asgi, sender, body)
    assert fast.status_code == 200
    slow = APIClient().post(method_url(sender, "sendMessage"), body, format="json")
    assert slow.status_code == 200
    a = OutgoingMessage.objects.get(id_message=fast.json()["idMessage"])
    b = OutgoingMessage.objects.get(id_message=slow.json()["idMessage"])
    for field in COMPARED:
        assert getattr(a, field) == getattr(b, field), field
    assert fast.headers["access-control-allow-origin"] == "*"


def test_the_queue_is_drained_after_commit(live_asgi: LiveServer, sender: Instance) -> None:
    r = post(live_asgi, sender, {"chatId": f"{RECIPIENT}@c.us", "message": "hi"})
    id_message = r.json()["idMessage"]
    wait_for(
        lambda: OutgoingMessage.objects.get(id_message=id_message).status == OutgoingStatus.SENT,
        timeout=10,
        what="the fast-lane message to be sent",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"message": "x"},
        {"chatId": "bad", "message": "x"},
        {"chatId": f"{RECIPIENT}@c.us", "message": ""},
        {"chatId": f"{RECIPIENT}@c.us", "message": "x", "extra": 1},
        {"chatId": f"{RECIPIENT}@c.us", "message": "x", "customPreview": {"title": "t", "bogus": 1}},
        [],
        '{"chatId": ',
        '{"chatId": "1"}}',
    ],
)
def test_errors_match_the_django_view(live_asgi: LiveServer, sender: Instance, body: Any) -> None:
    fast = post(live_asgi, sender, body)
    client = APIClient()
    raw = body if isinstance(body, str) else __import__("json").dumps(body)
    slow = client.generic("POST", method_url(sender, "sendMessage"), raw, content_type="application/json")
    assert fast.status_code == slow.status_code == 400
    assert fast.json()["message"] == slow.json()["message"]
    assert not OutgoingMessage.objects.filter(instance=sender).exists()


def test_auth_and_size_errors(live_asgi: LiveServer, sender: Instance) -> None:
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "x"}
    r = post(live_asgi, sender, body, token="0" * 50)
    assert r.status_code == 401 and r.json() == {"code": 401, "description": "Unauthorized"}
    r = httpx.post(f"{live_asgi.url}/waInstance1{sender.id}/sendMessage/{sender.api_token}", json=body)
    assert r.status_code == 403
    r = post(live_asgi, sender, {"chatId": f"{RECIPIENT}@c.us", "message": "x" * 200_000})
    assert r.status_code == 413
    assert not OutgoingMessage.objects.filter(instance=sender).exists()


def test_case_insensitive_method(live_asgi: LiveServer, sender: Instance) -> None:
    url = f"{live_asgi.url}/waInstance{sender.id}/SendMessage/{sender.api_token}"
    assert httpx.post(url, json={"chatId": f"{RECIPIENT}@c.us", "message": "x"}).status_code == 200


def test_idempotency_key_and_read_on_reply_take_the_django_path(live_asgi: LiveServer, sender: Instance) -> None:
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "once"}
    a = post(live_asgi, sender, body, **{"Idempotency-Key": "fl-1"}).json()
    b = post(live_asgi, sender, body, **{"Idempotency-Key": "fl-1"}).json()
    assert a == b
    sender.settings["markIncomingMessagesReadedOnReply"] = True
    sender.save(update_fields=["settings"])
    assert post(live_asgi, sender, body).status_code == 200
    assert OutgoingMessage.objects.filter(instance=sender).count() == 2


def test_every_required_column_gets_a_value() -> None:
    names = {f.attname for f in INSERT_FIELDS}
    model_fields = {f.attname for f in OutgoingMessage._meta.concrete_fields if not f.primary_key}
    assert names == model_fields
