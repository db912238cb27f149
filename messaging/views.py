"""Serving stored files at their signed ``urlFile`` links (``/media/f/<signed>/<name>``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import IO

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from messaging import media
from messaging.models import MediaFile


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(media.CHUNK_SIZE):
            yield chunk
    finally:
        handle.close()


async def _achunks(handle: IO[bytes]) -> AsyncIterator[bytes]:
    # Django buffers a *sync* iterator whole before sending it over ASGI; an async
    # one is sent chunk by chunk, so a 100 MB file never sits in memory.
    read = sync_to_async(handle.read, thread_sensitive=False)
    try:
        while chunk := await read(media.CHUNK_SIZE):
            yield chunk
    finally:
        await sync_to_async(handle.close, thread_sensitive=False)()


def _headers(response: HttpResponseBase, media_file: MediaFile) -> HttpResponseBase:
    response["Content-Length"] = str(media_file.size)
    response["Content-Disposition"] = content_disposition_header(True, media_file.file_name) or "attachment"
    # User content on our origin: never let a browser render or sniff it.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, max-age=3600"
    response["ETag"] = f'"{media_file.sha256}"'
    return response


@require_safe
def media_file(request: HttpRequest, token: str, filename: str) -> HttpResponseBase:
    """Stream a stored file: 404 for a tampered or unknown link, 410 once expired."""
    try:
        found = media.file_for_link(token)
    except media.LinkInvalid:
        raise Http404("Not Found")
    except media.LinkExpired:
        return HttpResponse("Gone", status=410, content_type="text/plain; charset=utf-8")
    if request.method == "HEAD":
        return _headers(HttpResponse(content_type=found.mime_type), found)
    try:
        handle = media.open_file(found)
    except OSError:
        raise Http404("Not Found")
    content = _achunks(handle) if isinstance(request, ASGIRequest) else _chunks(handle)
    return _headers(StreamingHttpResponse(content, content_type=found.mime_type), found)
