"""Operational endpoints: /healthz (database and broker reachable) and /metrics."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import sys
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from instances import metrics
from instances.clients import client_address
from instances.http import is_outage, outage_response

log = logging.getLogger(__name__)


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    if settings.REDIS_URL:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()
        return "ok"

    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    if not folder.is_dir():
        raise OSError(f"broker folder {folder} is missing")
    return "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, dict[str, object]] = {}
    healthy = True
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        started = time.perf_counter()
        try:
            status = check()
        except Exception as exc:  # noqa: BLE001 - report any failure as unhealthy
            # What is down, not the driver's words (they can name hosts, users,
            # paths): those go to the log.
            log.warning("healthz: %s check failed: %s: %s", name, exc.__class__.__name__, exc)
            status, healthy = "error: unreachable", False
        checks[name] = {"status": status, "ms": round((time.perf_counter() - started) * 1000, 2)}
    response = JsonResponse({"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503)
    if not healthy:
        response["Retry-After"] = "5"
    return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics. Open unless ``METRICS_TOKEN`` or ``METRICS_ALLOWED_NETWORKS``
    is set; then a scrape must carry ``Authorization: Bearer <token>`` or come from
    an allowed network (either suffices). Refusals are a plain 404: the endpoint's
    existence is not advertised to strangers."""
    if not metrics_allowed(request):
        return not_found(request)
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")


def metrics_allowed(request: HttpRequest) -> bool:
    token: str = settings.METRICS_TOKEN
    networks: list[str] = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return True
    header = str(request.META.get("HTTP_AUTHORIZATION", ""))
    if token and header.lower().startswith("bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    if networks:
        try:
            # Behind a reverse proxy, the client it forwarded (TRUSTED_PROXIES), so
            # allowing a scraper's network does not allow everyone the proxy serves.
            address = ipaddress.ip_address(client_address(request.META))
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(n, strict=False) for n in networks)
    return False


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return HttpResponse("Not Found", status=404, content_type="text/plain; charset=utf-8")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an exception no view handled. A database outage (down, restarting)
    is a JSON 503 with Retry-After on every route, not an HTML 500 page; anything
    else is Django's own 500."""
    exc = sys.exc_info()[1]
    if exc is not None and is_outage(exc):
        return outage_response(request, exc)
    return defaults.server_error(request)
