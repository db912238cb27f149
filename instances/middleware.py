"""Wire-path middleware: canonical method names, body size cap, CORS, metrics.

Runs first. For ``/waInstance{id}/{method}/…`` and ``/partner/{method}/…`` it rewrites
the method segment to its canonical spelling (GREEN-API routes case-insensitively:
``SendMessage``, ``sendmessage`` and ``sendMessage`` are one method), so the URL conf
can list each method once with its exact name.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from instances import metrics, registry
from instances.http import NotFound, PayloadTooLarge, is_outage, outage_response

WIRE_PATH = re.compile(r"^/(?P<prefix>waInstance\d+|partner)/(?P<method>[^/]+)(?P<rest>/.*)?$")
# Methods whose bodies are files, capped by the upload views (100 MB), not here.
UPLOAD_METHODS = {"sendFileByUpload", "uploadFile", "setProfilePicture", "setGroupPicture"}


class WireMiddleware:
    """Sync and async capable, so async views (long-poll) hold no thread under ASGI."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        name, early = self._before(request)
        if name is False:
            return self.get_response(request)
        started = time.perf_counter()
        response = early if early is not None else self.get_response(request)
        return self._after(request, name, response, started)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        name, early = self._before(request)
        if name is False:
            return await self.get_response(request)
        started = time.perf_counter()
        response = early if early is not None else await self.get_response(request)
        return self._after(request, name, response, started)

    def _before(self, request: HttpRequest) -> tuple[str | None | bool, HttpResponse | None]:
        """(canonical name | None for unknown | False for non-wire paths, early response)."""
        match = WIRE_PATH.match(request.path_info)
        if match is None:
            return False, None
        name = registry.canonical(match["method"])
        if name is None:
            return None, NotFound().response(request)
        if match["method"] != name:
            request.path_info = f"/{match['prefix']}/{name}{match['rest'] or ''}"
        return name, self._check_size(request, name)

    def _after(self, request: HttpRequest, name: str | None | bool, response: HttpResponse, started: float) -> HttpResponse:
        if request.method == "OPTIONS" or name is not None:
            _cors(response)
        metrics.observe_request(str(name or "unknown"), response.status_code, time.perf_counter() - started)
        return response

    def _check_size(self, request: HttpRequest, name: str) -> HttpResponse | None:
        if name in UPLOAD_METHODS:
            return None
        if not request.META.get("CONTENT_LENGTH") and "HTTP_TRANSFER_ENCODING" in request.META:
            # A chunked body has no Content-Length: DRF would treat it as empty and
            # the cap below would never see it. The ASGI handler has already
            # buffered it, so measure it (Django stops past its upload cap).
            try:
                request.META["CONTENT_LENGTH"] = str(len(request.body))
            except RequestDataTooBig:
                return PayloadTooLarge().response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_JSON_BODY_BYTES:
            return PayloadTooLarge().response(request)
        return None


def _cors(response: HttpResponse) -> None:
    # Credentials are in the path, not cookies, so any origin may call the API.
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type, GA-Filename, Idempotency-Key"


class OutageMiddleware:
    """A view that fails because the database is out of reach (down, restarting)
    answers GREEN-API's JSON 503 with Retry-After instead of an HTML 500, on every
    route. DRF views get the same from ``instances.http.exception_handler``; this
    covers plain Django views. (``handler500`` cannot: under ASGI Django renders it
    in another thread, where the exception is no longer at hand.)"""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return outage_response(request, exception) if is_outage(exception) else None


class ContentSecurityPolicyMiddleware:
    """Adds ``CONTENT_SECURITY_POLICY`` to HTML responses (the cabinet, the admin, the
    API docs), enforced or, with ``CONTENT_SECURITY_POLICY_REPORT_ONLY``, report-only.
    Django 5.2 has no CSP of its own; JSON and file answers need none."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return self._add(self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return self._add(await self.get_response(request))

    def _add(self, response: HttpResponse) -> HttpResponse:
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and str(response.get("Content-Type", "")).startswith("text/html"):
            header = (
                "Content-Security-Policy-Report-Only"
                if settings.CONTENT_SECURITY_POLICY_REPORT_ONLY
                else "Content-Security-Policy"
            )
            response.headers.setdefault(header, policy)
        return response
