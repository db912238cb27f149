"""Outbound HTTP to URLs our users give us (sendFileByUrl, webhooks) without SSRF.

A URL is fetched only after its host has been resolved *once* and every address it
resolves to has been vetted; the connection then goes to that vetted IP (the Host
header and TLS SNI/certificate check keep the original name), so a DNS answer that
changes between the check and the connect (rebinding) cannot redirect us. Redirects
are followed by hand and every hop is vetted again. Proxies from the environment are
ignored: a proxy would resolve the name itself.

Refused by default: loopback, private (RFC 1918, fc00::/7), link-local (incl. the
169.254.169.254 cloud metadata service), unspecified, multicast, reserved, CGNAT
(100.64/10) and any other non-global address, including IPv4 addresses embedded in
IPv4-mapped or NAT64 IPv6 addresses. ``Policy.allow_private`` opens all of them except
link-local; ``Policy.allowed_networks`` opens exactly the networks listed.
"""

from __future__ import annotations

import concurrent.futures
import functools
import ipaddress
import socket
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
SCHEMES = ("http", "https")


class Refused(Exception):
    """The URL may not be fetched: unsupported scheme, refused or unresolvable address,
    or too many redirects. The message says which category, for the user, and never
    what a name resolved to: echoing addresses would make the guard an oracle for
    the internal network."""


@dataclass(frozen=True)
class Policy:
    """Which addresses outbound requests may reach."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    # getaddrinfo has no timeout of its own: a slow resolver would hold a worker
    # thread for as long as the system resolver retries (30 s and more).
    dns_timeout: float = 5.0

    @classmethod
    def build(cls, *, allow_private: bool, allowed_networks: Iterable[str], dns_timeout: float | None = None) -> Policy:
        """A policy from settings values; a malformed CIDR raises ``ValueError``.
        ``dns_timeout`` defaults to the ``SSRF_DNS_TIMEOUT_SECONDS`` setting."""
        networks = tuple(ipaddress.ip_network(n.strip(), strict=False) for n in allowed_networks if n.strip())
        if dns_timeout is None:
            dns_timeout = float(settings.SSRF_DNS_TIMEOUT_SECONDS)
        return cls(allow_private=allow_private, allowed_networks=networks, dns_timeout=dns_timeout)


def _effective(ip: IPAddress) -> IPAddress:
    """The IPv4 address a v6 address really reaches (mapped or NAT64), else itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _kind(ip: IPAddress) -> str | None:
    """The reason an address is not public, or None for a global unicast address."""
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT:
        return "shared (CGNAT)"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-global"
    return None


def address_problem(ip: IPAddress, policy: Policy) -> str | None:
    """Why ``ip`` may not be contacted under ``policy``, as its category only (e.g.
    ``"a loopback address"``), or None when it may."""
    if any(ip in net for net in policy.allowed_networks):
        return None
    real = _effective(ip)
    if real != ip and any(real in net for net in policy.allowed_networks):
        return None
    kind = _kind(real)
    if kind is None:
        return None
    # Opening private ranges must not open the cloud metadata service by accident;
    # list its network in allowed_networks to reach link-local addresses.
    if policy.allow_private and kind != "link-local":
        return None
    return f"a {kind} address"


def resolve(host: str, port: int, policy: Policy) -> IPAddress:
    """Resolve ``host`` once and vet every address it has; return the one to connect to.

    Raises ``Refused`` when the name does not resolve or any address is refused (a
    name with one public and one private address is refused as a whole)."""
    lookup = _resolver().submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = lookup.result(timeout=policy.dns_timeout)
    except concurrent.futures.TimeoutError as exc:
        lookup.cancel()  # if still queued; a running lookup ends on its own
        raise Refused("the host name did not resolve in time") from exc
    except (OSError, UnicodeError) as exc:
        raise Refused("the host name does not resolve") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise Refused("the host name does not resolve")
    for ip in addresses:
        problem = address_problem(ip, policy)
        if problem is not None:
            raise Refused(problem)
    return addresses[0]


@functools.cache
def _resolver() -> concurrent.futures.ThreadPoolExecutor:
    """Lookups run here so they can be given up on; a few threads bound how many
    slow lookups may pile up (further ones wait, then time out)."""
    return concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="relay-dns")


def _pinned_request(
    client: httpx.Client,
    method: str,
    url: httpx.URL,
    policy: Policy,
    headers: Mapping[str, str],
    content: bytes | None,
) -> httpx.Request:
    if url.scheme not in SCHEMES:
        raise Refused(f"only http and https URLs can be fetched, not {url.scheme or 'a relative URL'}")
    host = url.raw_host.decode("ascii")
    if not host:
        raise Refused("the URL has no host")
    port = url.port or (443 if url.scheme == "https" else 80)
    ip = resolve(host, port, policy)
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    return client.build_request(
        method,
        url.copy_with(host=str(ip)),
        headers={**headers, "Host": url.netloc.decode("ascii")},
        content=content,
        extensions=extensions,
    )


@contextmanager
def open_url(
    method: str,
    url: str,
    *,
    policy: Policy,
    timeout: float,
    max_redirects: int = 5,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> Iterator[httpx.Response]:
    """Send one request to a user-supplied URL and yield the final response, unread
    (iterate ``response.iter_bytes()`` to stream it).

    Redirects (at most ``max_redirects``) are followed with every hop re-vetted; a
    301/302/303 turns the request into a body-less GET, as browsers do. Raises
    ``Refused`` for addresses the policy refuses and ``httpx.HTTPError`` for network
    failures and timeouts (``timeout`` applies to connect and to each read)."""
    try:
        current = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise Refused(f"invalid URL: {exc}") from exc
    request_headers = dict(headers or {})
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout) as client:
        for hop in range(max_redirects + 1):
            request = _pinned_request(client, method, current, policy, request_headers, content)
            response = client.send(request, stream=True)
            location = response.headers.get("location") if response.is_redirect else None
            if location is None:
                try:
                    yield response
                finally:
                    response.close()
                return
            response.close()
            if hop == max_redirects:
                raise Refused(f"too many redirects (more than {max_redirects})")
            try:
                current = current.join(location)
            except httpx.InvalidURL as exc:
                raise Refused(f"invalid redirect location: {exc}") from exc
            if response.status_code in (301, 302, 303) and method != "HEAD":
                method, content = "GET", None
                request_headers.pop("Content-Type", None)
