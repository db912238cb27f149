"""enableMessagesHistory: an instance with it on that pairs with a phone gets the
phone's earlier messages on the emulated network in its journals (getChatHistory,
getChats), without notifications; with it off, a new device starts empty."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from engines.emulator.network import lid_for
from instances import services as instance_services
from instances.models import Instance
from instances.runner import Runner
from journals.models import Notification
from messaging import services
from tests.conftest import method_url
from tests.factories import make_instance

PHONE = "79004440001"


def converse(api_client: APIClient, instance: Instance, peer: Instance) -> tuple[str, str]:
    """The phone's earlier traffic: it sends the peer a text, the peer answers."""
    instance_services.update_settings(instance, {"delaySendMessagesMilliseconds": 0})
    instance_services.update_settings(peer, {"delaySendMessagesMilliseconds": 0})
    sent = api_client.post(method_url(instance, "sendMessage"), {"chatId": peer.wid, "message": "hello"}, format="json")
    services.drain_queue(instance.id, "test")
    answer = api_client.post(method_url(peer, "sendMessage"), {"chatId": instance.wid, "message": "hi back"}, format="json")
    services.drain_queue(peer.id, "test")
    return str(sent.json()["idMessage"]), str(answer.json()["idMessage"])


def pair_new_device(
    api_client: APIClient, old: Instance, *, history: bool, runner: Runner | None = None, lid_mode: bool = False
) -> Instance:
    """A second instance of the same account that the phone links next."""
    new = make_instance(old.account)
    instance_services.update_settings(
        new,
        {
            "enableMessagesHistory": history,
            "incomingWebhook": True,
            "outgoingMessageWebhook": True,
            "enableLidMode": lid_mode,
        },
    )
    r = api_client.post(
        f"/api/v1/emulator/instances/{new.id}/scan-qr",
        {"phoneNumber": PHONE},
        format="json",
        headers={"Authorization": f"Bearer {new.api_token}"},
    )
    assert r.status_code == 200 and r.json()["result"] is True, r.content
    (runner or Runner()).tick()  # the session finishes the connect
    new.refresh_from_db()
    assert new.state == "authorized"
    return new


def history(api_client: APIClient, instance: Instance, chat_id: str) -> list[dict[str, Any]]:
    r = api_client.post(method_url(instance, "getChatHistory"), {"chatId": chat_id, "count": 10}, format="json")
    assert r.status_code == 200, r.content
    return list(r.json())


def test_a_new_device_gets_the_phones_history(api_client: APIClient, db: None) -> None:
    old = make_instance(authorized=True, phone=PHONE)
    peer = make_instance(authorized=True)
    sent, answer = converse(api_client, old, peer)

    new = pair_new_device(api_client, old, history=True)
    got = history(api_client, new, peer.wid)
    assert [(m["type"], m["idMessage"], m["textMessage"]) for m in got] == [
        ("incoming", answer, "hi back"),
        ("outgoing", sent, "hello"),
    ]
    chats = api_client.get(method_url(new, "getChats")).json()
    assert peer.wid in [c["id"] for c in chats]
    # History is synced, not received: GREEN-API sends no notifications for it.
    assert not Notification.objects.filter(instance_id=new.pk).exclude(type_webhook="stateInstanceChanged").exists()
    wa = api_client.get(method_url(new, "getWaSettings")).json()
    assert wa["historySyncProgress"] == 100


def test_without_the_setting_a_new_device_starts_empty(api_client: APIClient, db: None) -> None:
    old = make_instance(authorized=True, phone=PHONE)
    peer = make_instance(authorized=True)
    converse(api_client, old, peer)

    new = pair_new_device(api_client, old, history=False)
    assert history(api_client, new, peer.wid) == []


def test_later_messages_arrive_live_not_twice(api_client: APIClient, db: None) -> None:
    old = make_instance(authorized=True, phone=PHONE)
    peer = make_instance(authorized=True)
    converse(api_client, old, peer)
    runner = Runner()
    new = pair_new_device(api_client, old, history=True, runner=runner)
    later = api_client.post(method_url(peer, "sendMessage"), {"chatId": new.wid, "message": "later"}, format="json")
    services.drain_queue(peer.id, "test")
    runner.tick()
    got = history(api_client, new, peer.wid)
    assert [m["idMessage"] for m in got][0] == later.json()["idMessage"]
    assert len(got) == 3
    # Only the live message is notified.
    assert Notification.objects.filter(instance_id=new.pk, type_webhook="incomingMessageReceived").count() == 1


def test_with_lid_mode_the_synced_chats_are_named_by_lid(api_client: APIClient, db: None) -> None:
    """enableLidMode with enableMessagesHistory: the history arrives under the
    peer's @lid, the id the live chat then continues under (one chat, not two)."""
    old = make_instance(authorized=True, phone=PHONE)
    peer = make_instance(authorized=True)
    sent, answer = converse(api_client, old, peer)
    new = pair_new_device(api_client, old, history=True, lid_mode=True)
    peer_lid = lid_for(peer.phone)
    assert [m["idMessage"] for m in history(api_client, new, peer_lid)] == [answer, sent]
    assert history(api_client, new, peer.wid) == []
