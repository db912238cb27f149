import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from rest_framework.test import APIClient

from engines.events import MessageEvent
from instances.models import Instance
from journals.models import Notification
from journals.services import ingest_event
from tests.conftest import LiveServer, method_url
from tests.factories import make_instance


def incoming(instance: Instance, text: str = "hi", id_message: str = "A1") -> MessageEvent:
    return MessageEvent(
        direction="incoming",
        chat_id="79001234567@c.us",
        id_message=id_message,
        sender="79001234567@c.us",
        sender_name="John",
        chat_name="John",
        sender_contact_name="John Doe",
        message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": text}},
        timestamp=timezone.now(),
    )


def enable(instance: Instance, **flags: Any) -> Instance:
    instance.settings.update({"incomingWebhook": True, **flags})
    instance.save(update_fields=["settings"])
    return instance


def test_empty_queue_answers_null_after_the_timeout(live_asgi: LiveServer) -> None:
    instance = make_instance(authorized=True)
    started = time.monotonic()
    r = httpx.get(f"{live_asgi.url}{method_url(instance, 'receiveNotification')}?receiveTimeout=5", timeout=30)
    assert r.status_code == 200
    assert r.text == "null"
    assert 4.5 <= time.monotonic() - started < 8


def test_head_is_returned_until_deleted(api_client: APIClient, live_asgi: LiveServer) -> None:
    instance = enable(make_instance(authorized=True))
    ingest_event(instance, incoming(instance, "first", "A1"))
    ingest_event(instance, incoming(instance, "second", "A2"))
    url = f"{live_asgi.url}{method_url(instance, 'receiveNotification')}"
    first = httpx.get(url, timeout=30).json()
    again = httpx.get(url, timeout=30).json()
    assert first == again
    assert first["body"]["typeWebhook"] == "incomingMessageReceived"
    assert first["body"]["messageData"]["textMessageData"]["textMessage"] == "first"
    assert first["body"]["instanceData"] == {"idInstance": instance.id, "wid": instance.wid, "typeInstance": "whatsapp"}
    assert first["body"]["senderData"] == {
        "chatId": "79001234567@c.us",
        "chatName": "John",
        "sender": "79001234567@c.us",
        "senderName": "John",
        "senderContactName": "John Doe",
    }
    r = httpx.delete(f"{live_asgi.url}{method_url(instance, 'deleteNotification', extra=str(first['receiptId']))}")
    assert r.json() == {"result": True}
    second = httpx.get(url, timeout=30).json()
    assert second["receiptId"] > first["receiptId"]
    assert second["body"]["messageData"]["textMessageData"]["textMessage"] == "second"
    r = httpx.delete(f"{live_asgi.url}{method_url(instance, 'deleteNotification', extra=str(first['receiptId']))}")
    assert r.json() == {"result": False}


@pytest.mark.asyncio
async def test_waiter_wakes_within_milliseconds_of_a_commit(live_asgi: LiveServer) -> None:
    instance = await sync_to_async(lambda: enable(make_instance(authorized=True)))()
    url = f"{live_asgi.url}{method_url(instance, 'receiveNotification')}?receiveTimeout=20"
    async with httpx.AsyncClient(timeout=30) as client:
        waiter = asyncio.create_task(client.get(url))
        await asyncio.sleep(0.5)
        assert not waiter.done()
        sent_at = time.monotonic()
        await sync_to_async(ingest_event)(instance, incoming(instance, "wake"))
        r = await waiter
        woke_after = time.monotonic() - sent_at
    assert r.json()["body"]["messageData"]["textMessageData"]["textMessage"] == "wake"
    assert woke_after < 1.5  # in-process wake (Redis pub/sub in CI), not the 20 s timeout


def test_settings_switch_notifications_off(db: None) -> None:
    instance = make_instance(authorized=True)  # every flag "no"
    assert ingest_event(instance, incoming(instance)) is None
    assert not Notification.objects.filter(instance=instance, type_webhook="incomingMessageReceived").exists()


def test_a_duplicate_message_event_yields_one_notification(db: None) -> None:
    instance = enable(make_instance(authorized=True))
    assert ingest_event(instance, incoming(instance)) is not None
    assert ingest_event(instance, incoming(instance)) is None


def test_receipt_ids_increase_per_instance(db: None) -> None:
    a = enable(make_instance(authorized=True))
    b = enable(make_instance(authorized=True))
    ids_a = [ingest_event(a, incoming(a, id_message=f"X{n}")).receipt_id for n in range(3)]  # type: ignore[union-attr]
    ids_b = [ingest_event(b, incoming(b, id_message=f"X{n}")).receipt_id for n in range(2)]  # type: ignore[union-attr]
    assert ids_a == [ids_a[0], ids_a[0] + 1, ids_a[0] + 2]
    assert ids_b == [ids_b[0], ids_b[0] + 1]


def test_a_notification_is_never_visible_to_another_instance(api_client: APIClient, live_asgi: LiveServer) -> None:
    owner = enable(make_instance(authorized=True))
    other = make_instance(authorized=True)
    note = ingest_event(owner, incoming(owner))
    assert note is not None
    r = httpx.get(f"{live_asgi.url}{method_url(other, 'receiveNotification')}?receiveTimeout=5", timeout=30)
    assert r.text == "null"
    r = httpx.delete(f"{live_asgi.url}{method_url(other, 'deleteNotification', extra=str(note.receipt_id))}")
    assert r.json() == {"result": False}
    r = httpx.get(f"{live_asgi.url}/waInstance{owner.id}/receiveNotification/{other.api_token}", timeout=30)
    assert r.status_code == 401


def test_errors(live_asgi: LiveServer) -> None:
    instance = make_instance(authorized=True)
    base = f"{live_asgi.url}{method_url(instance, 'receiveNotification')}"
    r = httpx.get(base + "?receiveTimeout=4")
    assert r.status_code == 400
    assert json.loads(r.text)["message"] == "Validation failed. Details: 'receiveTimeout' must be larger than or equal to 5"
    assert httpx.get(base + "?receiveTimeout=61").status_code == 400
    assert httpx.post(base).status_code == 404
    assert httpx.options(base).status_code == 204
    assert httpx.get(f"{live_asgi.url}/waInstance{instance.id}/receiveNotification/{'0' * 50}").status_code == 401
    assert httpx.get(f"{live_asgi.url}/waInstance1{instance.id}/receiveNotification/{instance.api_token}").status_code == 403
    r = httpx.delete(f"{live_asgi.url}{method_url(instance, 'deleteNotification', extra='abc')}")
    assert r.status_code == 400
    assert r.json()["message"] == "Parameter receiptId must be a Number"


def test_delete_accepts_the_receipt_id_in_a_json_body(api_client: APIClient, db: None) -> None:
    instance = enable(make_instance(authorized=True))
    note = ingest_event(instance, incoming(instance))
    assert note is not None
    r = api_client.delete(method_url(instance, "deleteNotification"), {"receiptId": note.receipt_id}, format="json")
    assert r.json() == {"result": True}


def test_webhooks_count_and_clear(api_client: APIClient, db: None) -> None:
    instance = enable(make_instance(authorized=True))
    for n in range(3):
        ingest_event(instance, incoming(instance, id_message=f"C{n}"))
    assert api_client.get(method_url(instance, "getWebhooksCount")).json() == {"count": 3}
    assert api_client.delete(method_url(instance, "clearWebhooksQueue")).json() == {"isCleared": True, "reason": ""}
    assert api_client.get(method_url(instance, "getWebhooksCount")).json() == {"count": 0}
    again = api_client.delete(method_url(instance, "clearWebhooksQueue")).json()
    assert again["isCleared"] is False and again["reason"] == "Too many requests" and 0 < again["leftTime"] <= 60


def test_notifications_expire_after_retention_and_are_pruned_later(db: None, settings: Any) -> None:
    from datetime import timedelta

    from journals.models import NotificationState
    from journals.services import expire_notifications, head_notification

    instance = enable(make_instance(authorized=True))
    note = ingest_event(instance, incoming(instance))
    assert note is not None
    Notification.objects.filter(pk=note.pk).update(created_at=timezone.now() - timedelta(hours=25))
    assert head_notification(instance.id) is None  # past 24 h: no longer served
    assert expire_notifications()["expired"] == 1
    assert Notification.objects.get(pk=note.pk).state == NotificationState.EXPIRED
    Notification.objects.filter(pk=note.pk).update(done_at=timezone.now() - timedelta(days=8))
    assert expire_notifications()["deleted"] == 1
    assert not Notification.objects.filter(pk=note.pk).exists()


@pytest.mark.parametrize("body", [None, True, "abc", {"receiptId": "x"}])
def test_the_trailing_slash_form_refuses_what_is_not_a_number(api_client: APIClient, db: None, body: Any) -> None:
    instance = enable(make_instance(authorized=True))
    r = api_client.delete(method_url(instance, "deleteNotification") + "/", body, format="json")
    assert r.status_code == 400
    assert r.json()["message"] == "Parameter receiptId must be a Number"
