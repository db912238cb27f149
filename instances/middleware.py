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

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from instances import metrics, registry
from instances.http import NotFound, PayloadTooLarge

WIRE_PATH = re.compile(r"^/(?P<prefix>waInstance\d+|partner)/(?P<method>[^/]+)(?P<rest>/.*)?$")
# Methods whose bodies are files, capped by the upload views (100 MB), not here.
UPLOAD_METHODS = {"sendFileByUpload", "uploadFile", "setProfilePicture", "setGroupPicture"}


class WireMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = WIRE_PATH.match(request.path_info)
        if match is None:
            return self.get_response(request)
        name = registry.canonical(match["method"])
        started = time.perf_counter()
        if name is None:
            response = NotFound().response(request)
        else:
            if match["method"] != name:
                request.path_info = f"/{match['prefix']}/{name}{match['rest'] or ''}"
            response = self._handle(request, name)
        if request.method == "OPTIONS" or name is not None:
            _cors(response)
        metrics.observe_request(name or "unknown", response.status_code, time.perf_counter() - started)
        return response

    def _handle(self, request: HttpRequest, name: str) -> HttpResponse:
        if name not in UPLOAD_METHODS:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.MAX_JSON_BODY_BYTES:
                return PayloadTooLarge().response(request)
        return self.get_response(request)


def _cors(response: HttpResponse) -> None:
    # Credentials are in the path, not cookies, so any origin may call the API.
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type, GA-Filename, Idempotency-Key"
