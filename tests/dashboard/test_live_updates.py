"""Live cabinet pages: committed journal writes become pushes (dashboard.signals →
instances.events), the instance socket forwards them, pages re-read on them and on a
slow fallback timer."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from dashboard.journal_views import LIVE_FALLBACK_SECONDS
from engines.emulator import pairing
from instances import events, services
from instances.models import Instance, State
from journals.models import Direction, JournalMessage, Notification, WebhookAttempt
from messaging.models import MessageStatusChange, OutgoingMessage
from tests.conftest import LiveServer
from tests.dashboard.test_consumers import frames_until, open_socket, session_cookie
from tests.factories import AccountFactory, make_instance

Pushed = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def pushed(monkeypatch: pytest.MonkeyPatch) -> Pushed:
    """Pushes sent, with every instance watched (an instance page open)."""
    sent: Pushed = []
    monkeypatch.setattr(events, "_send", lambda group, payload: sent.append((group, dict(payload))))
    monkeypatch.setattr(events, "watched", lambda instance_id: True)
    return sent


@pytest.mark.skipif(not __import__("django.conf").conf.settings.REDIS_URL, reason="watch marks live in Redis")
def test_hints_go_only_to_instances_an_open_page_watches(
    instance: Instance, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    """A worker's push costs a fresh event loop and connection: writers skip it for
    instances no page watches, and send it once the page's socket marked it."""
    sent: Pushed = []
    monkeypatch.setattr(events, "_send", lambda group, payload: sent.append((group, dict(payload))))
    events._redis().delete(events._watch_key(instance.id))
    events._watched.clear()
    with django_capture_on_commit_callbacks(execute=True):
        incoming(instance, "UNWATCHED")
    assert journal_pushes(sent) == []
    events.watch(instance.id)
    with django_capture_on_commit_callbacks(execute=True):
        incoming(instance, "WATCHED")
    assert journal_pushes(sent) == [("chat", "79005550301@c.us")]
    events._redis().delete(events._watch_key(instance.id))


def journal_pushes(sent: Pushed) -> list[tuple[str, str]]:
    return [(p["topic"], p["chat_id"]) for _, p in sent if p["type"] == "journal.changed"]


def incoming(instance: Instance, id_message: str = "IN1", chat_id: str = "79005550301@c.us") -> JournalMessage:
    return JournalMessage.objects.create(
        instance=instance, direction=Direction.INCOMING, chat_id=chat_id, id_message=id_message,
        type_message="textMessage", message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": "hi"}},
    )


def test_journal_writes_push_on_commit_only(
    instance: Instance, pushed: Pushed, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        incoming(instance)
    assert pushed == [] and len(callbacks) == 1  # nothing before the commit
    with django_capture_on_commit_callbacks(execute=True):
        incoming(instance, "IN2")
    assert pushed == [(events.instance_group(instance.id), {
        "type": "journal.changed", "instance_id": instance.id, "topic": "chat", "chat_id": "79005550301@c.us",
    })]


def test_every_topic_is_pushed(instance: Instance, pushed: Pushed, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = OutgoingMessage.objects.create(instance=instance, chat_id="79005550302@c.us", method="sendMessage",
                                                 type_message="textMessage")
        note = Notification.objects.create(instance=instance, receipt_id=1, type_webhook="stateInstanceChanged", body={})
        WebhookAttempt.objects.create(notification=note, instance=instance, receipt_id=1, attempt=1, url="https://x")
    with django_capture_on_commit_callbacks(execute=True):
        MessageStatusChange.objects.create(message=message, status="sent")
    assert journal_pushes(pushed) == [
        ("chat", "79005550302@c.us"), ("notifications", ""), ("webhooks", ""), ("chat", "79005550302@c.us"),
    ]


def test_a_failing_push_never_breaks_the_write(
    instance: Instance, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("channel layer down")

    monkeypatch.setattr(events, "journal_changed", broken)
    with django_capture_on_commit_callbacks(execute=True):
        incoming(instance)
        Notification.objects.create(instance=instance, receipt_id=1, type_webhook="stateInstanceChanged", body={})
    assert JournalMessage.objects.filter(instance=instance).exists()


def test_unknown_topics_are_a_programming_error(instance: Instance) -> None:
    with pytest.raises(ValueError):
        events.journal_changed(instance.id, "gossip")


def test_pages_listen_for_pushes_and_keep_a_slow_fallback(owner_client: Client, instance: Instance) -> None:
    chat = owner_client.get(reverse("dashboard:chat", args=[instance.id, "79005550301@c.us"])).content.decode()
    assert f'hx-trigger="relay:journal-chat from:body, every {LIVE_FALLBACK_SECONDS}s"' in chat
    assert 'data-live-chat="79005550301@c.us"' in chat and "every 2s" not in chat
    chats = owner_client.get(reverse("dashboard:chats", args=[instance.id])).content.decode()
    assert "relay:journal-chat from:body" in chats
    queue = owner_client.get(reverse("dashboard:notifications", args=[instance.id])).content.decode()
    assert "relay:journal-notifications from:body" in queue
    services.update_settings(instance, {"webhookUrl": "https://hooks.example/x"})
    log = owner_client.get(reverse("dashboard:webhooks", args=[instance.id])).content.decode()
    assert "relay:journal-webhooks from:body" in log
    # Older pages do not re-read themselves (new rows would not show there anyway).
    older = owner_client.get(reverse("dashboard:webhooks", args=[instance.id]) + "?before=5").content.decode()
    assert "relay:journal-webhooks" not in older


def test_partials_for_live_refresh(owner_client: Client, instance: Instance) -> None:
    incoming(instance)
    Notification.objects.create(instance=instance, receipt_id=4, type_webhook="incomingMessageReceived", body={})
    htmx = {"HTTP_HX_REQUEST": "true"}
    rows = owner_client.get(reverse("dashboard:chats", args=[instance.id]) + "?partial=rows", **htmx).content.decode()
    assert "<html" not in rows and "+79005550301" in rows
    queue = owner_client.get(reverse("dashboard:notifications", args=[instance.id]) + "?partial=rows", **htmx).content.decode()
    assert "<html" not in queue and 'data-receipt-id="4"' in queue and 'data-count="queued">1<' in queue


def test_instance_socket_forwards_journal_hints(live_asgi: LiveServer) -> None:
    account = AccountFactory()
    instance = make_instance(account, authorized=True)
    with open_socket(live_asgi, f"/ws/dashboard/instances/{instance.id}/", session_cookie(account)) as ws:
        frames_until(ws, lambda f: f["type"] == "state")
        incoming(instance, chat_id="79005550303@c.us")
        frame = frames_until(ws, lambda f: f["type"] == "journal")
        assert frame == {"type": "journal", "topic": "chat", "chat_id": "79005550303@c.us"}


def test_list_socket_ignores_journal_hints(live_asgi: LiveServer) -> None:
    account = AccountFactory()
    instance = make_instance(account)
    with open_socket(live_asgi, "/ws/dashboard/", session_cookie(account)) as ws:
        frames_until(ws, lambda f: f["type"] == "state")
        incoming(instance)  # must not break the list socket (no handler error)
        pairing.link_phone(instance, phone="79005550304")
        services.change_state(instance, State.AUTHORIZED)
        assert frames_until(ws, lambda f: f["type"] != "state" or f.get("state") == "authorized")["type"] == "state"
