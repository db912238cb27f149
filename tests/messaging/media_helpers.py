"""Shared pieces of the media tests: sample files, an isolated file storage and a
loopback HTTP file server whose routes each test sets."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from engines.emulator.transport import ensure_phone

RECIPIENT = "79001112233"
CHAT_ID = f"{RECIPIENT}@c.us"
MIB = 1024 * 1024


def png_bytes(size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_bytes() -> bytes:
    return b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@dataclass
class MediaDirs:
    files: Path
    tmp: Path

    def stored(self) -> list[Path]:
        return [p for p in self.files.rglob("*") if p.is_file()] if self.files.exists() else []

    def temporary(self) -> list[Path]:
        return [p for p in self.tmp.rglob("*") if p.is_file()]


@pytest.fixture
def media_dirs(settings: Any, tmp_path: Path) -> MediaDirs:
    """Files go to a per-test storage and temp dir, so tests can assert what was kept."""
    dirs = MediaDirs(files=tmp_path / "files", tmp=tmp_path / "upload-tmp")
    dirs.tmp.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "files": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(dirs.files), "base_url": None},
        },
    }
    settings.FILE_UPLOAD_TEMP_DIR = str(dirs.tmp)
    settings.RELAY_MEDIA_URL = "http://media.relay.test"
    settings.MEDIA_FETCH_TIMEOUT_SECONDS = 10.0
    return dirs


@pytest.fixture
def recipient(db: None) -> str:
    ensure_phone(RECIPIENT, "Recipient")
    return CHAT_ID


# --- A loopback file server ----------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream_bytes: int = 0  # > 0: send this many bytes in chunks, no Content-Length
    delay: float = 0.0  # seconds to wait before answering


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.hits.append(self.path)
        self.server.hosts.append(self.headers.get("Host", ""))
        route = self.server.routes.get(self.path, Route(404, b"no such file"))
        if route.delay:
            time.sleep(route.delay)
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        if route.stream_bytes:
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"\0" * 65536
            sent = 0
            try:
                while sent < route.stream_bytes:
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except OSError:
                pass  # the client hung up once it had enough: expected
            return
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        self.hosts: list[str] = []


class FileServer:
    """A threaded HTTP server on ``host`` (a loopback address) serving ``routes``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._server = _Server(host)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def hits(self) -> list[str]:
        return self._server.hits

    @property
    def hosts(self) -> list[str]:
        """The Host header of every request, in order."""
        return self._server.hosts

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def add(self, path: str, body: bytes = b"", *, status: int = 200, **headers: str) -> str:
        self._server.routes[path] = Route(status, body, {k.replace("_", "-"): v for k, v in headers.items()})
        return self.url(path)

    def stream(self, path: str, size: int) -> str:
        self._server.routes[path] = Route(stream_bytes=size)
        return self.url(path)

    def slow(self, path: str, delay: float) -> str:
        self._server.routes[path] = Route(200, b"late", delay=delay)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self._server.routes[path] = Route(status, b"", {"Location": location})
        return self.url(path)

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer("127.0.0.1").start()
    yield server
    server.stop()
