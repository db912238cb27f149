"""Login throttling: failures counted per (username, client address) in Django's cache.

After ``LOGIN_MAX_FAILURES`` failures within ``LOGIN_LOCKOUT_SECONDS`` that pair is
refused, even with the right password, until the window ends. Keying on the pair
means an attacker cannot lock a user out from elsewhere by guessing from one address
without also being locked out there; a success clears the counter."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from instances import clients


def client_address(request: HttpRequest) -> str:
    return clients.client_address(request.META)  # TRUSTED_PROXIES honoured


def _key(username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}|{address}".encode()).hexdigest()[:32]
    return f"relay:login-failures:{digest}"


def is_locked(username: str, address: str) -> bool:
    return int(cache.get(_key(username, address), 0)) >= settings.LOGIN_MAX_FAILURES


def record_failure(username: str, address: str) -> int:
    """Count one failure; returns the count within the current window."""
    key = _key(username, address)
    # add() starts the window (and its expiry) only once; incr() keeps the TTL.
    if cache.add(key, 1, timeout=settings.LOGIN_LOCKOUT_SECONDS):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=settings.LOGIN_LOCKOUT_SECONDS)
        return 1


def clear(username: str, address: str) -> None:
    cache.delete(_key(username, address))


def lockout_minutes() -> int:
    return max(1, round(settings.LOGIN_LOCKOUT_SECONDS / 60))
