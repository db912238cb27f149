"""Files for engines: store what an engine received (a media message, a picture) as
a downloadable file, and read back a file the product stored (an outgoing upload).

The product's file storage lives in ``messaging.media`` (links, expiry, SSRF-guarded
fetches), above the engines. It provides itself here at start-up
(``messaging.apps``), the same inversion as ``engines.sink``: engines call
``store``/``read`` and never import ``messaging``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class MediaUnavailable(Exception):
    """The file cannot be stored (too large, unreadable) or read (unknown, expired
    or foreign link). The message says why, for the caller's error."""


@dataclass(frozen=True)
class StoredMedia:
    """A stored file: ``url`` is its signed public link (GREEN-API's downloadUrl /
    urlFile), valid for the configured media lifetime."""

    url: str
    file_name: str
    mime_type: str
    size: int


class MediaStore(Protocol):
    def store(
        self, *, instance_id: int, content: bytes, file_name: str, mime_hints: tuple[str | None, ...] = ()
    ) -> StoredMedia:
        """Store ``content`` for the instance; its type is detected from the bytes,
        then the hints. Raises ``MediaUnavailable`` (e.g. larger than the limit)."""
        ...

    def read(self, url: str) -> tuple[StoredMedia, bytes]:
        """A file this server stored, by its link. Raises ``MediaUnavailable``."""
        ...


_store: MediaStore | None = None


def provide(store: MediaStore) -> None:
    """Install the product's store (called once per process at start-up)."""
    global _store  # noqa: PLW0603 - one store per process, set at start-up
    _store = store


def _require() -> MediaStore:
    if _store is None:
        raise RuntimeError("no media store: messaging is not installed in INSTALLED_APPS")
    return _store


def store(
    *, instance_id: int, content: bytes, file_name: str, mime_hints: tuple[str | None, ...] = ()
) -> StoredMedia:
    return _require().store(
        instance_id=instance_id, content=content, file_name=file_name, mime_hints=mime_hints
    )


def read(url: str) -> tuple[StoredMedia, bytes]:
    return _require().read(url)
