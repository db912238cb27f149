"""The sendMessage fast lane answers exactly like the Django view and writes the
same row (PostgreSQL only: elsewhere every request takes the Django path)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from engines.emulator.transport import ensure_phone
from instances.models import Instance
from messaging.fastlane import INSERT_FIELDS
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import LiveServer, method_url
from tests.factories import make_instance
from tests.processes import wait_for

pytestmark = pytest.mark.skipif(not settings.IS_POSTGRES, reason="the fast lane serves PostgreSQL only")

RECIPIENT = "79001112299"
COMPARED = ("chat_id", "method", "type_message", "request", "payload", "is_file", "idempotency_key")


@pytest.fixture
def sender(live_asgi: LiveServer) -> Instance:
    ensure_phone(RECIPIENT, "Recipient")
    return make_instance(authorized=True)


def post(live: LiveServer, instance: Instance, body: Any, *, token: str | None = None, **headers: str) -> httpx.Response:
    url = f"{live.url}{method_url(instance, 'sendMessage', token=token)}"
    if isinstance(body, bytes | str):
        return httpx.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    return httpx.post(url, json=body, headers=headers)


def test_it_writes_the_same_row_as_the_django_view(live_asgi: LiveServer, sender: Instance) -> None:
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "see https://example.org", "typingTime": 1500}
    fast = post(live_asgi, sender, body)
    assert fast.status_code == 200
    slow = APIClient().post(method_url(sender, "sendMessage"), body, format="json")
    assert slow.status_code == 200
    a = OutgoingMessage.objects.get(id_message=fast.json()["idMessage"])
    b = OutgoingMessage.objects.get(id_message=slow.json()["idMessage"])
    for field in COMPARED:
        assert getattr(a, field) == getattr(b, field), field
    assert fast.headers["access-control-allow-origin"] == "*"


def test_the_queue_is_drained_after_commit(live_asgi: LiveServer, sender: Instance) -> None:
    r = post(live_asgi, sender, {"chatId": f"{RECIPIENT}@c.us", "message": "hi"})
    id_message = r.json()["idMessage"]
    wait_for(
        lambda: OutgoingMessage.objects.get(id_message=id_message).status == OutgoingStatus.SENT,
        timeout=10,
        what="the fast-lane message to be sent",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"message": "x"},
        {"chatId": "bad", "message": "x"},
        {"chatId": f"{RECIPIENT}@c.us", "message": ""},
        {"chatId": f"{RECIPIENT}@c.us", "message": "x", "extra": 1},
        {"chatId": f"{RECIPIENT}@c.us", "message": "x", "customPreview": {"title": "t", "bogus": 1}},
        [],
        '{"chatId": ',
        '{"chatId": "1"}}',
    ],
)
def test_errors_match_the_django_view(live_asgi: LiveServer, sender: Instance, body: Any) -> None:
    fast = post(live_asgi, sender, body)
    client = APIClient()
    raw = body if isinstance(body, str) else __import__("json").dumps(body)
    slow = client.generic("POST", method_url(sender, "sendMessage"), raw, content_type="application/json")
    assert fast.status_code == slow.status_code == 400
    assert fast.json()["message"] == slow.json()["message"]
    assert not OutgoingMessage.objects.filter(instance=sender).exists()


def test_auth_and_size_errors(live_asgi: LiveServer, sender: Instance) -> None:
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "x"}
    r = post(live_asgi, sender, body, token="0" * 50)
    assert r.status_code == 401 and r.json() == {"code": 401, "description": "Unauthorized"}
    r = httpx.post(f"{live_asgi.url}/waInstance1{sender.id}/sendMessage/{sender.api_token}", json=body)
    assert r.status_code == 403
    r = post(live_asgi, sender, {"chatId": f"{RECIPIENT}@c.us", "message": "x" * 200_000})
    assert r.status_code == 413
    assert not OutgoingMessage.objects.filter(instance=sender).exists()


def test_case_insensitive_method(live_asgi: LiveServer, sender: Instance) -> None:
    url = f"{live_asgi.url}/waInstance{sender.id}/SendMessage/{sender.api_token}"
    assert httpx.post(url, json={"chatId": f"{RECIPIENT}@c.us", "message": "x"}).status_code == 200


def test_idempotency_key_and_read_on_reply_take_the_django_path(live_asgi: LiveServer, sender: Instance) -> None:
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "once"}
    a = post(live_asgi, sender, body, **{"Idempotency-Key": "fl-1"}).json()
    b = post(live_asgi, sender, body, **{"Idempotency-Key": "fl-1"}).json()
    assert a == b
    sender.settings["markIncomingMessagesReadedOnReply"] = True
    sender.save(update_fields=["settings"])
    assert post(live_asgi, sender, body).status_code == 200
    assert OutgoingMessage.objects.filter(instance=sender).count() == 2


def test_every_required_column_gets_a_value() -> None:
    names = {f.attname for f in INSERT_FIELDS}
    model_fields = {f.attname for f in OutgoingMessage._meta.concrete_fields if not f.primary_key}
    assert names == model_fields


# --- The one-statement path (an instance this process has served before) ---------------


def lane() -> Any:
    from config.asgi import application

    return application.application_mapping["http"]


def test_a_known_instance_takes_one_statement_and_writes_the_same_row(
    live_asgi: LiveServer, sender: Instance
) -> None:
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "see https://example.org", "linkPreview": False}
    assert post(live_asgi, sender, body).status_code == 200  # the exact path: learns the instance
    assert lane()._known[sender.id] == (sender.api_token, True)
    fast = post(live_asgi, sender, body)
    slow = APIClient().post(method_url(sender, "sendMessage"), body, format="json")
    a = OutgoingMessage.objects.get(id_message=fast.json()["idMessage"])
    b = OutgoingMessage.objects.get(id_message=slow.json()["idMessage"])
    for field in COMPARED:
        assert getattr(a, field) == getattr(b, field), field
    assert a.status == OutgoingStatus.QUEUED or a.status in {OutgoingStatus.SENT, OutgoingStatus.DELIVERED}


def test_a_rotated_token_is_refused_at_once_and_not_counted(
    live_asgi: LiveServer, sender: Instance, settings: Any
) -> None:
    from instances import ratelimit

    settings.RATE_LIMITS_ENABLED = True
    settings.REDIS_URL = ""  # this process's counters, so the test can read them
    ratelimit.reset()
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "hi"}
    assert post(live_asgi, sender, body).status_code == 200
    old = sender.api_token
    sender.api_token = "f" * 50
    sender.save(update_fields=["api_token"])
    r = post(live_asgi, sender, body, token=old)
    assert r.status_code == 401 and r.json() == {"code": 401, "description": "Unauthorized"}
    assert OutgoingMessage.objects.filter(instance=sender).count() == 1
    assert ratelimit._local[(sender.id, "sendMessage")][1] <= 1  # the refused request was refunded
    assert post(live_asgi, sender, body, token=sender.api_token).status_code == 200


def test_changed_settings_after_the_first_request_are_honoured(live_asgi: LiveServer, sender: Instance) -> None:
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "see https://example.org"}
    first = OutgoingMessage.objects.get(id_message=post(live_asgi, sender, body).json()["idMessage"])
    assert first.type_message == "extendedTextMessage"
    sender.settings["linkPreview"] = False
    sender.save(update_fields=["settings"])
    second = OutgoingMessage.objects.get(id_message=post(live_asgi, sender, body).json()["idMessage"])
    assert second.type_message == "textMessage" and second.request["linkPreview"] is False
    assert lane()._known[sender.id] == (sender.api_token, False)
    sender.settings["markIncomingMessagesReadedOnReply"] = True
    sender.save(update_fields=["settings"])
    third = post(live_asgi, sender, body)  # now the Django path serves it
    assert third.status_code == 200
    assert OutgoingMessage.objects.filter(instance=sender).count() == 3


def test_a_deleted_or_suspended_known_instance_is_refused(live_asgi: LiveServer, sender: Instance) -> None:
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "hi"}
    assert post(live_asgi, sender, body).status_code == 200
    Instance.objects.filter(pk=sender.pk).update(is_suspended=True)
    assert post(live_asgi, sender, body).status_code == 403
    Instance.objects.filter(pk=sender.pk).update(is_suspended=False, is_deleted=True)
    assert post(live_asgi, sender, body).status_code == 403
    assert OutgoingMessage.objects.filter(instance=sender).count() == 1


def test_a_known_instance_answers_errors_in_the_django_order(live_asgi: LiveServer, sender: Instance) -> None:
    good = {"chatId": f"{RECIPIENT}@c.us", "message": "hi"}
    assert post(live_asgi, sender, good).status_code == 200
    bad = {"chatId": "bad", "message": "x"}
    fast = post(live_asgi, sender, bad)
    slow = APIClient().post(method_url(sender, "sendMessage"), bad, format="json")
    assert fast.status_code == slow.status_code == 400
    assert fast.json()["message"] == slow.json()["message"]
    assert post(live_asgi, sender, bad, token="0" * 50).status_code == 401  # auth before the body
    assert OutgoingMessage.objects.filter(instance=sender).count() == 1


def test_the_limit_counts_each_request_once(
    live_asgi: LiveServer, sender: Instance, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from instances import ratelimit

    settings.RATE_LIMITS_ENABLED = True
    settings.REDIS_URL = ""
    settings.RATE_LIMIT_OVERRIDES = {"sendMessage": 3}
    ratelimit.reset()
    # The limiter's clock, frozen mid-window: the five requests count in one window
    # however long they take (the server runs in this process).
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_000.5)
    body = {"chatId": f"{RECIPIENT}@c.us", "message": "hi"}
    codes = [post(live_asgi, sender, body).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert post(live_asgi, sender, body, token="0" * 50).status_code == 401  # auth before the limit
    assert OutgoingMessage.objects.filter(instance=sender).count() == 3


def test_refund_takes_back_one_count_and_never_leaves_a_negative_key(settings: Any) -> None:
    import asyncio
    import random

    import redis

    from instances import ratelimit, registry

    if not settings.REDIS_URL:
        pytest.skip("needs Redis")
    settings.RATE_LIMITS_ENABLED = True
    spec = registry.BY_NAME["sendMessage"]
    instance_id = random.randrange(10**12, 10**13)  # no test instance has it
    client = redis.Redis.from_url(settings.REDIS_URL)

    async def scenario() -> tuple[int, int | None]:
        ratelimit._aio_counters.clear()
        ratelimit._aio_refunds.clear()
        allowed, bucket = await ratelimit.count_async(instance_id, spec)
        assert allowed and bucket is not None
        await ratelimit.count_async(instance_id, spec)
        await ratelimit.refund_async(instance_id, spec, bucket)
        key = f"rl:{instance_id}:sendMessage:{bucket}"
        value = int(client.get(key) or 0)
        client.delete(key)
        await ratelimit.refund_async(instance_id, spec, bucket)  # after the window's key is gone
        return value, client.get(key)

    try:
        assert asyncio.run(scenario()) == (1, None)
    finally:
        ratelimit._aio_counters.clear()
        ratelimit._aio_refunds.clear()


@pytest.mark.parametrize(
    "body",
    [
        {"chatId": f"{RECIPIENT}@c.us", "message": "hi"},
        {"chatId": "120363043968066561@g.us", "message": "group"},
        {"chatId": "79001234567-1581234048@g.us", "message": "old group"},
        {"chatId": "123456789012345@lid", "message": "lid"},
        {"chatId": f"{RECIPIENT}@c.us", "message": " "},
        {"chatId": f"{RECIPIENT}@c.us", "message": "x" * 20_000},
        {"chatId": f"{RECIPIENT}@c.us", "message": "x" * 20_001},
        {"chatId": f"{RECIPIENT}@c.us", "message": ""},
        {"chatId": f"{RECIPIENT}@c.us", "message": "nul\x00"},
        {"chatId": f"{RECIPIENT}@c.us", "message": "half \ud800 pair"},
        {"chatId": f"{RECIPIENT}@c.us", "message": "emoji 😀 and ünïcode"},
        {"chatId": f"{RECIPIENT}@c.us", "message": 5},
        {"chatId": f"{RECIPIENT}@c.us", "message": None},
        {"chatId": int(RECIPIENT), "message": "x"},
        {"chatId": "1234@c.us", "message": "x"},
        {"chatId": f"{RECIPIENT}@s.whatsapp.net", "message": "x"},
        {"chatId": f"{RECIPIENT}@c.us\n", "message": "x"},
        {"chatId": "1" * 101 + "@c.us", "message": "x"},
        {"chatId": f"{RECIPIENT}@c.us"},
        {"chatId": f"{RECIPIENT}@c.us", "text": "x"},
        {"chatId": f"{RECIPIENT}@c.us", "message": "x", "linkPreview": False},
        [{"chatId": f"{RECIPIENT}@c.us", "message": "x"}],
        "chatId",
    ],
)
def test_quick_validation_agrees_with_the_serializer(body: Any) -> None:
    from instances.http import WireError
    from messaging.api import SendMessage
    from messaging.fastlane import quick_validate

    quick = quick_validate(body)
    try:
        full: Any = SendMessage().validate(body)
    except WireError:
        full = None
    if quick is not None:  # when it answers, it answers what the serializer does
        assert full is not None and dict(full) == quick
    elif isinstance(body, dict) and set(body) == {"chatId", "message"} and full is not None:
        pytest.fail(f"a plain valid body was left to the serializer: {body!r}")


def test_a_dead_database_connection_is_a_json_503_and_the_next_request_recovers(
    live_asgi: LiveServer, sender: Instance
) -> None:
    """What a PostgreSQL restart does to the edge: its connections die. The request
    that meets one answers GREEN-API's JSON 503 with Retry-After (nothing written),
    and the dead ones are dropped at once, so the next request succeeds."""
    from django.db import connection

    body = {"chatId": f"{RECIPIENT}@c.us", "message": "warm"}
    for _ in range(3):
        assert post(live_asgi, sender, body).status_code == 200
    with connection.cursor() as cursor:  # every other backend of this database: the edge's among them
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    before = OutgoingMessage.objects.count()
    failed = post(live_asgi, sender, {"chatId": f"{RECIPIENT}@c.us", "message": "during"})
    assert failed.status_code == 503, failed.text
    assert failed.headers["retry-after"] == "5"
    assert failed.json()["statusCode"] == 503 and "database" in failed.json()["message"]
    assert OutgoingMessage.objects.count() == before
    after = post(live_asgi, sender, {"chatId": f"{RECIPIENT}@c.us", "message": "after"})
    assert after.status_code == 200, after.text


def test_a_known_instance_s_archive_chat_still_archives(live_asgi: LiveServer, sender: Instance) -> None:
    """archiveChat writes the chat list in the send's transaction (the Django path):
    an instance the fast lane already knows must not lose it on the one-statement try."""
    chat = f"{RECIPIENT}@c.us"
    assert post(live_asgi, sender, {"chatId": chat, "message": "first"}).status_code == 200  # now known
    r = post(live_asgi, sender, {"chatId": chat, "message": "bye", "archiveChat": True})
    assert r.status_code == 200
    archived = {c["id"]: c["archive"] for c in APIClient().get(method_url(sender, "getChats")).json()}
    assert archived.get(chat) is True
