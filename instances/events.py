"""The only module that pushes to listeners (channel layer, long-poll wake-ups). Pushes happen on commit, so a
listener never sees a change that was rolled back. Payloads are TypedDicts.

Consumers re-read the database when woken, so a lost push (in-memory layer across
processes, Redis restart) only delays them by their polling interval.
"""

from __future__ import annotations

import logging
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


class StateChanged(TypedDict):
    type: str  # "state.changed" → consumer method state_changed
    instance_id: int
    state: str


class AccountChanged(TypedDict):
    type: str  # "account.changed" → consumer method account_changed
    account_id: int


class JournalChanged(TypedDict):
    type: str  # "journal.changed" → consumer method journal_changed
    instance_id: int
    topic: str  # one of JOURNAL_TOPICS
    chat_id: str  # the chat concerned ("" when unknown or not a chat)


# What a journal push is about: the chat view (messages and their statuses), the
# notification queue, the webhook delivery log.
JOURNAL_TOPICS = ("chat", "notifications", "webhooks")


def instance_group(instance_id: int) -> str:
    return f"instance.{instance_id}"


def account_group(account_id: int) -> str:
    """Cabinet pages of one account listen here for instances created, renamed or deleted."""
    return f"account.{account_id}"


def _send(group: str, payload: StateChanged | AccountChanged | JournalChanged) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, dict(payload))
    except Exception:  # noqa: BLE001 - a push is a hint; the database stays the truth
        log.warning("channel layer push to %s failed", group, exc_info=True)


def state_changed(instance_id: int, state: str) -> None:
    payload = StateChanged(type="state.changed", instance_id=instance_id, state=state)
    transaction.on_commit(lambda: _send(instance_group(instance_id), payload))


def account_changed(account_id: int) -> None:
    """The account's instance list changed (create, rename, delete): live lists re-read it."""
    payload = AccountChanged(type="account.changed", account_id=account_id)
    transaction.on_commit(lambda: _send(account_group(account_id), payload))


def notification_added(instance_id: int) -> None:
    """Wake receiveNotification waiters (instances.wakeups) once committed."""
    from instances import wakeups

    transaction.on_commit(lambda: wakeups.publish(instance_id))


def journal_changed(instance_id: int, topic: str, chat_id: str = "") -> None:
    """Something a cabinet page lists changed (a message or its status, a
    notification, a webhook attempt): open pages re-read it once committed. A hint
    only: the pages also re-read on a slow timer, so a push lost (or never sent, by
    a bulk write) only delays them."""
    if topic not in JOURNAL_TOPICS:
        raise ValueError(f"unknown journal topic {topic!r}")
    payload = JournalChanged(type="journal.changed", instance_id=instance_id, topic=topic, chat_id=chat_id)
    transaction.on_commit(lambda: _send(instance_group(instance_id), payload))


def webhook_attempts_logged(instance_id: int) -> None:
    """Webhook attempts of the instance were recorded (``journals.webhooks`` logs
    them with bulk_create, which fires no model signal, so the writer calls this)."""
    journal_changed(instance_id, "webhooks")
