"""clearMessagesQueue (API.md §9.5): drop every message still waiting; they are never sent."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from engines.emulator import pairing
from engines.emulator.models import EmuMessage
from engines.emulator.transport import ensure_phone
from instances import services as instance_services
from instances.models import Instance, State
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import method_url

CHAT = "79001112233@c.us"


def send(client: APIClient, instance: Instance, text: str) -> str:
    r = client.post(method_url(instance, "sendMessage"), {"chatId": CHAT, "message": text}, format="json")
    assert r.status_code == 200, r.content
    return str(r.json()["idMessage"])


def clear(client: APIClient, instance: Instance) -> Any:
    return client.get(method_url(instance, "clearMessagesQueue"))


def test_it_clears_and_nothing_is_sent_later(
    api_client: APIClient, instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    ensure_phone("79001112233")
    for text in ("a", "b", "c"):
        send(api_client, instance, text)
    r = clear(api_client, instance)
    assert r.status_code == 200
    assert r.json() == {"isCleared": True}
    assert not OutgoingMessage.objects.filter(instance=instance).exists()
    assert api_client.get(method_url(instance, "getMessagesCount")).json() == {"count": 0}
    assert api_client.get(method_url(instance, "showMessagesQueue")).json() == []

    with django_capture_on_commit_callbacks(execute=True):
        pairing.link_phone(instance, phone="79005550000")
        instance_services.change_state(instance, State.AUTHORIZED)
    assert not EmuMessage.objects.exists()


def test_an_empty_queue_clears_too(api_client: APIClient, instance: Instance) -> None:
    r = clear(api_client, instance)
    assert (r.status_code, r.json()) == (200, {"isCleared": True})


def test_it_keeps_history_and_other_instances(
    api_client: APIClient,
    instance: Instance,
    authorized_instance: Instance,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ensure_phone("79001112233")
    with django_capture_on_commit_callbacks(execute=True):
        sent = send(api_client, authorized_instance, "sent")
    waiting = send(api_client, authorized_instance, "waits for pacing")
    other = send(api_client, instance, "another instance")
    assert clear(api_client, authorized_instance).json() == {"isCleared": True}
    assert dict(OutgoingMessage.objects.values_list("id_message", "status")) == {
        sent: OutgoingStatus.SENT,
        other: OutgoingStatus.QUEUED,
    }
    assert waiting not in set(OutgoingMessage.objects.values_list("id_message", flat=True))


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    send(api_client, instance, "stays")
    r = api_client.get(method_url(instance, "clearMessagesQueue", token="f" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert OutgoingMessage.objects.count() == 1


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.get("/waInstance1234567890/clearMessagesQueue/" + "a" * 50)
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    send(api_client, instance, "stays")
    r = api_client.delete(method_url(instance, "clearMessagesQueue"))
    assert (r.status_code, r.content) == (404, b"Not Found")
    assert OutgoingMessage.objects.count() == 1
