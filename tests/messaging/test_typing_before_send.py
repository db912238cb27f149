"""typingTime on the send methods and the autoTyping setting: the engine types
before it sends. The other side of the emulated network sees ``composing`` in the
chat for that long, and the message reaches it only when the typing ends.

Time passes by moving the network rows' clock back (the sender typed earlier),
never by sleeping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F
from rest_framework.test import APIClient

from engines.emulator.models import EmuMessage, EmuPresence
from instances import services as instance_services
from instances.models import Instance
from instances.runner import Runner
from journals.models import JournalMessage
from messaging import services
from tests.conftest import method_url
from tests.factories import make_instance


@pytest.fixture(autouse=True)
def _no_simulated_receipts(settings: Any) -> None:
    settings.EMULATOR_DELIVERED_AFTER_SECONDS = 3600
    settings.EMULATOR_READ_AFTER_SECONDS = 3600


@pytest.fixture(autouse=True)
def _no_pacing(authorized_instance: Instance) -> None:
    instance_services.update_settings(authorized_instance, {"delaySendMessagesMilliseconds": 0})


def seen_by(client: APIClient, instance: Instance) -> list[dict[str, Any]]:
    r = client.get(
        f"/api/v1/emulator/instances/{instance.id}/presence", headers={"Authorization": f"Bearer {instance.api_token}"}
    )
    assert r.status_code == 200, r.content
    return list(r.json())


def received(peer: Instance) -> list[str]:
    rows = JournalMessage.objects.filter(instance_id=peer.pk, direction="incoming").order_by("id")
    return list(rows.values_list("id_message", flat=True))


def time_passes(seconds: float) -> None:
    """The network's clock moves on: everything on it happened ``seconds`` earlier."""
    shift = timedelta(seconds=seconds)
    EmuMessage.objects.update(created_at=F("created_at") - shift)
    EmuPresence.objects.update(started_at=F("started_at") - shift, until=F("until") - shift)


def send(client: APIClient, instance: Instance, body: dict[str, Any]) -> str:
    r = client.post(method_url(instance, "sendMessage"), body, format="json")
    assert r.status_code == 200, r.content
    services.drain_queue(instance.id, "test")
    return str(r.json()["idMessage"])


def test_typing_time_shows_typing_then_delivers(api_client: APIClient, authorized_instance: Instance) -> None:
    peer = make_instance(authorized=True)
    id_message = send(api_client, authorized_instance, {"chatId": peer.wid, "message": "hi", "typingTime": 5000})
    [seen] = seen_by(api_client, peer)
    assert (seen["chatId"], seen["presence"], seen["inChat"]) == (authorized_instance.wid, "composing", peer.wid)
    assert seen["until"] - seen["since"] == 5
    runner = Runner()
    runner.tick()
    assert received(peer) == []  # still typing: nothing has arrived

    time_passes(5)
    runner.tick()
    assert received(peer) == [id_message]
    assert seen_by(api_client, peer) == []  # the typing ended with the message


def test_a_message_after_a_typed_one_waits_behind_it(api_client: APIClient, authorized_instance: Instance) -> None:
    peer = make_instance(authorized=True)
    first = send(api_client, authorized_instance, {"chatId": peer.wid, "message": "one", "typingTime": 3000})
    second = send(api_client, authorized_instance, {"chatId": peer.wid, "message": "two"})
    runner = Runner()
    runner.tick()
    assert received(peer) == []
    time_passes(3)
    runner.tick()
    assert received(peer) == [first, second]


def test_without_typing_the_message_arrives_at_once(api_client: APIClient, authorized_instance: Instance) -> None:
    peer = make_instance(authorized=True)
    id_message = send(api_client, authorized_instance, {"chatId": peer.wid, "message": "now"})
    assert seen_by(api_client, peer) == []
    Runner().tick()
    assert received(peer) == [id_message]


def test_auto_typing_types_texts_for_their_length(api_client: APIClient, authorized_instance: Instance) -> None:
    peer = make_instance(authorized=True)
    instance_services.update_settings(authorized_instance, {"autoTyping": 2})
    text = "x" * 50  # 50 characters x 60 ms x level 2 = 6 s
    id_message = send(api_client, authorized_instance, {"chatId": peer.wid, "message": text})
    [seen] = seen_by(api_client, peer)
    assert (seen["presence"], seen["until"] - seen["since"]) == ("composing", 6)
    runner = Runner()
    runner.tick()
    assert received(peer) == []
    time_passes(6)
    runner.tick()
    assert received(peer) == [id_message]


def test_typing_time_wins_over_auto_typing(api_client: APIClient, authorized_instance: Instance) -> None:
    peer = make_instance(authorized=True)
    instance_services.update_settings(authorized_instance, {"autoTyping": 4})
    send(api_client, authorized_instance, {"chatId": peer.wid, "message": "x" * 100, "typingTime": 2000})
    [seen] = seen_by(api_client, peer)
    assert seen["until"] - seen["since"] == 2


def test_auto_typing_leaves_other_kinds_alone(api_client: APIClient, authorized_instance: Instance) -> None:
    peer = make_instance(authorized=True)
    instance_services.update_settings(authorized_instance, {"autoTyping": 1})
    r = api_client.post(
        method_url(authorized_instance, "sendLocation"),
        {"chatId": peer.wid, "latitude": 55.7, "longitude": 37.6},
        format="json",
    )
    assert r.status_code == 200, r.content
    services.drain_queue(authorized_instance.id, "test")
    assert seen_by(api_client, peer) == []
    Runner().tick()
    assert received(peer) == [r.json()["idMessage"]]
