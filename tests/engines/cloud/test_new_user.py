"""The cloud engine tried as a new user would, over HTTP on a live server: create an
instance with the partner API against (a fake of) Meta's Graph API, see it
authorized, send, and receive a signed inbound message through receiveNotification
and a webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from instances.models import Account
from tests.conftest import LiveServer, method_url, partner_url
from tests.engines.cloud.conftest import CREDENTIALS, sign, status, text_message
from tests.engines.cloud.fakegraph import FakeGraph
from tests.journals.test_webhooks import LOOPBACK, Receiver


def eventually(check: Callable[[], Any], seconds: float = 20.0) -> Any:
    """Wait for a condition (the queue drains in a worker thread), bounded."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def meta_posts(live: LiveServer, instance_id: int, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    return httpx.post(f"{live.url}/engines/cloud/webhook/{instance_id}", content=body,
                      headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}, timeout=30)


def test_create_send_and_receive(settings: Any, graph: FakeGraph, live_asgi: LiveServer, account: Account) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    api = live_asgi.url
    receiver = Receiver()
    try:
        # 1. The partner API creates the instance with Meta's credentials.
        r = httpx.post(api + partner_url("createInstance", account.partner_token), json={
            "name": "Support line", "engine": "cloud", "cloud": CREDENTIALS,
            "incomingWebhook": "yes", "outgoingWebhook": "yes",
        }, timeout=30)
        assert r.status_code == 200, r.text
        created = r.json()

        class Ref:
            id = created["idInstance"]
            api_token = created["apiTokenInstance"]

        def url(method: str, extra: str = "") -> str:
            return api + method_url(Ref, method, extra=extra)  # type: ignore[arg-type]

        # 2. It is authorized as the business number at once.
        assert httpx.get(url("getStateInstance")).json() == {"stateInstance": "authorized"}
        assert httpx.get(url("getSettings")).json()["wid"] == "15550100200@c.us"

        # 3. sendMessage reaches Meta's Graph API.
        sent = httpx.post(url("sendMessage"), json={"chatId": "16505551234@c.us", "message": "Your order shipped"})
        assert sent.status_code == 200
        [body] = eventually(graph.messages)
        assert body["to"] == "16505551234" and body["text"]["body"] == "Your order shipped"

        # 4. Meta posts the customer's answer and a receipt, signed: receiveNotification has them.
        from engines.cloud.models import CloudMessage

        wamid = eventually(lambda: CloudMessage.objects.filter(direction="out").values_list("wamid", flat=True).first())
        assert meta_posts(live_asgi, Ref.id, text_message("wamid.ANSWER", "Thanks!")).status_code == 200
        assert meta_posts(live_asgi, Ref.id, status(wamid, "delivered")).status_code == 200
        seen: list[dict[str, Any]] = []
        kinds = {"incomingMessageReceived", "outgoingMessageStatus"}
        for _ in range(8):  # sent + delivered statuses, the incoming message
            if kinds <= {b["typeWebhook"] for b in seen} and any(b.get("status") == "delivered" for b in seen):
                break
            got = httpx.get(url("receiveNotification") + "?receiveTimeout=5", timeout=30).json()
            assert got is not None, seen
            seen.append(got["body"])
            assert httpx.delete(url("deleteNotification", str(got["receiptId"]))).json() == {"result": True}
        incoming = [b for b in seen if b["typeWebhook"] == "incomingMessageReceived"]
        assert [b["messageData"]["textMessageData"]["textMessage"] for b in incoming] == ["Thanks!"]
        assert incoming[0]["senderData"]["chatId"] == "16505551234@c.us"
        assert ("delivered", sent.json()["idMessage"]) in [
            (b.get("status"), b.get("idMessage")) for b in seen if b["typeWebhook"] == "outgoingMessageStatus"
        ]

        # 5. With a webhook URL set, the next message arrives by webhook.
        assert httpx.post(url("setSettings"), json={"webhookUrl": receiver.url}).status_code == 200
        assert meta_posts(live_asgi, Ref.id, text_message("wamid.AGAIN", "One more question")).status_code == 200
        delivered = eventually(lambda: [
            r.json for r in receiver.ok() if r.json.get("typeWebhook") == "incomingMessageReceived"
        ])
        assert [d["messageData"]["textMessageData"]["textMessage"] for d in delivered] == ["One more question"]
    finally:
        receiver.stop()
