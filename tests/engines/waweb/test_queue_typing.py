"""The send queue types for the waweb engine (EngineSpec.types_in_queue,
messaging/pacing.py): before a text with a typing time (typingTime, or autoTyping's
time for its length) the peer sees 'typing…', the message stays queued for that
long, then leaves. Driven through the conformance harness (the real session on a
fake WhatsApp); the clock is injected, so nothing waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

pytest.importorskip("neonize", reason="the waweb engine needs neonize (requirements.txt)")

from instances import services as instance_services  # noqa: E402
from instances.models import Account, Instance  # noqa: E402
from messaging import pacing, services  # noqa: E402
from messaging.models import OutgoingMessage, OutgoingStatus, TypingShown  # noqa: E402
from tests.conftest import method_url  # noqa: E402
from tests.engines.waweb.harness import WawebHarness  # noqa: E402

OFF = {
    "sendJitterPercent": 0,
    "newChatsPerHour": 0,
    "warmUpDailyLimit": 0,
    "delaySendMessagesMilliseconds": 0,
}


@pytest.fixture
def waweb(db: None) -> Iterator[WawebHarness]:
    harness = WawebHarness()
    with harness.active():
        yield harness


def send(client: APIClient, instance: Instance, body: dict[str, Any]) -> str:
    r = client.post(method_url(instance, "sendMessage"), body, format="json")
    assert r.status_code == 200, r.content
    return str(r.json()["idMessage"])


def drain(instance: Instance, moment: datetime) -> float | None:
    with pacing.use(clock=lambda: moment):
        return services.drain_queue(instance.id, "test")


def status(id_message: str) -> str:
    return str(OutgoingMessage.objects.get(id_message=id_message).status)


@pytest.mark.parametrize(
    ("changes", "body", "typed_ms"),
    [
        # autoTyping: 60 ms a character times the level, 1-20 s.
        ({"autoTyping": 1}, {"message": "x" * 50}, 3000),
        ({"autoTyping": 2}, {"message": "x" * 50}, 6000),
        ({"autoTyping": 1}, {"message": "hi"}, 1000),
        ({"autoTyping": 4}, {"message": "x" * 500}, 20_000),
        # An explicit typingTime wins, with or without autoTyping.
        ({"autoTyping": 4}, {"message": "x" * 500, "typingTime": 2000}, 2000),
        ({}, {"message": "hello", "typingTime": 1500}, 1500),
    ],
)
def test_a_text_is_typed_for_its_time_then_sent(
    waweb: WawebHarness,
    account: Account,
    api_client: APIClient,
    changes: dict[str, int],
    body: dict[str, Any],
    typed_ms: int,
) -> None:
    instance = waweb.authorized(account)
    instance_services.update_settings(instance, {**OFF, **changes})
    chat = waweb.peer(instance)
    id_message = send(api_client, instance, {"chatId": chat, **body})
    start = timezone.now()

    assert drain(instance, start) == typed_ms / 1000
    assert waweb.presence(instance, chat) == "composing"
    assert status(id_message) == OutgoingStatus.QUEUED
    assert waweb.received(instance, chat, id_message) is None
    # Woken early, it still waits out the typing (and does not type again).
    assert drain(instance, start + timedelta(milliseconds=typed_ms - 500)) == 0.5
    assert TypingShown.objects.count() == 1

    assert drain(instance, start + timedelta(milliseconds=typed_ms)) is None
    assert status(id_message) == OutgoingStatus.SENT
    assert waweb.received(instance, chat, id_message) is not None
    assert not TypingShown.objects.exists()


def test_without_a_typing_time_nothing_is_typed(
    waweb: WawebHarness, account: Account, api_client: APIClient
) -> None:
    instance = waweb.authorized(account)
    instance_services.update_settings(instance, OFF)
    chat = waweb.peer(instance)
    id_message = send(api_client, instance, {"chatId": chat, "message": "straight"})
    assert drain(instance, timezone.now()) is None
    assert waweb.presence(instance, chat) is None
    assert waweb.received(instance, chat, id_message) is not None
