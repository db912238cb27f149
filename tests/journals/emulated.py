"""Helpers for tests that drive the emulated network through the control API and read
what the instance's session made of it (receiveNotification on a live server)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.db import connection

from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from instances.runner import Runner
from journals.models import Notification, NotificationState
from messaging.models import PENDING_STATUSES, OutgoingMessage
from tests.conftest import LiveServer, method_url
from tests.factories import make_instance

CONTACT = "79001234567"
CONTACT_WID = f"{CONTACT}@c.us"

ALL_FLAGS = (
    "incomingWebhook",
    "outgoingWebhook",
    "outgoingMessageWebhook",
    "outgoingAPIMessageWebhook",
    "pollMessageWebhook",
    "incomingCallWebhook",
    "incomingBlockWebhook",
    "editedMessageWebhook",
    "deletedMessageWebhook",
    "outgoingCallWebhook",
)


def set_flags(instance: Instance, **flags: Any) -> Instance:
    instance.settings.update(flags)
    instance.save(update_fields=["settings"])
    return instance


def notifying_instance(*, phone: str = "", **flags: Any) -> Instance:
    """An authorized emulator instance with every notification on (unless overridden)
    and a contact "John" (phonebook name "John Doe") at ``CONTACT``."""
    instance = make_instance(authorized=True, phone=phone)
    set_flags(instance, **{**{name: True for name in ALL_FLAGS}, **flags})
    contact = add_simulated_contact(owner_phone=instance.phone, phone=CONTACT, name="John Doe")
    contact.contact.name = "John"
    contact.contact.save(update_fields=["name"])
    return instance


class Control:
    """The emulator control API of one instance, over HTTP."""

    def __init__(self, live: LiveServer, instance: Instance) -> None:
        self.live = live
        self.instance = instance
        self.base = f"{live.url}/api/v1/emulator/instances/{instance.id}"
        self.headers = {"Authorization": f"Bearer {instance.api_token}"}

    def post(self, path: str, body: dict[str, Any], *, status: int = 200) -> Any:
        r = httpx.post(f"{self.base}/{path}", json=body, headers=self.headers, timeout=30)
        assert r.status_code == status, r.text
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text

    def incoming(self, kind: str, phone: str = CONTACT, **fields: Any) -> str:
        return str(self.post(f"incoming/{kind}", {"phoneNumber": phone, **fields})["idMessage"])

    def phone_sent(self, kind: str, phone: str = CONTACT, **fields: Any) -> str:
        return str(self.post(f"phone-sent/{kind}", {"phoneNumber": phone, **fields})["idMessage"])

    def api(self, method: str, body: dict[str, Any]) -> Any:
        """Call a send method and wait until the message has left the send queue
        (on PostgreSQL the sendMessage fast lane wakes the queue in the background)."""
        r = httpx.post(f"{self.live.url}{method_url(self.instance, method)}", json=body, timeout=30)
        assert r.status_code == 200, r.text
        answer = r.json()
        if isinstance(answer, dict) and "idMessage" in answer:
            sent = OutgoingMessage.objects.filter(
                instance_id=self.instance.pk, id_message=answer["idMessage"]
            )
            wait_for(lambda: not sent.filter(status__in=PENDING_STATUSES).exists())
        return answer


def receive(live: LiveServer, instance: Instance, timeout: int = 5) -> Any:
    url = f"{live.url}{method_url(instance, 'receiveNotification')}?receiveTimeout={timeout}"
    return httpx.get(url, timeout=timeout + 25).json()


def take(live: LiveServer, instance: Instance) -> dict[str, Any]:
    """Receive the head notification and delete it; fails on an empty queue."""
    got = receive(live, instance)
    assert got is not None, "no notification"
    r = httpx.delete(f"{live.url}{method_url(instance, 'deleteNotification', extra=str(got['receiptId']))}")
    assert r.json() == {"result": True}
    body: dict[str, Any] = got["body"]
    return body


def forget_notifications(instance: Instance) -> None:
    """Start a check from an empty queue (setup events are not under test)."""
    Notification.objects.filter(instance_id=instance.pk, state=NotificationState.QUEUED).update(
        state=NotificationState.DONE
    )


def queued_types(instance: Instance) -> list[str]:
    return list(
        Notification.objects.filter(instance_id=instance.pk, state=NotificationState.QUEUED)
        .order_by("receipt_id")
        .values_list("type_webhook", flat=True)
    )


def tick() -> None:
    """One pass of a session runner over every instance (they start instantly in tests)."""
    runner = Runner()
    try:
        runner.tick()
    finally:
        runner.shutdown()


@pytest.fixture
def ticking_runner(live_asgi: LiveServer) -> Iterator[Runner]:
    """A session runner ticking every 0.2 s in a background thread, as ``runsessions``
    would, for tests where an official client runs against the live server."""
    runner = Runner()
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            while not stop.is_set():
                try:
                    runner.tick()
                except Exception as exc:  # noqa: BLE001 - reported at teardown
                    errors.append(exc)
                stop.wait(0.2)
            runner.shutdown()
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="test-runner", daemon=True)
    thread.start()
    yield runner
    stop.set()
    thread.join(timeout=10)
    assert not errors, errors


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
