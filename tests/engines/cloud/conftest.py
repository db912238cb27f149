"""Fixtures of the cloud engine's tests: a fake Graph API on a loopback port (the
engine's settings point at it) and cloud instances created through the real
services, plus Meta-signed webhook posts."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from instances import services
from instances.models import Account, Instance
from tests.engines.cloud.fakegraph import FakeGraph, start

PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAG-test-access-token-0123456789"
APP_SECRET = "app-secret-for-tests-0123456789abcdef"
VERIFY_TOKEN = "verify-me-please"
CREDENTIALS = {
    "phoneNumberId": PHONE_NUMBER_ID,
    "accessToken": TOKEN,
    "appSecret": APP_SECRET,
    "verifyToken": VERIFY_TOKEN,
}


@pytest.fixture
def graph(settings: Any) -> Iterator[FakeGraph]:
    fake, server = start()
    settings.CLOUD_API_BASE_URL = fake.url
    settings.CLOUD_API_VERSION = fake.version
    fake.add_number(PHONE_NUMBER_ID, TOKEN, "+1 555-010-0200")
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def cloud_instance(graph: FakeGraph, account: Account) -> Instance:
    """An authorized cloud instance (its credentials checked against the fake)."""
    instance = services.create_instance(account=account, engine="cloud", engine_options=CREDENTIALS)
    instance.refresh_from_db()
    assert instance.state == "authorized"
    return instance


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(client: Client, instance: Instance, payload: dict[str, Any], *, secret: str = APP_SECRET,
                 signature: str | None = None) -> Any:
    body = json.dumps(payload).encode()
    headers = {} if signature == "" else {"HTTP_X_HUB_SIGNATURE_256": signature or sign(body, secret)}
    return client.post(f"/engines/cloud/webhook/{instance.id}", body, content_type="application/json", **headers)


def envelope(value: dict[str, Any], phone_number_id: str = PHONE_NUMBER_ID) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550100200", "phone_number_id": phone_number_id},
                    **value,
                },
            }],
        }],
    }


def text_message(wamid: str, text: str, sender: str = "16505551234", name: str = "Kerry Fisher",
                 **extra: Any) -> dict[str, Any]:
    return envelope({
        "contacts": [{"profile": {"name": name}, "wa_id": sender}],
        "messages": [{"from": sender, "id": wamid, "timestamp": "1765000000", "type": "text",
                      "text": {"body": text}, **extra}],
    })


def status(wamid: str, kind: str, recipient: str = "16505551234", errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": wamid, "status": kind, "timestamp": "1765000100", "recipient_id": recipient}
    if errors:
        entry["errors"] = errors
    return envelope({"statuses": [entry]})
