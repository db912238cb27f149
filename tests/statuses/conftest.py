"""Fixtures of the status tests (files, storage, a loopback file server)."""

from tests.messaging.media_helpers import file_server, media_dirs, recipient

__all__ = ["file_server", "media_dirs", "recipient"]
