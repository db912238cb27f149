"""A fake of Meta's Graph API on a loopback port: the endpoints the cloud engine
calls, with Graph's answers and error bodies. Tests read what it received and
script the errors it answers."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse


@dataclass
class Number:
    token: str
    display_phone_number: str
    verified_name: str = "Acme Support"


@dataclass
class Sent:
    """A POST to /{phone_number_id}/messages as the fake received it."""

    phone_number_id: str
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived
    wamid: str = ""  # the id the fake answered (messages; empty for read marks)


@dataclass
class FakeGraph:
    url: str = ""
    version: str = "v23.0"
    numbers: dict[str, Number] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    uploads: dict[str, tuple[bytes, str, str]] = field(default_factory=dict)  # id -> bytes, mime, file name
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # served media id -> bytes, mime
    # Answers for the next message POSTs, in order: (HTTP status, Graph error code).
    errors: list[tuple[int, int]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (verb, path)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add_number(self, phone_number_id: str, token: str, display: str = "+1 555-010-0200") -> None:
        self.numbers[phone_number_id] = Number(token, display)

    def messages(self) -> list[dict[str, Any]]:
        """Bodies of the messages sent (read marks left out)."""
        return [s.body for s in self.sent if "status" not in s.body]

    def next_id(self) -> int:
        with self.lock:
            return next(self._ids)


ERRORS = {
    190: ("OAuthException", "Invalid OAuth access token - Cannot parse access token"),
    100: ("GraphMethodException", "Unsupported get request. Object with ID does not exist"),
    131047: ("OAuthException", "Re-engagement message"),
    131056: ("OAuthException", "(Business Account, Consumer Account) pair rate limit hit"),
    130429: ("OAuthException", "Rate limit hit"),
    131000: ("OAuthException", "Something went wrong"),
}


def _error(code: int) -> dict[str, Any]:
    kind, message = ERRORS.get(code, ("OAuthException", "error"))
    return {
        "error": {
            "message": f"({'#'}{code}) {message}",
            "type": kind,
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "AbCdEf",
        }
    }


def handler_for(fake: FakeGraph) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Graph does
        # Headers and body leave in one write (no Nagle/delayed-ACK stall per answer).
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any, content_type: str = "application/json") -> None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _token(self) -> str:
            return self.headers.get("Authorization", "").removeprefix("Bearer ")

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _parts(self) -> list[str]:
            path = urlparse(self.path).path
            fake.requests.append((self.command, path))
            parts = [p for p in path.split("/") if p]
            return parts[1:] if parts and parts[0] == fake.version else ["!", *parts]

        def _number(self, phone_number_id: str) -> Number | None:
            number = fake.numbers.get(phone_number_id)
            if number is None:
                self._answer(404, _error(100))
                return None
            if number.token != self._token():
                self._answer(401, _error(190))
                return None
            return number

        def do_GET(self) -> None:  # noqa: N802
            parts = self._parts()
            if parts[:2] == ["!", "download"] and len(parts) == 3:
                if not any(n.token == self._token() for n in fake.numbers.values()):
                    self._answer(401, _error(190))
                    return
                content, mime = fake.media[parts[2]]
                self._answer(200, content, mime)
                return
            if len(parts) != 1:
                self._answer(404, _error(100))
                return
            if parts[0] in fake.media:
                content, mime = fake.media[parts[0]]
                self._answer(200, {
                    "url": f"{fake.url}/download/{parts[0]}", "mime_type": mime, "file_size": len(content),
                    "id": parts[0], "messaging_product": "whatsapp",
                })
                return
            number = self._number(parts[0])
            if number is not None:
                self._answer(200, {
                    "display_phone_number": number.display_phone_number, "verified_name": number.verified_name,
                    "quality_rating": "GREEN", "id": parts[0],
                })

        def do_POST(self) -> None:  # noqa: N802
            parts = self._parts()
            raw = self._body()
            if len(parts) != 2 or self._number(parts[0]) is None:
                if len(parts) != 2:
                    self._answer(404, _error(100))
                return
            if parts[1] == "media":
                message = BytesParser(policy=HTTP).parsebytes(
                    f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + raw
                )
                fields: dict[str, Any] = {}
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    fields[str(name)] = (part.get_payload(decode=True), part.get_content_type(), part.get_filename())
                media_id = f"{9000 + fake.next_id()}"
                content, mime, name = fields["file"]
                fake.uploads[media_id] = (content, fields["type"][0].decode(), name or "")
                self._answer(200, {"id": media_id})
                return
            if parts[1] != "messages":
                self._answer(404, _error(100))
                return
            body = json.loads(raw)
            with fake.lock:
                scripted = fake.errors.pop(0) if fake.errors and "status" not in body else None
            if scripted is not None:
                self._answer(scripted[0], _error(scripted[1]))
                return
            if body.get("status") == "read":
                fake.sent.append(Sent(parts[0], body, time.monotonic()))
                self._answer(200, {"success": True})
                return
            wamid = f"wamid.FAKE{fake.next_id():06d}"
            fake.sent.append(Sent(parts[0], body, time.monotonic(), wamid))
            to = body.get("to") or body.get("recipient")
            contact = {"input": to, "wa_id": to} if "to" in body else {"input": to, "user_id": to}
            self._answer(200, {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]})

    return Handler


def start() -> tuple[FakeGraph, ThreadingHTTPServer]:
    fake = FakeGraph()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
