"""The ASGI edge in front of Django: body size caps and unsafe request lines.

It sits behind the sendMessage fast lane (messaging/fastlane.py), which reads its
own bodies under ``MAX_JSON_BODY_BYTES`` and never puts a URL string into SQL, so
the hot path pays nothing here.

Django's ASGI handler reads a whole request body into a temporary file before any
middleware or view runs, so caps enforced later (``DATA_UPLOAD_MAX_MEMORY_SIZE``,
the upload views' ``MEDIA_MAX_BYTES``) cannot stop a 10 GB body from filling the
disk. Here, before anything is read:

- a declared ``Content-Length`` over the path's cap is answered 413 at once;
- a body without one (chunked) is counted as it streams and cut at the cap (413,
  and the app sees the client go away);
- an upload method (``sendFileByUpload`` …) checks its instance token first, so an
  unauthenticated request is answered 401/403 without a byte of its body read;
- a path or query string with a NUL byte is answered 400: PostgreSQL cannot store
  one in text, and no route means one.

Caps per path (docs/operations.md): wire JSON methods ``MAX_JSON_BODY_BYTES``; wire
upload methods ``MEDIA_MAX_BYTES`` + 1 MiB of multipart framing; ``/api/v1/``
``API_MAX_BODY_BYTES``; anything else (cabinet, admin) the upload cap for callers
with a session cookie, ``ANONYMOUS_MAX_BODY_BYTES`` without one.

A request whose declared length is within its cap costs one header scan and a
comparison: the HTTP server never delivers more than the declared length.
"""

from __future__ import annotations

import re
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from instances import metrics
from instances.clients import scope_meta
from instances.http import (
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    WireError,
    authenticate_instance,
    too_large_message,
)

Scope = dict[str, Any]

UPLOAD_PATH = re.compile(
    r"^/waInstance(?P<id>\d{1,19})/(?:sendfilebyupload|uploadfile|setprofilepicture|setgrouppicture)"
    r"/(?P<token>[^/]*)",
    re.IGNORECASE,
)
WIRE_PATH = re.compile(r"^/(?:waInstance\d|partner/)", re.IGNORECASE)
MULTIPART_SLACK = 1024 * 1024
BIGINT_MAX = 2**63 - 1


class _Request:
    """The little of an HttpRequest the wire error bodies need (the client address
    for the failed-authentication throttle included)."""

    def __init__(self, path: str, scope: Scope) -> None:
        self.path = path
        self.META = scope_meta(scope)


def body_limit(scope: Scope) -> tuple[int, bool]:
    """(cap in bytes, is a wire upload method) for this request."""
    path: str = scope["path"]
    if UPLOAD_PATH.match(path):
        return settings.MEDIA_MAX_BYTES + MULTIPART_SLACK, True
    if WIRE_PATH.match(path):
        return settings.MAX_JSON_BODY_BYTES, False
    if path.startswith("/api/"):
        return settings.API_MAX_BODY_BYTES, False
    if _has_session_cookie(scope):
        return settings.MEDIA_MAX_BYTES + MULTIPART_SLACK, False
    return settings.ANONYMOUS_MAX_BODY_BYTES, False


def _has_session_cookie(scope: Scope) -> bool:
    cookie = _header(scope, b"cookie")
    return cookie is not None and f"{settings.SESSION_COOKIE_NAME}=" in cookie


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _too_large(path: str, upload: bool, size: int) -> WireError:
    if upload:
        return PayloadTooLarge(too_large_message(size, settings.MEDIA_MAX_BYTES))
    return PayloadTooLarge()


async def respond(send: Any, scope: Scope, error: WireError) -> None:
    """Send ``error``'s wire response (JSON or text, as the wire layer renders it)."""
    response = await database_sync_to_async(error.response)(_Request(scope["path"], scope))
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [
                (b"content-type", response["Content-Type"].encode()),
                (b"content-length", str(len(response.content)).encode()),
                (b"access-control-allow-origin", b"*"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.content})


def _authenticate(id_instance: int, token: str) -> None:
    authenticate_instance(id_instance, token)


class EdgeGuard:
    """ASGI middleware (see module docstring); wraps Django's ASGI handler."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if "\x00" in path or b"%00" in scope.get("query_string", b""):
            await respond(send, scope, BadRequest("Bad Request: NUL bytes are not allowed in the URL"))
            metrics.observe_request("edge", 400, 0.0)
            return
        limit, upload = body_limit(scope)
        declared = _header(scope, b"content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        if length is not None and length > limit:
            await respond(send, scope, _too_large(path, upload, length))
            metrics.observe_request("edge", 413, 0.0)
            return
        if upload and (refusal := await self._refuse_upload(path)) is not None:
            await respond(send, scope, refusal)
            metrics.observe_request("edge", refusal.status, 0.0)
            return
        if length is not None:
            await self.app(scope, receive, send)  # the server delivers no more than declared
            return
        await self._counted(scope, receive, send, limit, upload)

    async def _refuse_upload(self, path: str) -> WireError | None:
        """The instance's 401/403 before its upload body is read, or None."""
        match = UPLOAD_PATH.match(path)
        assert match is not None
        id_instance = int(match["id"])
        if id_instance > BIGINT_MAX:
            return Forbidden()
        try:
            await database_sync_to_async(_authenticate)(id_instance, match["token"])
        except WireError as exc:
            return exc
        return None

    async def _counted(self, scope: Scope, receive: Any, send: Any, limit: int, upload: bool) -> None:
        received = 0
        refused = False
        path: str = scope["path"]

        async def capped_receive() -> dict[str, Any]:
            nonlocal received, refused
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now; the app sees the client go away and its own answer
                    # (if any) is dropped by guarded_send.
                    refused = True
                    await respond(send, scope, _too_large(path, upload, received))
                    metrics.observe_request("edge", 413, 0.0)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if not refused:
                await send(message)

        await self.app(scope, capped_receive, guarded_send)
