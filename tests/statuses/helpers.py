"""Shared pieces of the status tests: a poster with contacts on the emulated network,
posting through the API (drained inline) and one runner pass."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from messaging.models import OutgoingMessage
from tests.conftest import method_url
from tests.factories import make_instance
from tests.journals.emulated import ALL_FLAGS, set_flags

FRIEND = "79005550001"
COLLEAGUE = "79005550002"


def poster(phone: str = "", **flags: Any) -> Instance:
    """An authorized instance, every notification on, with two contacts."""
    instance = make_instance(authorized=True, phone=phone)
    # No pacing: every status posted in a test leaves the queue when drained inline.
    set_flags(instance, delaySendMessagesMilliseconds=0, **{**{name: True for name in ALL_FLAGS}, **flags})
    add_simulated_contact(owner_phone=instance.phone, phone=FRIEND, name="Friend")
    add_simulated_contact(owner_phone=instance.phone, phone=COLLEAGUE, name="Colleague")
    return instance


def post(client: APIClient, instance: Instance, method: str, body: Any, capture: Any) -> Any:
    """Call a status method; the send queue drains inline on commit."""
    with capture(execute=True):
        r = client.post(method_url(instance, method), body, format="json")
    return r


def posted(instance: Instance, id_message: str) -> OutgoingMessage:
    return OutgoingMessage.objects.get(instance=instance, id_message=id_message)
