"""The HTTP side of webhook delivery: one POST over a kept-alive HTTP/1.1 connection
to a vetted address. I/O only: no models, no settings, no retries.

Why ``http.client`` and not httpx (which the rest of Relay uses for outbound HTTP):
a loopback POST costs about 1 ms of CPU through httpx against about 0.2 ms through
the standard library, and at 1 000 deliveries/s per node the client was most of the
worker's time (docs/performance.md, Webhooks). Delivery needs none of what httpx
adds: no redirects (never followed), no proxies (never used), no cookies, no HTTP/2.

SSRF (instances.ssrf): a host is resolved and every address it has is vetted; the
answer is kept ``RESOLVE_TTL_SECONDS`` per (host, port, policy), like a DNS cache, so
a busy endpoint is not looked up for every notification. The TCP connection goes to
the vetted address; the Host header, TLS SNI and certificate check keep the name, so
a DNS answer that changes after the check cannot send us elsewhere. Connections are
kept per (scheme, name, port, address) and per thread: a connection is only ever
reused for the name and address it was opened for.
"""

from __future__ import annotations

import base64
import http.client
import os
import select
import ssl
import threading
import time
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote, urlsplit

import httpx

from instances import ssrf

EXCERPT_BYTES = 1024
# Past the excerpt, an answer is read up to this much more so its connection can be
# reused; a longer one closes the connection instead (we never need the rest).
DRAIN_BYTES = 64 * 1024
# An idle connection older than this is closed rather than reused: servers drop idle
# keep-alive connections after a few seconds (uvicorn 5 s, nginx 75 s), and a request
# written into a connection the server is closing fails. httpx uses the same 5 s.
KEEPALIVE_SECONDS = 5.0
RESOLVE_TTL_SECONDS = 30.0
MAX_CONNECTIONS = 256  # per thread; the least recently used one is closed beyond it
MAX_RESOLVED = 4096


class InvalidURL(ValueError):
    """The webhookUrl cannot be parsed into a host, port and path."""


@dataclass(frozen=True)
class Endpoint:
    """A parsed webhookUrl. ``host`` is the ASCII (IDNA) name or IP literal."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent on the request line
    host_header: str
    basic_auth: str | None  # from user:password@ in the URL, when there is one


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str
    location: str


def parse(url: str) -> Endpoint:
    """Split a webhookUrl; raises ``ssrf.Refused`` for other schemes and
    ``InvalidURL`` for what cannot be posted to."""
    try:
        parts = urlsplit(url)
        port = parts.port
        name = parts.hostname or ""
    except ValueError as exc:
        raise InvalidURL(str(exc)) from exc
    scheme = parts.scheme.lower()
    if scheme not in ssrf.SCHEMES:
        raise ssrf.Refused(f"only http and https webhook URLs are allowed, not {scheme or 'none'}")
    if not name:
        raise ssrf.Refused("the webhook URL has no host")
    try:
        host = name if name.isascii() else name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidURL(f"bad host name {name!r}: {exc}") from exc
    if any(c in host for c in "\r\n\t ") or any(c in url for c in "\r\n"):
        raise InvalidURL("the URL contains whitespace or line breaks")
    default = 443 if scheme == "https" else 80
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != default:
        netloc += f":{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    basic = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        basic = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return Endpoint(scheme, host, port or default, target, netloc, basic)


# --- Vetted addresses ------------------------------------------------------------------

_resolved: dict[tuple[str, int, ssrf.Policy], tuple[ssrf.IPAddress, float]] = {}
_resolved_lock = threading.Lock()


def vetted_address(host: str, port: int, policy: ssrf.Policy) -> ssrf.IPAddress:
    """The address to connect to, vetted under ``policy`` within the last
    ``RESOLVE_TTL_SECONDS``; raises ``ssrf.Refused`` (refusals are not cached)."""
    key = (host, port, policy)
    now = time.monotonic()
    with _resolved_lock:
        hit = _resolved.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    ip = ssrf.resolve(host, port, policy)
    with _resolved_lock:
        if len(_resolved) >= MAX_RESOLVED:
            _resolved.clear()
        _resolved[key] = (ip, now + RESOLVE_TTL_SECONDS)
    return ip


def forget_addresses() -> None:
    """Drop every cached resolution (tests; a changed policy is a new key anyway)."""
    with _resolved_lock:
        _resolved.clear()


# --- Connections -----------------------------------------------------------------------


@cache
def _tls_context() -> ssl.SSLContext:
    # The same trust store and defaults as httpx (certifi), so https endpoints that
    # verified before still do. Environment variables are ignored, as before.
    return httpx.create_ssl_context(trust_env=False)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """TCP to the vetted address; after connecting, reads wait ``read_timeout``."""

    def __init__(self, ip: str, port: int, connect_timeout: float, read_timeout: float) -> None:
        super().__init__(ip, port, timeout=connect_timeout)
        self.read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self.read_timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TCP to the vetted address; TLS SNI and the certificate check use the name."""

    def __init__(self, ip: str, port: int, connect_timeout: float, read_timeout: float, server_name: str) -> None:
        super().__init__(ip, port, timeout=connect_timeout, context=_tls_context())
        self.server_name = server_name
        self.read_timeout = read_timeout

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # plain TCP to the address, then TLS by name
        self.sock = _tls_context().wrap_socket(self.sock, server_hostname=self.server_name)
        self.sock.settimeout(self.read_timeout)


_ConnKey = tuple[str, str, int, str]


class _Pool(threading.local):
    """This thread's idle connections, least recently used first."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.idle: dict[_ConnKey, tuple[http.client.HTTPConnection, float]] = {}


_pool = _Pool()


def _take(key: _ConnKey) -> http.client.HTTPConnection | None:
    if _pool.pid != os.getpid():  # a forked child must not share its parent's sockets
        _pool.idle = {}
        _pool.pid = os.getpid()
    entry = _pool.idle.pop(key, None)
    if entry is None:
        return None
    conn, idle_since = entry
    sock = conn.sock
    if sock is None or time.monotonic() - idle_since > KEEPALIVE_SECONDS:
        conn.close()
        return None
    # Readable while idle means the server closed it (or sent something unasked):
    # either way a request written into it would fail.
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        readable = [sock]
    if readable:
        conn.close()
        return None
    return conn


def _give_back(key: _ConnKey, conn: http.client.HTTPConnection) -> None:
    if conn.sock is None:
        return  # the server said Connection: close
    _pool.idle[key] = (conn, time.monotonic())
    while len(_pool.idle) > MAX_CONNECTIONS:
        oldest = next(iter(_pool.idle))
        _pool.idle.pop(oldest)[0].close()


def close_idle() -> None:
    """Close this thread's idle connections."""
    for conn, _ in _pool.idle.values():
        conn.close()
    _pool.idle.clear()


def post(
    endpoint: Endpoint,
    headers: dict[str, str],
    content: bytes,
    *,
    policy: ssrf.Policy,
    timeout: float,
    connect_timeout: float,
) -> Answer:
    """POST ``content``; the answer's status, first KB and Location header.

    Raises ``ssrf.Refused``, ``TimeoutError`` (``args[0]`` is ``"connect"`` or
    ``"read"``), ``OSError`` (refused, reset, TLS) or ``http.client.HTTPException``
    (not HTTP, or the server closed the connection before answering)."""
    ip = str(vetted_address(endpoint.host, endpoint.port, policy))
    key = (endpoint.scheme, endpoint.host, endpoint.port, ip)
    conn = _take(key)
    if conn is None:
        if endpoint.scheme == "https":
            conn = _PinnedHTTPSConnection(ip, endpoint.port, connect_timeout, timeout, endpoint.host)
        else:
            conn = _PinnedHTTPConnection(ip, endpoint.port, connect_timeout, timeout)
        try:
            conn.connect()
        except TimeoutError as exc:
            conn.close()
            raise TimeoutError("connect") from exc
        except BaseException:
            conn.close()
            raise
    else:
        conn.sock.settimeout(timeout)
    headers = {**headers, "Host": endpoint.host_header}
    if endpoint.basic_auth and "Authorization" not in headers:
        headers["Authorization"] = endpoint.basic_auth
    try:
        conn.request("POST", endpoint.target, body=content, headers=headers)
        response = conn.getresponse()
    except TimeoutError as exc:
        conn.close()
        raise TimeoutError("read") from exc
    except BaseException:
        conn.close()
        raise
    data = b""
    reusable = False
    try:
        data = response.read(EXCERPT_BYTES)
        if not response.isclosed():
            response.read(DRAIN_BYTES)
        reusable = response.isclosed() and not response.will_close
    except (OSError, http.client.HTTPException):
        pass  # the status decides; a body cut short changes nothing
    if reusable:
        _give_back(key, conn)
    else:
        conn.close()
    text = data[:EXCERPT_BYTES].decode("utf-8", errors="replace")[:EXCERPT_BYTES]
    return Answer(response.status, text, response.getheader("Location") or "")
