"""Failed instance and partner authentications, throttled per client.

A client whose requests failed authentication (401 or 403) more than
``AUTH_FAILURE_LIMIT`` times within ``AUTH_FAILURE_WINDOW_SECONDS`` gets 429 instead
of further 401/403 answers until the window ends: it can no longer tell unknown
instance ids (403) from wrong tokens (401), nor load the database with guesses.

Only failures are counted, when they happen: a request that authenticates never
touches the counter, so the sendMessage fast lane's success path costs nothing
extra. Tokens carry 200 bits, so a client over its limit that presents a valid
token is served; what the throttle stops is enumeration and guessing load.
Counters live in Django's cache (Redis when configured: shared by every process).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache import cache

from instances.clients import client_address


def _key(meta: Mapping[str, Any]) -> str:
    window = settings.AUTH_FAILURE_WINDOW_SECONDS
    return f"relay:authfail:{client_address(meta)}:{int(time.time() // window)}"


def reset(meta: Mapping[str, Any]) -> None:
    """Forget the client's failures in the current window (operators, tests)."""
    cache.delete(_key(meta))


def over_limit(meta: Mapping[str, Any]) -> bool:
    """Count one failed authentication of the client in ``meta``; True when it is
    over the limit (answer 429)."""
    limit = settings.AUTH_FAILURE_LIMIT
    if limit <= 0:
        return False
    window = settings.AUTH_FAILURE_WINDOW_SECONDS
    key = _key(meta)
    try:
        if cache.add(key, 1, timeout=int(window) + 1):
            return limit < 1
        return int(cache.incr(key)) > limit
    except ValueError:  # expired between add and incr
        return False
    except Exception:  # noqa: BLE001 - a cache outage must not turn 401s into 500s
        return False
