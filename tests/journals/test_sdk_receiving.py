"""The official SDK (``whatsapp-api-client-python``) receives from us unchanged: its
receiveNotification / deleteNotification calls, downloadFile, and its
``webhooks.startReceivingNotifications`` polling loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from whatsapp_api_client_python import API

from instances.models import Instance
from instances.runner import Runner
from tests.conftest import LiveServer
from tests.journals.emulated import (
    CONTACT,
    CONTACT_WID,
    Control,
    notifying_instance,
    queued_types,
    ticking_runner,
    wait_for,
)

__all__ = ["ticking_runner"]  # a fixture, used by name


def sdk(live: LiveServer, instance: Instance) -> Any:
    return API.GreenAPI(str(instance.id), instance.api_token, host=live.url, media=live.url)


def test_receive_and_delete(live_asgi: LiveServer, ticking_runner: Runner) -> None:
    instance = notifying_instance()
    id_message = Control(live_asgi, instance).incoming("textMessage", message="hello SDK")
    api = sdk(live_asgi, instance)
    response = wait_for(lambda: api.receiving.receiveNotification(receiveTimeout=5).data)
    body = response["body"]
    assert body["typeWebhook"] == "incomingMessageReceived"
    assert body["idMessage"] == id_message
    assert body["senderData"]["chatId"] == CONTACT_WID
    again = api.receiving.receiveNotification().data
    assert again["receiptId"] == response["receiptId"]
    deleted = api.receiving.deleteNotification(response["receiptId"])
    assert deleted.code == 200 and deleted.data == {"result": True}
    assert api.receiving.deleteNotification(response["receiptId"]).data == {"result": False}
    assert queued_types(instance) == []


def test_download_file(live_asgi: LiveServer, ticking_runner: Runner, settings: Any) -> None:
    settings.RELAY_MEDIA_URL = live_asgi.url
    instance = notifying_instance()
    id_message = Control(live_asgi, instance).incoming("audioMessage")
    api = sdk(live_asgi, instance)
    body = wait_for(lambda: api.receiving.receiveNotification(receiveTimeout=5).data)["body"]
    link = api.receiving.downloadFile(CONTACT_WID, id_message)
    assert link.code == 200
    assert link.data == {"downloadUrl": body["messageData"]["fileMessageData"]["downloadUrl"]}


def test_the_notification_loop(live_asgi: LiveServer, ticking_runner: Runner) -> None:
    instance = notifying_instance()
    control = Control(live_asgi, instance)
    api = sdk(live_asgi, instance)
    seen: list[tuple[str, dict[str, Any]]] = []
    done = threading.Event()

    def handler(type_webhook: str, body: dict[str, Any]) -> None:
        seen.append((type_webhook, body))
        if len(seen) >= 4:
            done.set()
            api.webhooks.stopReceivingNotifications()

    loop = threading.Thread(target=api.webhooks.startReceivingNotifications, args=(handler,), daemon=True)
    loop.start()
    try:
        control.incoming("textMessage", message="one")
        control.incoming("imageMessage", caption="two")
        control.post("calls", {"phoneNumber": CONTACT, "outcome": "pickUp"})
        assert done.wait(30), f"the loop saw {[t for t, _ in seen]}"
    finally:
        api.webhooks.stopReceivingNotifications()
        loop.join(timeout=15)
    assert not loop.is_alive()
    assert [t for t, _ in seen] == [
        "incomingMessageReceived",
        "incomingMessageReceived",
        "incomingCall",
        "incomingCall",
    ]
    assert seen[0][1]["messageData"]["textMessageData"]["textMessage"] == "one"
    assert seen[1][1]["messageData"]["fileMessageData"]["caption"] == "two"
    assert [body["status"] for _, body in seen[2:]] == ["offer", "pickUp"]
    # The loop deleted what it handled; the journals keep the messages.
    assert queued_types(instance) == []
    assert instance.journal_messages.count() == 2
    assert instance.calls.get().status == "pickUp"


@pytest.mark.parametrize("kind", ["textMessage", "pollMessage"])
def test_sdk_handles_each_kind(live_asgi: LiveServer, ticking_runner: Runner, kind: str) -> None:
    instance = notifying_instance()
    fields = {"message": "Q?", "options": ["a", "b"]} if kind == "pollMessage" else {"message": "plain"}
    Control(live_asgi, instance).incoming(kind, **fields)
    api = sdk(live_asgi, instance)
    body = wait_for(lambda: api.receiving.receiveNotification(receiveTimeout=5).data)["body"]
    assert body["messageData"]["typeMessage"] == kind


def test_async_delete_sends_the_receipt_id_as_the_body(live_asgi: LiveServer, ticking_runner: Runner) -> None:
    """The async client's ``DELETE …/deleteNotification/{token}/`` with the bare
    receiptId as its JSON body deletes like the path form."""
    instance = notifying_instance()
    Control(live_asgi, instance).incoming("textMessage", message="hello async SDK")
    api = sdk(live_asgi, instance)
    receipt_id = wait_for(lambda: api.receiving.receiveNotification(receiveTimeout=5).data)["receiptId"]
    deleted = asyncio.run(api.receiving.deleteNotificationAsync(receipt_id))
    assert deleted.code == 200 and deleted.data == {"result": True}
    assert queued_types(instance) == []
    again = asyncio.run(api.receiving.deleteNotificationAsync(receipt_id))
    assert again.code == 200 and again.data == {"result": False}
