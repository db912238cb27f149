"""Media for the send path: files sent by upload or URL.

Files are streamed in chunks into a temporary file (counted, hashed, capped at
``MEDIA_MAX_BYTES``), then moved into the ``files`` storage and recorded as a
``MediaFile``; nothing reaches the storage unless the whole file was accepted. Their
type comes from their content (``filetype``), with the declared type or file name as
fallback. Links (``urlFile``) are signed per file and expire after
``MEDIA_LINK_TTL_DAYS``.

``prepare_payload`` runs in the worker right before a message goes to the transport;
for file messages it makes sure the file is in our storage (fetching ``urlFile`` with
SSRF protection) and returns the payload the transport sends.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any, Protocol, cast
from urllib.parse import quote, urlsplit

import filetype
import httpx
from django.conf import settings
from django.core import signing
from django.core.files.storage import Storage, storages
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.utils import timezone

from engines.media import MediaUnavailable, StoredMedia
from instances import ssrf
from instances.http import too_large_message
from messaging.audio import VOICE_LIMIT_SECONDS, cut_audio
from messaging.models import MediaFile, OutgoingMessage, new_media_key

STORAGE_ALIAS = "files"
LINK_PATH = "/media/f/"
LINK_SALT = "relay.messaging.media-link"
CHUNK_SIZE = 64 * 1024
DETECT_BYTES = 8192  # filetype never looks further than this
OCTET_STREAM = "application/octet-stream"
MIB = 1024 * 1024
MIME_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
# Image types WhatsApp shows as pictures; other images (svg, tiff…) go as documents.
# Status methods whose file is checked (and a voice cut) once fetched: check_status_file.
STATUS_FILE_METHODS = ("sendMediaStatus", "sendVoiceStatus")
PICTURE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/gif"}


class MediaError(Exception):
    """The file cannot be sent (too big, unreachable, refused address…); the message
    fails with this description."""


class FileTooLarge(Exception):
    """A file crossed ``MEDIA_MAX_BYTES`` while arriving; the request gets a 413 with
    this message and nothing is stored."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(too_large_message(size, limit))
        self.size = size
        self.limit = limit


class LinkExpired(Exception):
    """A genuine link whose file is past its lifetime."""


class LinkInvalid(Exception):
    """Not one of our links: bad signature, unknown or deleted file."""


def files_storage() -> Storage:
    return storages[STORAGE_ALIAS]


# --- Type detection ------------------------------------------------------------------


def mime_from_header(value: str | None) -> str | None:
    """A Content-Type header's bare type, if it names one."""
    mime = (value or "").split(";", 1)[0].strip().lower()
    return mime if MIME_RE.match(mime) else None


def mime_from_name(name: str | None) -> str | None:
    return mimetypes.guess_type(name or "", strict=False)[0] if name else None


def detect_type(head: bytes, fallbacks: Sequence[str | None] = ()) -> tuple[str, str]:
    """(MIME type, extension) of a file from its first bytes; when the content says
    nothing, the first useful fallback MIME; unknown is ``application/octet-stream``
    stored as ``.bin``."""
    kind = filetype.guess(head) if head else None
    if kind is not None:
        return str(kind.mime), f".{kind.extension}"
    for mime in fallbacks:
        if mime and mime != OCTET_STREAM:
            return mime, mimetypes.guess_extension(mime, strict=False) or ".bin"
    return OCTET_STREAM, ".bin"


def type_message_for(mime: str) -> str:
    """The typeMessage a file of this type is sent as."""
    if mime in PICTURE_TYPES:
        return "imageMessage"
    if mime.startswith("video/"):
        return "videoMessage"
    if mime.startswith("audio/"):
        return "audioMessage"
    return "documentMessage"


def clean_file_name(name: str, fallback: str) -> str:
    """A display/download file name: no directories, no control characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().strip(".")
    return base[:255] or fallback


# --- Receiving files -------------------------------------------------------------------


@dataclass
class Received:
    """A complete file in a temporary file, measured and hashed, not yet stored."""

    file: UploadedFile[bytes]
    size: int
    sha256: str
    head: bytes


def spool(chunks: Iterable[bytes], *, limit: int, too_large: Callable[[int], Exception]) -> Received:
    """Write ``chunks`` to a temporary file, counting, hashing and keeping the first
    bytes for type detection. Past ``limit`` bytes the temporary file is deleted and
    ``too_large(bytes_seen)`` is raised. The caller closes ``Received.file``."""
    tmp = TemporaryUploadedFile("upload", OCTET_STREAM, 0, None)
    digest = hashlib.sha256()
    head = b""
    size = 0
    try:
        for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > limit:
                raise too_large(size)
            if len(head) < DETECT_BYTES:
                head += chunk[: DETECT_BYTES - len(head)]
            digest.update(chunk)
            tmp.write(chunk)
        tmp.flush()
        tmp.seek(0)
    except BaseException:
        tmp.close()
        raise
    tmp.size = size
    return Received(tmp, size, digest.hexdigest(), head)


def received_upload(uploaded: UploadedFile[bytes]) -> Received:
    """Measure and hash a file Django's upload handlers already wrote to disk."""
    digest = hashlib.sha256()
    head = b""
    size = 0
    for chunk in uploaded.chunks(CHUNK_SIZE):
        size += len(chunk)
        if len(head) < DETECT_BYTES:
            head += chunk[: DETECT_BYTES - len(head)]
        digest.update(chunk)
    uploaded.seek(0)
    return Received(uploaded, size, digest.hexdigest(), head)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def read_stream(stream: Readable) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


class CappedUploadHandler(TemporaryFileUploadHandler):
    """Multipart upload handler for sendFileByUpload: every file part goes to a
    temporary file in chunks, and once the parts together pass ``limit`` bytes the
    upload stops with ``FileTooLarge`` (the partial file is deleted)."""

    def __init__(self, request: Any = None, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.total = 0

    def handle_raw_input(
        self, input_data: Any, META: dict[str, Any], content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        # The form fields add at most DATA_UPLOAD_MAX_MEMORY_SIZE (plus part headers)
        # to the file, so a declared length past that is refused before parsing.
        slack = (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0) + 64 * 1024
        if content_length > self.limit + slack:
            raise FileTooLarge(content_length, self.limit)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.total += len(raw_data)
        if self.total > self.limit:
            self.file.close()  # deletes the partial temporary file
            raise FileTooLarge(self.total, self.limit)
        return super().receive_data_chunk(raw_data, start)


# --- Storing and links -----------------------------------------------------------------


def store(
    *,
    instance_id: int,
    received: Received,
    file_name: str,
    fallbacks: Sequence[str | None] = (),
    source_url: str = "",
) -> MediaFile:
    """Move a received file into the ``files`` storage and record it. The row and the
    stored file exist together or not at all."""
    mime, extension = detect_type(received.head, fallbacks)
    key = new_media_key()
    storage = files_storage()
    name = storage.save(f"{instance_id}/{key}{extension}", received.file)
    now = timezone.now()
    try:
        return MediaFile.objects.create(
            instance_id=instance_id,
            key=key,
            storage_name=name,
            file_name=clean_file_name(file_name, f"{key}{extension}"),
            mime_type=mime,
            size=received.size,
            sha256=received.sha256,
            source_url=source_url,
            created_at=now,
            expires_at=now + timedelta(days=settings.MEDIA_LINK_TTL_DAYS),
        )
    except BaseException:
        storage.delete(name)
        raise


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=LINK_SALT)


def signed_url(media_file: MediaFile) -> str:
    """The public ``urlFile`` of a stored file: ``{RELAY_MEDIA_URL}/media/f/<signed
    key>/<file name>``. Only the signed part matters; the name is for people."""
    base = str(settings.RELAY_MEDIA_URL).rstrip("/")
    token = _signer().sign(media_file.key)
    return f"{base}{LINK_PATH}{token}/{quote(media_file.file_name, safe='')}"


def file_for_link(token: str) -> MediaFile:
    """The file a link's signed part names. Raises ``LinkInvalid`` (tampered, unknown,
    deleted) or ``LinkExpired``."""
    max_age = timedelta(days=settings.MEDIA_LINK_TTL_DAYS)
    try:
        key = _signer().unsign(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise LinkExpired() from exc
    except signing.BadSignature as exc:
        raise LinkInvalid() from exc
    media_file = MediaFile.objects.filter(key=key).first()
    if media_file is None:
        raise LinkInvalid()
    if media_file.expires_at <= timezone.now():
        raise LinkExpired()
    return media_file


def _own_link_token(url: str) -> str | None:
    path = urlsplit(url).path
    if not path.startswith(LINK_PATH):
        return None
    return path[len(LINK_PATH) :].split("/", 1)[0] or None


def open_file(media_file: MediaFile) -> IO[bytes]:
    """The stored bytes, for streaming. Raises ``FileNotFoundError`` when gone."""
    return cast(IO[bytes], files_storage().open(media_file.storage_name, "rb"))


def delete_expired_files(*, batch: int = 1000) -> int:
    """Housekeeping: delete files past their link lifetime (rows and stored bytes)."""
    storage = files_storage()
    expired = list(MediaFile.objects.filter(expires_at__lte=timezone.now()).order_by("id")[:batch])
    for media_file in expired:
        storage.delete(media_file.storage_name)
    MediaFile.objects.filter(pk__in=[m.pk for m in expired]).delete()
    return len(expired)


# --- Fetching URLs (worker side) -------------------------------------------------------


def fetch_policy() -> ssrf.Policy:
    return ssrf.Policy.build(
        allow_private=settings.MEDIA_FETCH_ALLOW_PRIVATE,
        allowed_networks=settings.MEDIA_FETCH_ALLOWED_NETWORKS,
    )


def _before(deadline: float, chunks: Iterable[bytes], url: str) -> Iterator[bytes]:
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise MediaError(f"File from url download timed out. Url: {url}")
        yield chunk


def fetch(*, instance_id: int, url: str, file_name: str) -> MediaFile:
    """Download ``url`` into our storage, refusing addresses the SSRF policy refuses,
    with a ``MEDIA_MAX_BYTES`` cap and a ``MEDIA_FETCH_TIMEOUT_SECONDS`` budget.
    Raises ``MediaError`` with a description for the message."""
    limit = settings.MEDIA_MAX_BYTES
    timeout = float(settings.MEDIA_FETCH_TIMEOUT_SECONDS)
    deadline = time.monotonic() + timeout

    def too_large(size: int) -> MediaError:
        return MediaError(too_large_message(size, limit, url))

    try:
        with ssrf.open_url(
            "GET",
            url,
            policy=fetch_policy(),
            timeout=timeout,
            max_redirects=settings.MEDIA_FETCH_MAX_REDIRECTS,
            headers={"Accept-Encoding": "identity", "User-Agent": "Relay/1.0 (file fetch)"},
        ) as response:
            if response.status_code != 200:
                raise MediaError(f"File from url could not be downloaded: HTTP {response.status_code}. Url: {url}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise too_large(int(declared))
            received = spool(
                _before(deadline, response.iter_bytes(CHUNK_SIZE), url), limit=limit, too_large=too_large
            )
            content_type = response.headers.get("content-type")
    except ssrf.Refused as exc:
        raise MediaError(f"File from url was refused: {exc}. Url: {url}") from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise MediaError(f"File from url could not be downloaded: {reason}. Url: {url}") from exc
    try:
        return store(
            instance_id=instance_id,
            received=received,
            file_name=file_name,
            fallbacks=[mime_from_name(file_name), mime_from_header(content_type)],
            source_url=url,
        )
    finally:
        received.file.close()


def file_for_url(*, instance_id: int, url: str, file_name: str) -> MediaFile:
    """The stored file behind ``urlFile``: one of our own signed links is read straight
    from storage (no HTTP); anything else is fetched."""
    token = _own_link_token(url)
    if token is not None:
        try:
            return file_for_link(token)
        except LinkExpired as exc:
            raise MediaError(f"The file link has expired. Url: {url}") from exc
        except LinkInvalid:
            pass  # someone else's /media/f/ URL: fetch it like any other
    return fetch(instance_id=instance_id, url=url, file_name=file_name)


def file_payload(media_file: MediaFile, **fields: Any) -> dict[str, Any]:
    """What an engine needs to send a stored file, plus the message's own fields."""
    payload = {
        "storageName": media_file.storage_name,
        "urlFile": signed_url(media_file),
        "fileName": media_file.file_name,
        "mimeType": media_file.mime_type,
        "size": media_file.size,
        "sha256": media_file.sha256,
    }
    payload.update({k: v for k, v in fields.items() if v is not None})
    return payload


def check_status_file(method: str, media_file: MediaFile) -> MediaFile:
    """What a status file must be, checked by the worker once the file is fetched
    (``prepare_payload``): a media status is a picture or a video, a voice status
    audio. The file a status posts (``media_file``, or a cut copy of it). Raises
    ``MediaError`` (the status fails with that description) for a file that
    cannot be such a status."""
    kind = type_message_for(media_file.mime_type)
    if method == "sendMediaStatus" and kind not in ("imageMessage", "videoMessage"):
        raise MediaError(f"A media status must be a picture or a video, not {media_file.mime_type}")
    if method != "sendVoiceStatus":
        return media_file
    if kind != "audioMessage":
        raise MediaError(f"A voice status must be an audio file, not {media_file.mime_type}")
    with open_file(media_file) as stored:
        content = stored.read()
    cut = cut_audio(content, VOICE_LIMIT_SECONDS)
    if cut is None:
        return media_file
    received = spool([cut], limit=len(cut) + 1, too_large=lambda n: MediaError("cut file too large"))
    try:
        return store(
            instance_id=media_file.instance_id,
            received=received,
            file_name=media_file.file_name,
            fallbacks=[media_file.mime_type],
            source_url=media_file.source_url,
        )
    finally:
        received.file.close()


def prepare_payload(message: OutgoingMessage) -> dict[str, Any]:
    """The transport payload for ``message``; non-file messages pass through.

    A sendFileByUrl message carries only its ``urlFile`` until here: the file is put
    in storage, the message's payload and typeMessage (from the file's real type) are
    saved, so a retry after a crash does not download it again."""
    payload = dict(message.payload)
    if not message.is_file or payload.get("storageName") or not payload.get("urlFile"):
        return payload  # not a file, already stored, or a forward of a file we only link to
    url = str(payload.get("urlFile") or "")
    file_name = str(payload.get("fileName") or "")
    media_file = file_for_url(instance_id=message.instance_id, url=url, file_name=file_name)
    if message.method in STATUS_FILE_METHODS:
        media_file = check_status_file(message.method, media_file)
    payload = file_payload(media_file, **{**payload, "fileName": file_name or media_file.file_name, "urlFile": None})
    payload["sourceUrl"] = url
    type_message = type_message_for(media_file.mime_type)
    OutgoingMessage.objects.filter(pk=message.pk).update(payload=payload, type_message=type_message)
    message.payload = payload
    message.type_message = type_message
    return payload


class EngineMediaStore:
    """``engines.media.MediaStore`` over this module: what engines receive is stored
    like an upload (same limit, type detection, signed links, expiry)."""

    def store(
        self, *, instance_id: int, content: bytes, file_name: str, mime_hints: tuple[str | None, ...] = ()
    ) -> StoredMedia:
        limit = int(settings.MEDIA_MAX_BYTES)
        received = spool([content], limit=limit, too_large=lambda n: MediaUnavailable(too_large_message(n, limit)))
        try:
            stored = store(
                instance_id=instance_id,
                received=received,
                file_name=file_name,
                fallbacks=[*mime_hints, mime_from_name(file_name)],
            )
        finally:
            received.file.close()
        return StoredMedia(signed_url(stored), stored.file_name, stored.mime_type, stored.size)

    def read(self, url: str) -> tuple[StoredMedia, bytes]:
        token = _own_link_token(url)
        if token is None:
            raise MediaUnavailable(f"{url} is not a file stored on this server")
        try:
            media_file = file_for_link(token)
            with open_file(media_file) as handle:
                content = handle.read()
        except (LinkInvalid, FileNotFoundError) as exc:
            raise MediaUnavailable("the file is unknown or was deleted") from exc
        except LinkExpired as exc:
            raise MediaUnavailable("the file's link has expired") from exc
        stored = StoredMedia(signed_url(media_file), media_file.file_name, media_file.mime_type, media_file.size)
        return stored, content
