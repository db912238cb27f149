"""The ASGI edge in front of Django: the sendMessage fast lane, and the upload guard.

The fast lane serves ``POST /waInstance{id}/sendMessage/{token}`` on PostgreSQL
without Django's request cycle.

sendMessage is the hot path (bench/send_throughput.py). Under ASGI, a sync Django view
costs a thread hop and the ORM per request; here the same request is served by one
async psycopg round trip for the token and one INSERT, with the *same* validation
(``SendMessage.validate``), the same composition (``compose_send_message``), the same
error bodies and the same row as ``messaging.services.send`` writes. Anything it does
not handle (SQLite, Idempotency-Key, markIncomingMessagesReadedOnReply, bad paths)
falls through to Django unchanged.

Wake-ups are handed to a background thread that coalesces instance ids and hands
each round to ``messaging.services.wake_queues`` (Redis-coalesced sweeps), so the
event loop never blocks on the broker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import re
import threading
import time
from typing import Any

from django.conf import settings
from django.db import connections, models
from django.utils import timezone

from instances import metrics, ratelimit, registry
from instances.http import (
    BadRequest,
    PayloadTooLarge,
    TooManyRequests,
    WireError,
    authenticate_instance_async,
    parse_json_body,
)
from messaging.models import OutgoingMessage, OutgoingStatus, new_id_message

log = logging.getLogger(__name__)

PATH = re.compile(r"^/waInstance(?P<id>\d{1,19})/(?P<method>sendmessage)/(?P<token>[^/]+)/?$", re.IGNORECASE)
SPEC = registry.BY_NAME["sendMessage"]
RECEIVE_PATH = re.compile(r"^/waInstance(?P<id>\d{1,19})/receivenotification/(?P<token>[^/]+)/?$", re.IGNORECASE)
UPLOAD_PATH = re.compile(
    r"^/waInstance\d{1,19}/(sendfilebyupload|uploadfile|setprofilepicture|setgrouppicture)/", re.IGNORECASE
)

Scope = dict[str, Any]


class _Request:
    """The little of an HttpRequest the wire error bodies need."""

    def __init__(self, path: str) -> None:
        self.path = path


def _insert_statement() -> tuple[str, list[Any]]:
    fields = [f for f in OutgoingMessage._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(str(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {OutgoingMessage._meta.db_table} ({columns}) VALUES ({marks})", fields


INSERT_SQL, INSERT_FIELDS = _insert_statement()


# Fields whose database value is the Python value itself when that value is a plain
# str/int/bool/None: asking Django to adapt them cost ~10 % of a fast-lane request.
# JSON (and anything else) still goes through the field's own adaptation.
_PLAIN_FIELDS = (models.CharField, models.TextField, models.IntegerField, models.BooleanField, models.ForeignKey)
_PLAIN_VALUES = (str, int, bool, type(None))
_INSERT_PLAIN = [isinstance(f, _PLAIN_FIELDS) and not isinstance(f, models.JSONField) for f in INSERT_FIELDS]


@functools.cache
def _adapting_connection() -> Any:
    """The Django connection whose ``ops`` adapt values (JSON, dates). Adapting never
    touches the socket, so one object serves every request; looking it up through
    ``connections`` (an asgiref Local) per request was measurable."""
    return connections["default"]


def row_values(values: dict[str, Any]) -> list[Any]:
    """Column values in INSERT order, adapted exactly as the ORM adapts them."""
    out = []
    connection = _adapting_connection()
    for field, plain in zip(INSERT_FIELDS, _INSERT_PLAIN, strict=True):
        value = values[field.attname] if field.attname in values else field.get_default()
        if plain and isinstance(value, _PLAIN_VALUES):
            out.append(value)
        else:
            out.append(field.get_db_prep_save(value, connection))
    return out


class WakePublisher:
    """Coalesces drain wake-ups off the event loop: one task per instance per round."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._busy = 0  # ids queued or being published
        self._idle = threading.Condition()

    def wait_idle(self, timeout: float) -> bool:
        """Block until every wake-up handed in so far has been published (tests and
        shutdown: with eager Celery the publish *is* the drain)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def wake(self, instance_id: int) -> None:
        with self._idle:
            self._busy += 1
        self._queue.put(instance_id)
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="relay-wake", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        from messaging.services import wake_queues

        while True:
            taken = [self._queue.get()]
            while True:
                try:
                    taken.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                wake_queues(taken)
            finally:
                with self._idle:
                    self._busy -= len(taken)
                    self._idle.notify_all()


class FastLane:
    """ASGI middleware in front of Django (see module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.enabled = bool(settings.IS_POSTGRES and settings.RELAY_FASTLANE)
        self._pools: dict[int, Any] = {}
        self.publisher = WakePublisher()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and UPLOAD_PATH.match(scope["path"]):
            await self.guard_upload(scope, receive, send)
            return
        if (
            self.enabled
            and scope["type"] == "http"
            and scope["method"] == "GET"
            and (poll := RECEIVE_PATH.match(scope["path"]))
        ):
            await self.handle_receive(scope, send, poll)
            return
        if (
            self.enabled
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and (match := PATH.match(scope["path"]))
            and not _has_header(scope, b"idempotency-key")
        ):
            await self.handle(scope, receive, send, match)
            return
        await self.app(scope, receive, send)

    async def handle_receive(self, scope: Scope, send: Any, match: re.Match[str]) -> None:
        """receiveNotification long-polls (journals/longpoll_edge.py)."""
        from journals.longpoll_edge import receive_notification

        started = time.perf_counter()
        try:
            status, body = await receive_notification(
                await self._pool(), scope, int(match["id"]), match["token"]
            )
            content_type = "application/json"
        except WireError as exc:
            response = exc.response(_Request(scope["path"]))  # type: ignore[arg-type]
            status, body, content_type = response.status_code, response.content, response["Content-Type"]
        await _respond(send, status, body, content_type)
        metrics.observe_request("receiveNotification", status, time.perf_counter() - started)

    async def guard_upload(self, scope: Scope, receive: Any, send: Any) -> None:
        """Django's ASGI handler spools a whole request body to a temp file before any
        view runs, so the upload views' 100 MB cap alone cannot stop a 10 GB body from
        filling the disk. A declared length over the cap is refused here at once; a
        chunked body is cut off (the client sees the connection end) once it passes it.
        Multipart framing gets 1 MiB of slack on top of the file cap."""
        from messaging import media

        limit = settings.MEDIA_MAX_BYTES + 1024 * 1024
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            message = media.too_large_message(int(declared), settings.MEDIA_MAX_BYTES)
            response = PayloadTooLarge(message).response(_Request(scope["path"]))  # type: ignore[arg-type]
            await _respond(send, response.status_code, response.content, response["Content-Type"])
            metrics.observe_request("upload", response.status_code, 0.0)
            return
        received = 0
        refused = False

        async def capped_receive() -> dict[str, Any]:
            nonlocal received, refused
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now; Django sees the client go away and its own answer
                    # (if any) is dropped by guarded_send.
                    refused = True
                    text = media.too_large_message(received, settings.MEDIA_MAX_BYTES)
                    response = PayloadTooLarge(text).response(_Request(scope["path"]))  # type: ignore[arg-type]
                    await _respond(send, response.status_code, response.content, response["Content-Type"])
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if not refused:
                await send(message)

        await self.app(scope, capped_receive, guarded_send)

    async def _pool(self) -> Any:
        from psycopg_pool import AsyncConnectionPool

        key = id(asyncio.get_running_loop())
        pool = self._pools.get(key)
        if pool is None:
            db = settings.DATABASES["default"]
            pool = AsyncConnectionPool(
                conninfo="",
                kwargs={
                    "dbname": db["NAME"],
                    "user": db.get("USER") or None,
                    "password": db.get("PASSWORD") or None,
                    "host": db.get("HOST") or None,
                    "port": db.get("PORT") or None,
                    "autocommit": True,
                },
                min_size=1,
                max_size=settings.RELAY_FASTLANE_POOL_SIZE,
                open=False,
            )
            self._pools[key] = pool
            await pool.open()
        return pool

    async def handle(self, scope: Scope, receive: Any, send: Any, match: re.Match[str]) -> None:
        started = time.perf_counter()
        request = _Request(scope["path"])
        status, body, fall_through = 500, b"", False
        try:
            status, body, fall_through = await self._send_message(scope, receive, match)
        except WireError as exc:
            response = exc.response(request)  # type: ignore[arg-type]
            status, body = response.status_code, response.content
            await _respond(send, status, body, response["Content-Type"])
        else:
            if fall_through:
                await self.app(scope, _replay(body), send)
                return
            await _respond(send, status, body, "application/json")
        metrics.observe_request("sendMessage", status, time.perf_counter() - started)

    async def _send_message(self, scope: Scope, receive: Any, match: re.Match[str]) -> tuple[int, bytes, bool]:
        raw = await _read_body(receive, settings.MAX_JSON_BODY_BYTES)
        instance_id, token = int(match["id"]), match["token"]
        pool = await self._pool()
        async with pool.connection() as conn:
            stored_settings = await authenticate_instance_async(conn, instance_id, token)
            if stored_settings.get("markIncomingMessagesReadedOnReply"):
                return 0, raw, True  # needs the journal write: the Django path does it
            if not await ratelimit.allow_async(instance_id, SPEC):
                raise TooManyRequests()
            data = parse_json_body(raw)
            from messaging.api import SendMessage, compose_send_message

            validated = SendMessage().validate(data)
            link_default = stored_settings.get("linkPreview", True)
            type_message, echo, payload = compose_send_message(validated, bool(link_default))
            id_message = new_id_message()
            values = row_values(
                {
                    "instance_id": instance_id,
                    "id_message": id_message,
                    "chat_id": validated["chatId"],
                    "method": "sendMessage",
                    "type_message": type_message,
                    "request": echo,
                    "payload": payload,
                    "is_file": False,
                    "status": OutgoingStatus.QUEUED,
                    "created_at": timezone.now(),
                }
            )
            await conn.execute(INSERT_SQL, values)
        # Committed (autocommit): now, and only now, wake the drain.
        self.publisher.wake(instance_id)
        return 200, b'{"idMessage":"' + id_message.encode() + b'"}', False


def _has_header(scope: Scope, name: bytes) -> bool:
    return _header(scope, name) is not None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Any, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest("Client Closed Request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nothing more; wait for the app to finish
        return {"type": "http.disconnect"}

    return receive


async def _respond(send: Any, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"access-control-allow-origin", b"*"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
