"""Who is asking: the client address every throttle keys on.

Behind a reverse proxy every request arrives from the proxy's address, so keying on
``REMOTE_ADDR`` would turn one attacker's failures into a lockout for everyone. With
``TRUSTED_PROXIES`` set (the proxies' addresses or networks), a request from one of
them is attributed to the right-most ``X-Forwarded-For`` entry that is not itself a
trusted proxy: the address the outermost trusted proxy saw. Entries left of that
are written by the client and never trusted. Without ``TRUSTED_PROXIES`` the header
is ignored (anyone could send it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _trusted(networks: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _is_trusted(address: str) -> bool:
    networks = _trusted(tuple(settings.TRUSTED_PROXIES))
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(meta: Mapping[str, Any]) -> str:
    """The client's address from a request's META (or an equivalent mapping)."""
    remote = str(meta.get("REMOTE_ADDR") or "unknown")
    if not settings.TRUSTED_PROXIES or not _is_trusted(remote):
        return remote
    forwarded = [part.strip() for part in str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if part.strip()]
    for address in reversed(forwarded):
        if not _is_trusted(address):
            return address
    return forwarded[0] if forwarded else remote


def scope_meta(scope: Mapping[str, Any]) -> dict[str, str]:
    """The two META entries ``client_address`` reads, from an ASGI scope."""
    meta = {"REMOTE_ADDR": str((scope.get("client") or ("unknown",))[0])}
    for key, value in scope.get("headers", ()):
        if key.lower() == b"x-forwarded-for":
            meta["HTTP_X_FORWARDED_FOR"] = value.decode("latin-1")
    return meta
