"""Issue 18: a send's options are never accepted and dropped. ``typingTime`` needs an
engine that shows typing (sendTyping) and ``archiveChat: true`` one that archives
chats (archiveChat); an engine without the capability refuses the send with that
capability's reason, and nothing is queued."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from engines import registry
from instances.models import Account
from messaging.models import OutgoingMessage
from tests.conftest import method_url
from tests.factories import make_instance

CHAT = "79001230044@c.us"
FILE = {"urlFile": "https://example.org/a.pdf", "fileName": "a.pdf"}

# (method, extra body, the option asked for, the capability it needs)
CASES = [
    ("sendMessage", {"message": "hi", "typingTime": 2000}, "typingTime", "sendTyping"),
    ("sendMessage", {"message": "hi", "archiveChat": True}, "archiveChat", "archiveChat"),
    ("sendFileByUrl", {**FILE, "typingTime": 2000}, "typingTime", "sendTyping"),
    ("sendFileByUrl", {**FILE, "archiveChat": True}, "archiveChat", "archiveChat"),
    ("sendLocation", {"latitude": 1.0, "longitude": 2.0, "typingTime": 2000}, "typingTime", "sendTyping"),
]


@pytest.mark.parametrize("engine", registry.names())
@pytest.mark.parametrize(("method", "extra", "option", "needs"), CASES)
def test_an_option_the_engine_cannot_honour_is_its_400_and_queues_nothing(
    api_client: APIClient, account: Account, engine: str, method: str, extra: dict[str, Any], option: str, needs: str
) -> None:
    instance = make_instance(account, authorized=True, engine=engine)
    r = api_client.post(method_url(instance, method), {"chatId": CHAT, **extra}, format="json")
    spec = registry.spec(engine)
    if spec.supports(needs):
        assert r.status_code == 200, r.content
        assert OutgoingMessage.objects.filter(instance=instance).count() == 1
    else:
        assert r.status_code == 400, r.content
        assert f"{option} is not supported by the {engine} engine: {spec.why_not[needs]}" in r.content.decode()
        assert not OutgoingMessage.objects.filter(instance=instance).exists()


def test_the_audit_covers_both_refusing_engines() -> None:
    """Not vacuous: cloud cannot type and neither cloud nor waweb can archive."""
    assert not registry.spec("cloud").supports("sendTyping")
    assert not registry.spec("cloud").supports("archiveChat")
    assert not registry.spec("waweb").supports("archiveChat")
    assert registry.spec("emulator").supports("sendTyping") and registry.spec("emulator").supports("archiveChat")


def test_off_values_are_accepted_everywhere(api_client: APIClient, account: Account) -> None:
    instance = make_instance(account, authorized=True, engine="cloud")
    r = api_client.post(
        method_url(instance, "sendMessage"), {"chatId": CHAT, "message": "hi", "archiveChat": False}, format="json"
    )
    assert r.status_code == 200, r.content
