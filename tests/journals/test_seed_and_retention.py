from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator.models import EmuContact
from instances.models import Instance
from journals.models import Call, ChatState, JournalMessage
from journals.retention import prune_journals
from tests.journals.chat_helpers import at, get, receive, text_data


def seed(client: APIClient, instance: Instance, body: Any, token: str | None = None) -> Any:
    return client.post(
        f"/api/v1/emulator/instances/{instance.id}/seed",
        body,
        format="json",
        headers={"Authorization": f"Bearer {token or instance.api_token}"},
    )


def test_seed_fills_contacts_chats_and_history(api_client: APIClient, authorized_instance: Instance) -> None:
    body = {
        "contacts": [{"phoneNumber": "79003330001", "name": "Ann"}],
        "chats": [
            {"phoneNumber": "79003330001", "name": "Ann", "messages": 5},
            {"phoneNumber": "79003330002", "messages": 3, "archived": True},
        ],
        "spanMinutes": 60,
    }
    r = seed(api_client, authorized_instance, body)
    assert r.status_code == 201, r.content
    assert r.json() == {"contacts": 1, "chats": 2, "messages": 8}
    assert EmuContact.objects.filter(owner__phone=authorized_instance.phone).count() == 1
    history = api_client.post(
        f"/waInstance{authorized_instance.id}/getChatHistory/{authorized_instance.api_token}",
        {"chatId": "79003330001@c.us"},
        format="json",
    ).json()
    assert [m["textMessage"] for m in history] == ["Message 5", "Message 4", "Message 3", "Message 2", "Message 1"]
    assert [m["type"] for m in history] == ["incoming", "outgoing", "incoming", "outgoing", "incoming"]
    chats = get(api_client, authorized_instance, "getChats").json()
    assert {c["id"]: c["archive"] for c in chats} == {"79003330001@c.us": False, "79003330002@c.us": True}


def test_seed_needs_the_instance_token(api_client: APIClient, authorized_instance: Instance) -> None:
    assert seed(api_client, authorized_instance, {}, token="0" * 50).status_code == 403


def test_retention_keeps_everything_by_default(authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("old"), id_message="OLD", when=at(400 * 86400))
    assert prune_journals() == {}
    assert JournalMessage.objects.count() == 1


def test_retention_deletes_older_entries(authorized_instance: Instance, settings: Any) -> None:
    settings.JOURNAL_RETENTION_DAYS = 30
    receive(authorized_instance, text_data("old"), id_message="OLD", when=at(31 * 86400))
    receive(authorized_instance, text_data("new"), id_message="NEW", when=at(29 * 86400))
    Call.objects.create(instance=authorized_instance, id_call="C", chat_id="x@c.us", timestamp=timezone.now() - timedelta(days=40))
    assert prune_journals() == {"journal": 1, "outgoing": 0, "calls": 1, "changes": 0}
    assert list(JournalMessage.objects.values_list("id_message", flat=True)) == ["NEW"]
    assert ChatState.objects.count() == 1
