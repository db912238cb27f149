"""Live cabinet pages: turn committed journal writes into ``instances.events`` pushes.

A true decoupling (STYLE: signals only for cache-like side effects): the services
that write messages, statuses, notifications and webhook attempts do not know the
cabinet exists, and the cabinet only needs a hint that "something changed" to
re-read the database. Every receiver is cheap, pushes on commit and never raises:
a failed hint must never break the write that caused it.

Not every write fires a signal: the sendMessage fast lane inserts with raw SQL,
status and queue changes use ``QuerySet.update()``, and webhook attempts are logged
with ``bulk_create``. Pages therefore also re-read on a slow timer
(``LIVE_FALLBACK_SECONDS`` in the templates), so those writes show up a little later
instead of never.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save

from instances import events
from journals.models import JournalMessage, Notification, WebhookAttempt
from messaging.models import MessageStatusChange, OutgoingMessage

log = logging.getLogger(__name__)


def _safely(push: Any, *args: Any) -> None:
    try:
        push(*args)
    except Exception:  # noqa: BLE001 - a live-page hint must never fail the write
        log.debug("dashboard push failed", exc_info=True)


def journal_message_saved(sender: Any, instance: JournalMessage, created: bool, **kwargs: Any) -> None:
    if created:
        _safely(events.journal_changed, instance.instance_id, "chat", instance.chat_id)


def outgoing_message_saved(sender: Any, instance: OutgoingMessage, created: bool, **kwargs: Any) -> None:
    if created:
        _safely(events.journal_changed, instance.instance_id, "chat", instance.chat_id)


def _push_status_change(message_id: int) -> None:
    # Runs after the commit, outside the writer's transaction: the one-row lookup
    # does not lengthen the lock the status writer holds.
    row = OutgoingMessage.objects.filter(pk=message_id).values_list("instance_id", "chat_id").first()
    if row is not None:
        events.journal_changed(row[0], "chat", row[1])


def status_change_saved(sender: Any, instance: MessageStatusChange, created: bool, **kwargs: Any) -> None:
    if created:
        message_id = instance.message_id
        _safely(transaction.on_commit, lambda: _safely(_push_status_change, message_id))


def notification_saved(sender: Any, instance: Notification, created: bool, **kwargs: Any) -> None:
    _safely(events.journal_changed, instance.instance_id, "notifications")


def webhook_attempt_saved(sender: Any, instance: WebhookAttempt, created: bool, **kwargs: Any) -> None:
    _safely(events.journal_changed, instance.instance_id, "webhooks")


def connect() -> None:
    """Called once from ``DashboardConfig.ready``."""
    post_save.connect(journal_message_saved, sender=JournalMessage, dispatch_uid="dashboard.journal_message")
    post_save.connect(outgoing_message_saved, sender=OutgoingMessage, dispatch_uid="dashboard.outgoing_message")
    post_save.connect(status_change_saved, sender=MessageStatusChange, dispatch_uid="dashboard.status_change")
    post_save.connect(notification_saved, sender=Notification, dispatch_uid="dashboard.notification")
    post_save.connect(webhook_attempt_saved, sender=WebhookAttempt, dispatch_uid="dashboard.webhook_attempt")
