"""Meta's Graph API over httpx: one kept-alive client per process, Graph's error
body turned into ``GraphError``, and which errors a retry can help."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

# Graph error codes (Meta's "Cloud API error codes" page).
TOKEN_INVALID = 190
RATE_LIMIT_NUMBER = 130429  # the number's throughput was exceeded
RATE_LIMIT_PAIR = 131056  # too many messages to one user
WINDOW_CLOSED = 131047  # more than 24 h since the user's last message
UNDELIVERABLE = 131026
# Worth retrying later: throttling, temporary outages, "try again" codes.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 80007, 130429, 131000, 131016, 131056, 133004})

_local = threading.local()


@dataclass
class GraphError(Exception):
    """Graph answered an error (or could not be reached: ``status`` 0)."""

    status: int
    code: int
    title: str
    message: str
    details: str = ""

    def __str__(self) -> str:
        text = f"({self.code}) {self.title or self.message}"
        if self.details and self.details not in text:
            text += f": {self.details}"
        return text

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status >= 500 or self.status == 429 or self.code in TRANSIENT_CODES


def base_url() -> str:
    return f"{settings.CLOUD_API_BASE_URL}/{settings.CLOUD_API_VERSION}"


def client() -> httpx.Client:
    """This thread's kept-alive client (httpx clients are not shared across threads
    here: worker threads each keep their own pool). Rebuilt when the settings
    changed, which tests do."""
    key = (base_url(), settings.CLOUD_API_TIMEOUT_SECONDS)
    current: tuple[tuple[str, float], httpx.Client] | None = getattr(_local, "client", None)
    if current is not None and current[0] == key and not current[1].is_closed:
        return current[1]
    if current is not None:
        current[1].close()
    made = httpx.Client(
        base_url=key[0] + "/",
        timeout=httpx.Timeout(key[1], connect=min(10.0, key[1])),
        limits=httpx.Limits(max_keepalive_connections=20, keepalive_expiry=60),
        follow_redirects=False,
    )
    _local.client = (key, made)
    return made


def close() -> None:
    """Drop this thread's connections (a reboot)."""
    current = getattr(_local, "client", None)
    if current is not None:
        current[1].close()
        _local.client = None


def _error(response: httpx.Response) -> GraphError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GraphError(response.status_code, 0, f"HTTP {response.status_code}", response.text[:200])
    raw = error.get("error_data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return GraphError(
        response.status_code,
        int(error.get("code") or 0),
        str(error.get("error_user_title") or error.get("title") or ""),
        str(error.get("message") or ""),
        str(data.get("details") or error.get("error_user_msg") or ""),
    )


def call(method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
    """One Graph call (``path`` below ``{base}/{version}/``); its JSON answer, or
    ``GraphError``."""
    try:
        response = client().request(method, path.lstrip("/"), headers={"Authorization": f"Bearer {token}"}, **kwargs)
    except httpx.HTTPError as exc:
        raise GraphError(0, 0, "Graph API unreachable", f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 400:
        raise _error(response)
    try:
        body = response.json()
    except ValueError as exc:
        raise GraphError(response.status_code, 0, "not JSON", response.text[:200]) from exc
    return body if isinstance(body, dict) else {"data": body}


def download(url: str, token: str, *, limit: int) -> tuple[bytes, str]:
    """A media URL Graph handed out (it needs the same bearer token): its bytes and
    content type. Larger than ``limit`` → GraphError."""
    try:
        with client().stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise GraphError(413, 0, "media too large", f"larger than {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks), response.headers.get("content-type", "")
    except httpx.HTTPError as exc:
        raise GraphError(0, 0, "Graph API unreachable", f"{type(exc).__name__}: {exc}") from exc
