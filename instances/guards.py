"""Checks every method that talks to WhatsApp makes before it does anything, and
the refusal they raise. Here, under every app that calls them, so messaging,
journals, statuses and groups share one rule and one error without importing
each other."""

from __future__ import annotations

from instances.models import Instance, State


class ChatError(Exception):
    """A request the account cannot carry out; ``status`` is the HTTP answer."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class NotAuthorized(ChatError):
    def __init__(self) -> None:
        super().__init__("instance is starting or not authorized")


def check_authorized(instance: Instance) -> None:
    """Methods that talk to WhatsApp need a linked, authorized account."""
    if instance.state != State.AUTHORIZED or not instance.wid:
        raise NotAuthorized()
