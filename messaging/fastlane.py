"""The sendMessage fast lane in front of Django (and of ``instances.edge``'s body caps).

The fast lane serves ``POST /waInstance{id}/sendMessage/{token}`` on PostgreSQL
without Django's request cycle.

sendMessage is the hot path (bench/send_throughput.py). Under ASGI, a sync Django view
costs a thread hop and the ORM per request; here the same request is served by one
async psycopg statement (an INSERT … SELECT that checks the token) for instances this
process has served before, else by a token SELECT and the INSERT, with the *same*
validation (``SendMessage``, or ``quick_validate`` for plain bodies), the same
composition (``compose_send_message``), the same error bodies in the same order and
the same row as ``messaging.services.send`` writes. Anything it does not handle
(SQLite, Idempotency-Key, markIncomingMessagesReadedOnReply, bad paths) falls through
to Django unchanged.

Wake-ups are handed to a background thread that gathers instance ids for a few
milliseconds and hands each round to ``messaging.services.wake_queues`` (the drain
leader's ready set), so the event loop never blocks on the broker.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import queue
import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from instances import metrics, ratelimit, registry
from instances.bulk import db_value
from instances.clients import scope_meta
from instances.edgepool import EdgePool
from instances.http import (
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    WireError,
    authenticate_instance_async,
    is_outage,
    parse_json_body,
)
from instances.models import Instance
from messaging.api import SendMessage, compose_send_message
from messaging.fields import CHAT_ID_RE
from messaging.models import OutgoingMessage, OutgoingStatus, new_id_message
from messaging.wake import wake_queues

log = logging.getLogger(__name__)

PATH = re.compile(r"^/waInstance(?P<id>\d{1,19})/(?P<method>sendmessage)/(?P<token>[^/]+)/?$", re.IGNORECASE)
SPEC = registry.BY_NAME["sendMessage"]
RECEIVE_PATH = re.compile(r"^/waInstance(?P<id>\d{1,19})/receivenotification/(?P<token>[^/]+)/?$", re.IGNORECASE)

Scope = dict[str, Any]


class _Request:
    """The little of an HttpRequest the wire error bodies need. ``META`` (the client
    address, for the failed-authentication throttle) is built only when an error
    body asks for it, never on the success path."""

    def __init__(self, path: str, scope: Scope | None = None) -> None:
        self.path = path
        self._scope = scope

    @property
    def META(self) -> dict[str, str]:  # noqa: N802 - HttpRequest's name
        return scope_meta(self._scope or {})


def _insert_statement() -> tuple[str, list[Any]]:
    fields = [f for f in OutgoingMessage._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(str(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {OutgoingMessage._meta.db_table} ({columns}) VALUES ({marks})", fields


INSERT_SQL, INSERT_FIELDS = _insert_statement()


def _fast_insert_statement() -> str:
    """The row INSERT made conditional on the instance in the same statement: it
    writes only if the token matches, the instance is live, and the two settings the
    fast lane depends on are as assumed (markIncomingMessagesReadedOnReply off, which
    needs the Django path; linkPreview as the row was composed). The token is
    compared by PostgreSQL, not in constant time: what a caller could learn from the
    timing of one indexed row's string compare is lost in the network's noise, and
    a miss is answered by the exact path's constant-time compare anyway.
    Each value is cast to its column's type: in a SELECT list PostgreSQL would
    otherwise take an untyped NULL as text."""
    connection = _adapting_connection()
    fields = INSERT_FIELDS
    columns = ", ".join(str(f.column) for f in fields)
    casts = ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in fields)
    table = Instance._meta.db_table
    return (
        f"INSERT INTO {OutgoingMessage._meta.db_table} ({columns}) SELECT {casts} FROM {table}"
        " WHERE id = %s AND api_token = %s AND NOT is_deleted AND NOT is_suspended"
        " AND COALESCE(settings->'markIncomingMessagesReadedOnReply', 'false'::jsonb) = 'false'::jsonb"
        " AND COALESCE(settings->'linkPreview', 'true'::jsonb) = %s::jsonb"
    )


_JSON_BOOL = {True: "true", False: "false"}
# Instances this process served: id → (token, linkPreview setting). Only a hint for
# taking the one-statement path; the statement itself checks both.
KNOWN_LIMIT = 50_000


@functools.cache
def _adapting_connection() -> Any:
    """The Django connection whose ``ops`` adapt values (JSON, dates). Adapting never
    touches the socket, so one object serves every request; looking it up through
    ``connections`` (an asgiref Local) per request was measurable."""
    return connections["default"]


def row_values(values: dict[str, Any]) -> list[Any]:
    """Column values in INSERT order, adapted exactly as the ORM adapts them."""
    connection = _adapting_connection()
    return [
        db_value(field, values[field.attname] if field.attname in values else field.get_default(), connection)
        for field in INSERT_FIELDS
    ]


FAST_INSERT_SQL = _fast_insert_statement()


WAKE_LINGER_SECONDS = 0.005


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
        while True:
            taken = [self._queue.get()]
            # Gather a few milliseconds of commits into one round (one Redis round
            # trip for all of them): a round per request cost ~6 % of the lane's CPU.
            time.sleep(WAKE_LINGER_SECONDS)
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


# receive(pool, scope, instance id, token) -> (status, body): journals.longpoll_edge.
ReceiveHandler = Callable[[Any, dict[str, Any], int, str], Awaitable[tuple[int, bytes]]]


class FastLane:
    """ASGI middleware in front of Django (see module docstring)."""

    def __init__(self, app: Any, receive: ReceiveHandler | None = None) -> None:
        """``receive`` serves receiveNotification long-polls on the same pool
        (journals.longpoll_edge, handed in by config.asgi: journals builds on
        messaging, not the other way)."""
        self.app = app
        self.receive = receive
        self.enabled = bool(settings.IS_POSTGRES and settings.RELAY_FASTLANE)
        self._pools: dict[int, EdgePool] = {}
        self._known: dict[int, tuple[str, bool]] = {}
        self.publisher = WakePublisher()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (
            self.enabled
            and scope["type"] == "http"
            and scope["method"] == "GET"
            and self.receive is not None
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
        assert self.receive is not None  # __call__ routes here only with a handler
        started = time.perf_counter()
        try:
            status, body = await self.receive(
                await self._pool(), scope, int(match["id"]), match["token"]
            )
            content_type = "application/json"
        except WireError as exc:
            response = exc.response(_Request(scope["path"], scope))  # type: ignore[arg-type]
            status, body, content_type = response.status_code, response.content, response["Content-Type"]
        except Exception as exc:
            if not is_outage(exc):
                raise
            status, body = await _unavailable(send, scope, exc)
            metrics.observe_request("receiveNotification", status, time.perf_counter() - started)
            return
        await _respond(send, status, body, content_type)
        metrics.observe_request("receiveNotification", status, time.perf_counter() - started)

    async def _pool(self) -> EdgePool:
        key = id(asyncio.get_running_loop())
        pool = self._pools.get(key)
        if pool is None:
            db = settings.DATABASES["default"]
            pool = self._pools[key] = EdgePool(
                settings.RELAY_FASTLANE_POOL_SIZE,
                {
                    "dbname": db["NAME"],
                    "user": db.get("USER") or None,
                    "password": db.get("PASSWORD") or None,
                    "host": db.get("HOST") or None,
                    "port": db.get("PORT") or None,
                },
            )
        return pool

    async def handle(self, scope: Scope, receive: Any, send: Any, match: re.Match[str]) -> None:
        started = time.perf_counter()
        request = _Request(scope["path"], scope)
        status, body, fall_through = 500, b"", False
        try:
            status, body, fall_through = await self._send_message(scope, receive, match)
        except WireError as exc:
            response = exc.response(request)  # type: ignore[arg-type]
            status, body = response.status_code, response.content
            await _respond(send, status, body, response["Content-Type"])
        except Exception as exc:
            if not is_outage(exc):
                raise
            status, body = await _unavailable(send, scope, exc)
        else:
            if fall_through:
                await self.app(scope, _replay(body), send)
                return
            await _respond(send, status, body, "application/json")
        metrics.observe_request("sendMessage", status, time.perf_counter() - started)

    async def _send_message(self, scope: Scope, receive: Any, match: re.Match[str]) -> tuple[int, bytes, bool]:
        """One round trip when this process has served the instance before (see
        ``_known``): validate, count the rate limit, then one INSERT … SELECT that
        only writes the row if the token still matches and the settings the row was
        composed with still hold. Anything else (first request, a wrong or rotated
        token, changed settings, a body error, the limit reached) takes
        ``_send_message_exact``, which answers in the Django view's order: auth,
        then the limit, then the body. What the fast try counted is refunded first,
        so a request is counted once, and a wrong token never counts at all."""
        raw = await _read_body(receive, settings.MAX_JSON_BODY_BYTES)
        instance_id, token = int(match["id"]), match["token"]
        known = self._known.get(instance_id)
        if known is None or not hmac.compare_digest(known[0], token):
            return await self._send_message_exact(instance_id, token, raw)
        link_default = known[1]
        try:
            data = parse_json_body(raw)
            validated = quick_validate(data) or SendMessage().validate(data)
        except WireError:
            return await self._send_message_exact(instance_id, token, raw)
        if validated.get("archiveChat") or validated.get("typingTime"):
            # Archiving writes the chat list, and both depend on the engine
            # (messaging.api.refuse_inert_options): the Django path does them.
            return await self._send_message_exact(instance_id, token, raw)
        allowed, bucket = await ratelimit.count_async(instance_id, SPEC)
        if allowed:
            id_message, values = _compose(instance_id, validated, link_default)
            pool = await self._pool()
            conn = await pool.acquire()
            try:
                cursor = pool.cursor(conn)
                await cursor.execute(FAST_INSERT_SQL, [*values, instance_id, token, _JSON_BOOL[link_default]])
                inserted = cursor.rowcount == 1
            finally:
                pool.release(conn)
            if inserted:
                self.publisher.wake(instance_id)  # committed (autocommit): now wake the drain
                return 200, b'{"idMessage":"' + id_message.encode() + b'"}', False
        await ratelimit.refund_async(instance_id, SPEC, bucket)
        self._known.pop(instance_id, None)
        return await self._send_message_exact(instance_id, token, raw)

    async def _send_message_exact(self, instance_id: int, token: str, raw: bytes) -> tuple[int, bytes, bool]:
        """Auth (403/401), the Django fall-through, the limit (429), the body (400),
        then the INSERT: the Django view's order and answers."""
        pool = await self._pool()
        conn = await pool.acquire()
        try:
            stored_settings = await authenticate_instance_async(conn, instance_id, token)
            if stored_settings.get("markIncomingMessagesReadedOnReply"):
                return 0, raw, True  # needs the journal write: the Django path does it
            allowed, bucket = await ratelimit.count_async(instance_id, SPEC)
            if not allowed:
                raise TooManyRequests()
            validated = SendMessage().validate(parse_json_body(raw))
            if validated.get("archiveChat") or validated.get("typingTime"):
                # Archiving writes the chat list, and both depend on the instance's
                # engine (messaging.api.refuse_inert_options): the Django path does
                # them, and counts the request itself.
                await ratelimit.refund_async(instance_id, SPEC, bucket)
                return 0, raw, True
            link_default = bool(stored_settings.get("linkPreview", True))
            id_message, values = _compose(instance_id, validated, link_default)
            await conn.execute(INSERT_SQL, values)
        finally:
            pool.release(conn)
        self._remember(instance_id, token, link_default)
        self.publisher.wake(instance_id)  # committed (autocommit): now wake the drain
        return 200, b'{"idMessage":"' + id_message.encode() + b'"}', False

    def _remember(self, instance_id: int, token: str, link_default: bool) -> None:
        if len(self._known) >= KNOWN_LIMIT:
            self._known.clear()  # bound memory; they are re-learned on next use
        self._known[instance_id] = (token, link_default)


_MESSAGE_MAX = 20_000
_CHAT_ID_MAX = 100
_REFUSED_CHARS = re.compile("[\x00\ud800-\udfff]")  # DRF's null and surrogate checks


def quick_validate(data: Any) -> dict[str, Any] | None:
    """The validated body for the commonest sendMessage, ``{"chatId", "message"}``
    with plain valid values, or None: everything else (other fields, any doubt, any
    error) goes through the SendMessage serializer, which words the errors. DRF
    builds and runs a serializer per request, a sixth of the fast lane's CPU; this
    answers the same (tests compare both on a grid of bodies)."""
    if type(data) is not dict or len(data) != 2:
        return None
    chat_id, message = data.get("chatId"), data.get("message")
    if type(chat_id) is not str or type(message) is not str:
        return None
    if not 0 < len(message) <= _MESSAGE_MAX or len(chat_id) > _CHAT_ID_MAX or not CHAT_ID_RE.match(chat_id):
        return None
    if _REFUSED_CHARS.search(message) or _REFUSED_CHARS.search(chat_id):
        return None
    return {"chatId": chat_id, "message": message}


def _compose(instance_id: int, validated: dict[str, Any], link_default: bool) -> tuple[str, list[Any]]:
    type_message, echo, payload = compose_send_message(validated, link_default)
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
    return id_message, values


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


async def _unavailable(send: Any, scope: Scope, exc: BaseException) -> tuple[int, bytes]:
    """The database is out of reach: GREEN-API's JSON 503 with Retry-After (nothing
    was written). The pool has already dropped the connection that failed and the
    idle ones made before it (EdgePool.release)."""
    log.warning("fast lane: database unavailable: %s: %s", exc.__class__.__name__, exc)
    response = ServiceUnavailable().response(_Request(scope["path"]))  # type: ignore[arg-type]
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [
                (b"content-type", response["Content-Type"].encode()),
                (b"retry-after", response["Retry-After"].encode()),
                (b"content-length", str(len(response.content)).encode()),
                (b"access-control-allow-origin", b"*"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.content})
    return response.status_code, response.content


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
