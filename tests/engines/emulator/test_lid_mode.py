"""enableLidMode (API.md §2, "LID migration"): an instance with it on sees personal
chats by the peer's ``<digits>@lid`` id, and sending to that id reaches the
peer's phone. Off, chats are ``@c.us`` as before. A LID the network never showed
reaches nobody: the send fails as for a number without WhatsApp."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuMessage, EmuPhone
from engines.emulator.transport import lid_for
from instances import services as instance_services
from instances.models import Instance
from instances.runner import Runner
from journals.models import JournalMessage
from messaging import services
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import method_url
from tests.factories import make_instance


@pytest.fixture(autouse=True)
def _no_simulated_receipts(settings: Any) -> None:
    settings.EMULATOR_DELIVERED_AFTER_SECONDS = 3600
    settings.EMULATOR_READ_AFTER_SECONDS = 3600


def ready(*, lid_mode: bool) -> Instance:
    instance = make_instance(authorized=True)
    instance_services.update_settings(instance, {"delaySendMessagesMilliseconds": 0, "enableLidMode": lid_mode})
    instance.refresh_from_db()
    return instance


def send(api_client: APIClient, instance: Instance, chat_id: str, text: str) -> str:
    r = api_client.post(method_url(instance, "sendMessage"), {"chatId": chat_id, "message": text}, format="json")
    assert r.status_code == 200, r.content
    services.drain_queue(instance.id, "test")
    return str(r.json()["idMessage"])


def received(instance: Instance) -> list[tuple[str, str, str]]:
    rows = JournalMessage.objects.filter(instance_id=instance.pk, direction="incoming").order_by("id")
    return [(r.chat_id, r.sender, r.id_message) for r in rows]


def test_chats_by_lid_and_replies_to_the_lid(api_client: APIClient, db: None) -> None:
    a, b = ready(lid_mode=True), ready(lid_mode=False)
    runner = Runner()
    hello = send(api_client, b, a.wid, "hello")
    runner.tick()
    b_lid = lid_for(b.phone)
    assert received(a) == [(b_lid, b_lid, hello)]
    history = api_client.post(method_url(a, "getChatHistory"), {"chatId": b_lid}, format="json").json()
    assert [m["idMessage"] for m in history] == [hello]

    reply = send(api_client, a, b_lid, "hi by lid")
    runner.tick()
    assert received(b) == [(a.wid, a.wid, reply)]  # b is not in LID mode


def test_without_lid_mode_chats_stay_phone_numbers(api_client: APIClient, db: None) -> None:
    a, b = ready(lid_mode=False), ready(lid_mode=False)
    hello = send(api_client, b, a.wid, "hello")
    Runner().tick()
    assert received(a) == [(b.wid, b.wid, hello)]


def test_an_unknown_lid_reaches_nobody(api_client: APIClient, db: None) -> None:
    a = ready(lid_mode=True)
    id_message = send(api_client, a, "999999999999999@lid", "anyone?")
    assert not EmuMessage.objects.exists()
    assert OutgoingMessage.objects.get(id_message=id_message).status != OutgoingStatus.SENT


def test_chat_methods_on_a_lid_chat_reach_the_peer(api_client: APIClient, db: None) -> None:
    """The @lid id an enableLidMode instance sees a chat by works in every chat
    method, with the effect on the peer's side (not a 200 that did nothing)."""
    a, b = ready(lid_mode=True), ready(lid_mode=False)
    runner = Runner()
    hello = send(api_client, b, a.wid, "hello")
    runner.tick()
    b_lid = lid_for(b.phone)

    r = api_client.post(method_url(a, "readChat"), {"chatId": b_lid}, format="json")
    assert r.status_code == 200, r.content
    assert OutgoingMessage.objects.get(instance=b, id_message=hello).status == OutgoingStatus.READ  # b sees blue ticks

    oops = send(api_client, a, b_lid, "oops")
    runner.tick()
    r = api_client.post(method_url(a, "deleteMessage"), {"chatId": b_lid, "idMessage": oops}, format="json")
    assert r.status_code == 200, r.content
    runner.tick()
    revoke = JournalMessage.objects.get(instance=b, type_message="deletedMessage")
    assert (revoke.chat_id, revoke.message_data["deletedMessageData"]) == (a.wid, {"stanzaId": oops})

    r = api_client.post(method_url(a, "sendTyping"), {"chatId": b_lid}, format="json")
    assert r.status_code == 200, r.content
    seen = api_client.get(
        f"/api/v1/emulator/instances/{b.pk}/presence", HTTP_AUTHORIZATION=f"Bearer {b.api_token}"
    ).json()
    assert [(p["chatId"], p["presence"]) for p in seen] == [(a.wid, "composing")]

    info = api_client.post(method_url(a, "getContactInfo"), {"chatId": b_lid}, format="json").json()
    assert info["name"] == EmuPhone.objects.get(phone=b.phone).name
    assert api_client.post(method_url(a, "getAvatar"), {"chatId": b_lid}, format="json").json()["existsWhatsapp"] is True


def test_calls_come_from_the_lid_too(api_client: APIClient, db: None) -> None:
    a, b = ready(lid_mode=True), ready(lid_mode=False)
    r = api_client.post(method_url(b, "callsDial"), {"chatId": a.wid}, format="json")
    assert r.status_code == 200, r.content
    Runner().tick()
    calls = api_client.get(method_url(a, "lastIncomingCalls")).json()
    assert [c["chatId"] for c in calls] == [lid_for(b.phone)]
