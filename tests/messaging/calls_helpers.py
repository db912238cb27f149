"""Helpers for the VoIP method tests: two phones on the emulated network, the wire
calls, and the runner pass that carries call signals to the journals."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from journals.models import Call, Notification
from tests.conftest import method_url
from tests.journals.emulated import notifying_instance, tick

CONTACT = "79005550001"
CONTACT_WID = f"{CONTACT}@c.us"


def pair(*, a_phone: str = "79330000001", b_phone: str = "79330000002") -> tuple[Instance, Instance]:
    """Two authorized instances on this server with every notification on."""
    return notifying_instance(phone=a_phone), notifying_instance(phone=b_phone)


def with_contact(instance: Instance, *, rule: str = "answer", phone: str = CONTACT, name: str = "Alice") -> str:
    add_simulated_contact(owner_phone=instance.phone, phone=phone, name=name, call_rule=rule)
    return f"{phone}@c.us"


def call(client: APIClient, instance: Instance, method: str, body: Any = None) -> Any:
    url = method_url(instance, method)
    if method in ("callsState", "callsGetIceServers"):
        return client.get(url)
    if body is None:
        return client.post(url)  # the SDK sends no body
    return client.post(url, body, format="json")


def state(client: APIClient, instance: Instance) -> dict[str, Any]:
    r = call(client, instance, "callsState")
    assert r.status_code == 200, r.content
    body: dict[str, Any] = r.json()
    return body


def refused(response: Any, message: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["statusCode"] == 400
    assert body["message"] == message


def call_notifications(instance: Instance) -> list[tuple[str, str]]:
    """(status, from) of the instance's incomingCall notifications, in order."""
    rows = Notification.objects.filter(instance_id=instance.pk, type_webhook="incomingCall").order_by("receipt_id")
    return [(n.body["status"], n.body["from"]) for n in rows]


def journal(instance: Instance) -> list[tuple[str, str, str, int | None]]:
    """(direction, chatId, status, duration) of the instance's call journal."""
    rows = Call.objects.filter(instance_id=instance.pk).order_by("timestamp", "id")
    return [(c.direction, c.chat_id, c.status, c.duration) for c in rows]


__all__ = ["tick"]
