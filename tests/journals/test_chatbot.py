"""GREEN-API's chatbot framework (``whatsapp-chatbot-python``) runs unchanged against
Relay: it checks the settings, empties the queue at startup, routes notifications to
its handlers and answers through sendMessage; the answer reaches the emulated
contact on the network."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from whatsapp_chatbot_python import GreenAPIBot, IncomingCallNotification, Notification

from engines.emulator.models import EmuMessage
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

ANSWER = "Hi! I am a bot running on Relay."


def _stop(bot: GreenAPIBot) -> None:
    """The framework's loop only ends on KeyboardInterrupt (Ctrl+C); raise it from
    its next receiveNotification call."""

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    bot.api.receiving.receiveNotification = interrupted


@pytest.fixture
def bot_for(live_asgi: LiveServer, ticking_runner: Runner) -> Iterator[Any]:
    started: list[tuple[GreenAPIBot, threading.Thread]] = []

    def start(instance: Instance, setup: Any) -> GreenAPIBot:
        bot = GreenAPIBot(str(instance.id), instance.api_token, host=live_asgi.url, media=live_asgi.url)
        setup(bot)
        thread = threading.Thread(target=bot.run_forever, name="chatbot", daemon=True)
        thread.start()
        started.append((bot, thread))
        return bot

    yield start
    for bot, thread in started:
        _stop(bot)
        thread.join(timeout=20)
        assert not thread.is_alive(), "the bot did not stop"


def test_the_bot_answers_an_emulated_contact(live_asgi: LiveServer, bot_for: Any) -> None:
    instance = notifying_instance()
    control = Control(live_asgi, instance)
    control.incoming("textMessage", message="old news")  # the bot drops this at startup
    wait_for(lambda: queued_types(instance))
    handled: list[str] = []
    calls: list[tuple[str | None, str | None]] = []

    def setup(bot: GreenAPIBot) -> None:
        @bot.router.message(text_message="hello")
        def greet(notification: Notification) -> None:
            handled.append(str(notification.message_text))
            notification.answer(ANSWER)

        @bot.router.incoming_call()
        def on_call(notification: IncomingCallNotification) -> None:
            calls.append((notification.call.sender, notification.call.status))

    bot_for(instance, setup)
    wait_for(lambda: not queued_types(instance))  # startup emptied the queue

    control.incoming("textMessage", message="hello", name="John")
    answer = wait_for(
        lambda: EmuMessage.objects.filter(
            sender=instance.phone, recipient=CONTACT, via_instance=instance.id
        ).first(),
        timeout=30,
    )
    assert answer.message_data == {"typeMessage": "textMessage", "textMessageData": {"textMessage": ANSWER}}
    assert answer.chat_id == CONTACT_WID
    assert handled == ["hello"]

    control.post("calls", {"phoneNumber": CONTACT, "outcome": "declined"})
    wait_for(lambda: len(calls) == 2, timeout=30)
    assert calls == [(CONTACT_WID, "offer"), (CONTACT_WID, "declined")]


def test_the_bot_turns_on_message_notifications(live_asgi: LiveServer, bot_for: Any) -> None:
    instance = notifying_instance(
        incomingWebhook=False, outgoingMessageWebhook=False, outgoingAPIMessageWebhook=False
    )
    bot_for(instance, lambda bot: None)
    instance.refresh_from_db()
    assert instance.setting("incomingWebhook") is True
    assert instance.setting("outgoingMessageWebhook") is True
    assert instance.setting("outgoingAPIMessageWebhook") is True
