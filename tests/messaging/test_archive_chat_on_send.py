"""The send methods' ``archiveChat``: the chat the message goes to ends up archived
on the account (getChats), while the message itself reaches the peer."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuMessage
from engines.emulator.transport import ensure_phone
from instances.models import Instance
from tests.conftest import method_url

RECIPIENT = "79001230022"
CHAT = f"{RECIPIENT}@c.us"


def chats(client: APIClient, instance: Instance) -> dict[str, bool]:
    return {c["id"]: c["archive"] for c in client.get(method_url(instance, "getChats")).json()}


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("sendMessage", {"message": "bye"}),
        ("sendButtons", {"message": "pick", "buttons": [{"buttonId": "1", "buttonText": "ok"}]}),
    ],
)
def test_the_chat_is_archived_and_the_message_delivered(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any,
    method: str, body: dict[str, Any],
) -> None:
    ensure_phone(RECIPIENT, "Recipient")
    with django_capture_on_commit_callbacks(execute=True):
        r = api_client.post(method_url(authorized_instance, method), {"chatId": CHAT, "archiveChat": True, **body}, format="json")
    assert r.status_code == 200, r.content
    assert chats(api_client, authorized_instance) == {CHAT: True}
    assert EmuMessage.objects.filter(sender=authorized_instance.phone, id_message=r.json()["idMessage"]).exists()


def test_without_it_the_chat_stays_in_the_list(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    ensure_phone(RECIPIENT, "Recipient")
    with django_capture_on_commit_callbacks(execute=True):
        api_client.post(method_url(authorized_instance, "sendMessage"), {"chatId": CHAT, "message": "hi", "archiveChat": False}, format="json")
    assert chats(api_client, authorized_instance) == {CHAT: False}
