"""getMessagesCount (API.md §9.5, §14): pending messages of this instance, under the
Latin key ``count`` (the docs' example spells it with a Cyrillic first letter)."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from instances.models import Instance
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import method_url

CHAT = "79001112233@c.us"


def count(client: APIClient, instance: Instance) -> Any:
    r = client.get(method_url(instance, "getMessagesCount"))
    assert r.status_code == 200, r.content
    return r.json()


def send(client: APIClient, instance: Instance, chat_id: str = CHAT) -> None:
    r = client.post(method_url(instance, "sendMessage"), {"chatId": chat_id, "message": "x"}, format="json")
    assert r.status_code == 200, r.content


def test_a_fresh_instance_has_zero(api_client: APIClient, instance: Instance) -> None:
    assert count(api_client, instance) == {"count": 0}


def test_it_counts_queued_and_sending_messages(api_client: APIClient, instance: Instance) -> None:
    for _ in range(3):
        send(api_client, instance)
    OutgoingMessage.objects.create(
        instance=instance, chat_id=CHAT, method="sendMessage", status=OutgoingStatus.SENDING
    )
    body = count(api_client, instance)
    assert body == {"count": 4}
    assert list(body) == ["count"]  # Latin "c", no Cyrillic twin


def test_final_messages_and_other_instances_are_not_counted(
    api_client: APIClient,
    instance: Instance,
    authorized_instance: Instance,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        send(api_client, authorized_instance, "79000000009@c.us")  # noAccount at once
    send(api_client, authorized_instance)  # the next one waits for the pacing delay
    send(api_client, instance)
    for status in (OutgoingStatus.SENT, OutgoingStatus.DELIVERED, OutgoingStatus.READ, OutgoingStatus.FAILED):
        OutgoingMessage.objects.create(
            instance=authorized_instance, chat_id=CHAT, method="sendMessage", status=status
        )
    assert count(api_client, authorized_instance) == {"count": 1}
    assert count(api_client, instance) == {"count": 1}


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "getMessagesCount", token="f" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.get("/waInstance1234567890/getMessagesCount/" + "a" * 50)
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    r = api_client.post(method_url(instance, "getMessagesCount"), {}, format="json")
    assert (r.status_code, r.content) == (404, b"Not Found")
