"""Branded error pages for people (404, 403, 500) with a way back; the wire API
keeps its plain GREEN-API-style answers (``instances.ops.not_found``)."""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse
from django.template import loader

from instances import ops
from instances.http import is_outage, outage_response

# Paths people open in a browser; everything else is API, media or ops.
PAGE_PREFIXES = ("/dashboard/", "/admin/")


def _is_page(request: HttpRequest) -> bool:
    return request.path == "/" or request.path.startswith(PAGE_PREFIXES)


def _render(request: HttpRequest | None, status: int, title: str, text: str) -> HttpResponse:
    context = {"status": status, "title": title, "text": text}
    body = loader.render_to_string(f"errors/{status}.html", context, request=request)
    return HttpResponse(body, status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_page(request):
        return ops.not_found(request, exception)
    return _render(
        request, 404, "Page not found",
        "There is nothing here, or it belongs to another account. Check the address, or go back to your instances.",
    )


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    detail = str(exception or "").strip() if exception is not None else ""
    text = detail if detail and not detail.startswith("<") else "You are not allowed to open this page."
    return _render(request, 403, "Not allowed", text)


def server_error(request: HttpRequest) -> HttpResponse:
    """A database outage stays the JSON 503 of ``instances.ops.server_error``;
    anything else is a branded page. No request context: rendering must not touch
    the database or the session, which may be what failed."""
    exc = sys.exc_info()[1]
    if exc is not None and is_outage(exc):
        return outage_response(request, exc)
    if not _is_page(request):
        return ops.server_error(request)
    body = loader.render_to_string("errors/500.html", {"status": 500})
    return HttpResponse(body, status=500)
