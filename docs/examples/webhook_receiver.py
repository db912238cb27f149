#!/usr/bin/env python3
"""A Relay webhook receiver in plain Python (standard library only).

Run:  RELAY_WEBHOOK_SECRET=<the instance's signing secret> python3 webhook_receiver.py --port 8080
then set the instance's ``webhookUrl`` to ``http://<this host>:8080/webhook``.

What it does, and why:
- verifies ``X-Webhook-Signature`` (HMAC-SHA256 of ``timestamp + "." + raw body`` with the
  instance's secret) over the raw bytes, in constant time, and refuses timestamps more
  than five minutes away from this clock (a replayed request is refused);
- checks ``Authorization: Bearer <token>`` when ``RELAY_WEBHOOK_TOKEN`` is set (the
  instance's ``webhookUrlToken``);
- answers 200 at once and drops duplicates by ``X-Webhook-Id``: Relay retries until it
  gets a 2xx, so the same notification can arrive twice after a timeout;
- prints one JSON line per accepted notification; replace ``handle`` with your logic
  (keep it fast, or hand the work to a queue: Relay sends the next notification of an
  instance only after this one was answered).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_SKEW_SECONDS = 300
MAX_BODY_BYTES = 10 * 1024 * 1024
SEEN_MAX = 10_000


def verify(secret: str, timestamp: str, signature: str, body: bytes, now: float | None = None) -> bool:
    """True when ``signature`` is Relay's signature of ``body`` sent at ``timestamp``."""
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_SKEW_SECONDS:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, "sha256=" + mac)


def handle(notification: dict[str, Any], webhook_id: str) -> None:
    """Your logic goes here. This example prints the notification type and id."""
    line = {"id": webhook_id, "typeWebhook": notification.get("typeWebhook"), "body": notification}
    print(json.dumps(line, ensure_ascii=False), flush=True)


class Receiver(BaseHTTPRequestHandler):
    secret = ""
    token = ""
    seen: OrderedDict[str, None] = OrderedDict()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(413, "too large")
            return
        body = self.rfile.read(length)
        if self.token and self.headers.get("Authorization", "") != f"Bearer {self.token}":
            self._answer(401, "bad token")
            return
        timestamp = self.headers.get("X-Webhook-Timestamp", "")
        signature = self.headers.get("X-Webhook-Signature", "")
        if not verify(self.secret, timestamp, signature, body):
            self._answer(401, "bad signature")
            return
        webhook_id = self.headers.get("X-Webhook-Id", "")
        if webhook_id in self.seen:
            self._answer(200, "duplicate")  # already handled: a 2xx stops the retries
            return
        try:
            notification = json.loads(body)
        except ValueError:
            self._answer(400, "not json")
            return
        handle(notification, webhook_id)
        self.seen[webhook_id] = None
        if len(self.seen) > SEEN_MAX:
            self.seen.popitem(last=False)
        self._answer(200, "ok")

    def _answer(self, status: int, text: str) -> None:
        data = json.dumps({"result": text}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(format % args, file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    Receiver.secret = os.environ.get("RELAY_WEBHOOK_SECRET", "")
    Receiver.token = os.environ.get("RELAY_WEBHOOK_TOKEN", "")
    if not Receiver.secret:
        sys.exit("set RELAY_WEBHOOK_SECRET to the instance's signing secret (cabinet: Webhooks)")
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"listening on http://{args.host}:{server.server_address[1]}/webhook", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
