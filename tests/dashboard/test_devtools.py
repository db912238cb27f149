"""Developer tools: the Postman collection (generated from the registry, run against a
live Relay) and the sample webhook receivers (real processes fed by Relay's own
webhook client)."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from dashboard import console, devtools
from engines.events import MessageEvent
from instances.models import Account, Instance
from journals import webhooks
from journals.models import WebhookAttempt
from journals.services import ingest_event
from tests.conftest import LiveServer
from tests.factories import make_instance

EXAMPLES = Path(django_settings.BASE_DIR) / "docs" / "examples"
VARIABLE = re.compile(r"\{\{(\w+)\}\}")


# --- Postman collection -------------------------------------------------------------------


def _items(collection: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for folder in collection["item"] for item in folder["item"]]


def test_collection_has_every_method_this_server_answers(account: Account) -> None:
    instance = make_instance(account, authorized=True)
    collection = devtools.postman_collection(instance)
    assert collection["info"]["schema"] == devtools.POSTMAN_SCHEMA
    assert {i["name"] for i in _items(collection)} == {m.name for m in console.methods()}
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert variables["idInstance"] == str(instance.id)
    assert variables["apiTokenInstance"] == instance.api_token
    assert variables["partnerToken"] == account.partner_token
    send = next(i for i in _items(collection) if i["name"] == "sendMessage")
    assert send["request"]["method"] == "POST"
    assert send["request"]["url"]["raw"] == "{{apiUrl}}/waInstance{{idInstance}}/sendMessage/{{apiTokenInstance}}"
    assert json.loads(send["request"]["body"]["raw"]) == {"chatId": "79001234567@c.us", "message": "Hello from Relay!"}
    # Every variable a request uses is defined by the collection.
    used = set(VARIABLE.findall(json.dumps(collection["item"])))
    assert used <= set(variables)


def _resolve(text: str, variables: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: variables[m.group(1)], text)


def _run(item: dict[str, Any], variables: dict[str, str]) -> tuple[int, bytes]:
    request = item["request"]
    url = _resolve(request["url"]["raw"], variables)
    body = None
    headers = {h["key"]: h["value"] for h in request["header"]}
    if request.get("body", {}).get("mode") == "raw":
        body = request["body"]["raw"].encode()
    req = urllib.request.Request(url, data=body, method=request["method"], headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_collection_requests_run_against_a_live_relay(live_asgi: LiveServer, settings: Any) -> None:
    """What a user does after importing: run the requests. Every read-only request and a
    send answer from a real server; none is a 404 (a wrong URL) or a 5xx."""
    settings.RELAY_API_URL = settings.RELAY_MEDIA_URL = live_asgi.url
    instance = make_instance(authorized=True)
    collection = devtools.postman_collection(instance)
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    # GETs that change the instance (GREEN-API's verbs): a user runs them deliberately.
    changes_state = {"updateApiToken", "logout", "reboot", "clearMessagesQueue", "setSystemProxy"}
    ran = {}
    for item in _items(collection):
        if (item["request"]["method"] == "GET" and item["name"] not in changes_state) or item["name"] == "sendMessage":
            status, body = _run(item, variables)
            ran[item["name"]] = status
            assert status not in (401, 403, 404) and status < 500, (item["name"], status, body[:200])
    assert ran["getStateInstance"] == 200
    assert ran["sendMessage"] == 200
    assert ran["getInstances"] == 200  # a partner method, with the partner token filled in
    assert len(ran) >= 15


def test_collection_download_is_the_owners_only(owner_client: Client, account: Account, stranger_instance: Instance) -> None:
    instance = make_instance(account)
    response = owner_client.get(f"/dashboard/instances/{instance.id}/postman.json")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "attachment" in response["Content-Disposition"]
    assert json.loads(response.content)["variable"][3]["value"] == instance.api_token
    assert owner_client.get(f"/dashboard/instances/{stranger_instance.id}/postman.json").status_code == 404
    page = owner_client.get(f"/dashboard/instances/{instance.id}/")
    assert f"/dashboard/instances/{instance.id}/postman.json" in page.content.decode()


def test_receiver_examples_download(owner_client: Client, account: Account) -> None:
    instance = make_instance(account)
    for name in devtools.RECEIVERS:
        response = owner_client.get(f"/dashboard/instances/{instance.id}/examples/{name}")
        assert response.status_code == 200
        assert b"X-Webhook-Signature" in response.content
    assert owner_client.get(f"/dashboard/instances/{instance.id}/examples/..%2Fsettings.py").status_code == 404


# --- Sample webhook receivers ------------------------------------------------------------


class ReceiverProcess:
    """One of docs/examples' receivers, started as its users start it."""

    def __init__(self, argv: list[str], secret: str, token: str) -> None:
        env = {"RELAY_WEBHOOK_SECRET": secret, "RELAY_WEBHOOK_TOKEN": token, "PATH": "/usr/bin:/bin"}
        self.proc = subprocess.Popen(
            [*argv, "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        started: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, started), daemon=True).start()
        line = started.get(timeout=30)
        match = re.search(r"(http://127\.0\.0\.1:\d+)/webhook", line)
        assert match, line
        self.url = match.group(1) + "/webhook"

    @staticmethod
    def _pump(stream: Any, into: queue.Queue[str]) -> None:
        for line in stream:
            into.put(line)

    def printed(self, count: int) -> list[dict[str, Any]]:
        return [json.loads(self.lines.get(timeout=30)) for _ in range(count)]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _receiver_argv(kind: str) -> list[str]:
    if kind == "python":
        return [sys.executable, str(EXAMPLES / "webhook_receiver.py")]
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    return [node, str(EXAMPLES / "webhook_receiver.mjs")]


@pytest.fixture(params=["python", "node"])
def receiver_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def loopback_webhooks(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture
def hooked(db: None, receiver_kind: str, loopback_webhooks: None) -> Iterator[tuple[Instance, ReceiverProcess]]:
    instance = make_instance(authorized=True)
    receiver = ReceiverProcess(_receiver_argv(receiver_kind), instance.webhook_secret, "tok-123")
    instance.settings.update({"incomingWebhook": True, "webhookUrl": receiver.url, "webhookUrlToken": "tok-123"})
    instance.save(update_fields=["settings"])
    yield instance, receiver
    receiver.stop()


def _incoming(text: str, id_message: str) -> MessageEvent:
    return MessageEvent(
        direction="incoming", chat_id="79001234567@c.us", id_message=id_message, sender="79001234567@c.us",
        sender_name="Иван", chat_name="Иван", sender_contact_name="Иван",
        message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": text}},
        timestamp=timezone.now(),
    )


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _signed(secret: str, body: bytes, webhook_id: str) -> dict[str, str]:
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json", "Authorization": "Bearer tok-123", "X-Webhook-Id": webhook_id,
        "X-Webhook-Timestamp": ts, "X-Webhook-Signature": "sha256=" + mac,
    }


def test_receiver_accepts_what_relay_delivers(hooked: tuple[Instance, ReceiverProcess]) -> None:
    instance, receiver = hooked
    for n in range(2):
        assert ingest_event(instance, _incoming(f"привет {n}", f"M{n}")) is not None
    webhooks.deliver(instance.id)
    attempts = list(WebhookAttempt.objects.filter(instance=instance).order_by("receipt_id"))
    assert [(a.ok, a.status_code) for a in attempts] == [(True, 200), (True, 200)]
    printed = receiver.printed(2)
    assert [p["typeWebhook"] for p in printed] == ["incomingMessageReceived"] * 2
    assert printed[0]["body"]["messageData"]["textMessageData"]["textMessage"] == "привет 0"
    assert [p["id"] for p in printed] == [f"{instance.id}-{a.receipt_id}" for a in attempts]


def test_receiver_refuses_forgeries_and_drops_duplicates(hooked: tuple[Instance, ReceiverProcess]) -> None:
    instance, receiver = hooked
    body = json.dumps({"typeWebhook": "incomingMessageReceived"}).encode()
    good = _signed(instance.webhook_secret, body, f"{instance.id}-1")
    assert _post(receiver.url, body, good) == (200, {"result": "ok"})
    assert _post(receiver.url, body, good) == (200, {"result": "duplicate"})
    assert _post(receiver.url, body + b" ", good)[0] == 401  # body changed after signing
    wrong_secret = _signed("not-the-secret", body, f"{instance.id}-2")
    assert _post(receiver.url, body, wrong_secret)[0] == 401
    no_token = {**_signed(instance.webhook_secret, body, f"{instance.id}-3"), "Authorization": "Bearer nope"}
    assert _post(receiver.url, body, no_token)[0] == 401
    stale = _signed(instance.webhook_secret, body, f"{instance.id}-4")
    stale_ts = str(int(time.time()) - 3600)
    mac = hmac.new(instance.webhook_secret.encode(), stale_ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    stale.update({"X-Webhook-Timestamp": stale_ts, "X-Webhook-Signature": "sha256=" + mac})
    assert _post(receiver.url, body, stale)[0] == 401  # a replay from an hour ago
    assert len(receiver.printed(1)) == 1 and receiver.lines.empty()
