"""“Send test webhook”: one small POST to the receiver, through the same SSRF guard
as real deliveries, reporting status code and latency."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.utils import timezone

from instances import ssrf
from instances.models import Instance
from journals import webhook_client

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class WebhookCheck:
    url: str
    ok: bool
    status_code: int | None
    latency_ms: int
    error: str = ""
    excerpt: str = ""


def sample_body(instance: Instance) -> dict[str, object]:
    return {
        "typeWebhook": "relayTestWebhook",
        "instanceData": {"idInstance": instance.id, "wid": instance.wid, "typeInstance": "whatsapp"},
        "timestamp": int(timezone.now().timestamp()),
        "message": "This is a test from the Relay cabinet. Answer with any 2xx status.",
    }


def policy() -> ssrf.Policy:
    return ssrf.Policy.build(
        allow_private=settings.WEBHOOK_ALLOW_PRIVATE, allowed_networks=settings.WEBHOOK_ALLOWED_NETWORKS
    )


def send_test_webhook(instance: Instance, url: str) -> WebhookCheck:
    """POST a test notification to ``url``; never raises."""
    body = json.dumps(sample_body(instance)).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Relay-Webhook-Test/1.0"}
    token = str(instance.setting("webhookUrlToken") or "")
    if token:
        scheme = str(settings.WEBHOOK_AUTH_SCHEME).lower()
        headers["Authorization"] = token if scheme == "raw" else f"Bearer {token}"
    started = time.perf_counter()
    try:
        with ssrf.open_url("POST", url, policy=policy(), timeout=TIMEOUT_SECONDS, headers=headers, content=body) as response:
            raw = b""
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) > 500:
                    break
            latency = int((time.perf_counter() - started) * 1000)
            return WebhookCheck(
                url=url,
                ok=200 <= response.status_code < 300,
                status_code=response.status_code,
                latency_ms=latency,
                excerpt=raw[:500].decode("utf-8", errors="replace"),
            )
    except ssrf.Refused as exc:
        return WebhookCheck(url=url, ok=False, status_code=None, latency_ms=0, error=f"Refused: {exc}.")
    except httpx.TimeoutException:
        latency = int((time.perf_counter() - started) * 1000)
        return WebhookCheck(
            url=url, ok=False, status_code=None, latency_ms=latency,
            error=f"The receiver did not answer within {TIMEOUT_SECONDS:.0f} seconds.",
        )
    except httpx.HTTPError as exc:
        latency = int((time.perf_counter() - started) * 1000)
        return WebhookCheck(
            url=url, ok=False, status_code=None, latency_ms=latency, error=f"Could not connect: {exc or type(exc).__name__}."
        )


# --- Will deliveries ever arrive? ---------------------------------------------------------


def reachability_problem(url: str) -> str | None:
    """Why Relay will refuse to deliver to ``url`` (a sentence for the customer that
    names the operator setting which would allow it), or None when it may.

    The same guard as deliveries (``instances.ssrf``): saving such a URL is allowed
    (the operator may open the network later), but the customer is told at once
    instead of finding every delivery failed in the log."""
    url = url.strip()
    if not url:
        return None
    try:
        endpoint = webhook_client.parse(url)
    except ssrf.Refused as exc:
        return f"Relay will not deliver to this URL: {exc}."
    except webhook_client.InvalidURL as exc:
        return f"This URL cannot be posted to: {exc}."
    try:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return (
            f"The host {endpoint.host} does not resolve from this server yet, so deliveries will fail "
            "until it does. Check the spelling."
        )
    rules = policy()
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        problem = ssrf.address_problem(ip, rules)
        if problem is None:
            continue
        literal = endpoint.host == str(ip)
        # A name's resolved address is never shown: the customer must not learn
        # what internal names resolve to (instances.ssrf says only the category).
        network = f"WEBHOOK_ALLOWED_NETWORKS={ip}/{ip.max_prefixlen}" if literal else "WEBHOOK_ALLOWED_NETWORKS (its network)"
        hint = network
        if "link-local" not in problem:
            hint += " (or WEBHOOK_ALLOW_PRIVATE=true for every private address)"
        what = f"{ip} is {problem}" if literal else f"{endpoint.host} resolves to {problem}"
        return (
            f"Relay will refuse to deliver to this URL: {what}. Webhooks only go to public "
            f"addresses unless the server's operator allows this one with {hint}."
        )
    return None
