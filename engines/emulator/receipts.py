"""Simulated contacts acknowledge what our instances sent them: delivered after
``EMULATOR_DELIVERED_AFTER_SECONDS``, read after ``EMULATOR_READ_AFTER_SECONDS``.

The emulator's own network rows (``EmuMessage.delivered_at`` / ``read_at``) are the
truth; each change is reported to the sender instance as a ``ReceiptEvent``.
Messages to phones linked to one of our instances are acknowledged by that
instance's session instead (delivered when it takes them in, read when it reads
the chat): see ``engines.emulator.session``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from engines import sink
from engines.emulator.models import EmuMessage
from engines.events import ReceiptEvent, ReceiptStatus
from instances.models import Engine, Instance

# At most this many receipts of each kind per tick: a backlog drains over ticks.
BATCH = 1000


def emulate_receipts(runner_id: str, *, delivered_after: float, read_after: float) -> int:
    """Acknowledge what the instances this runner leases sent to simulated contacts
    and groups. A second runner doing the same is harmless: the stamps are
    conditional and the consumers never move a message backwards. Returns how many
    receipts were reported."""
    now = timezone.now()
    linked = Instance.objects.filter(engine=Engine.EMULATOR, is_deleted=False).exclude(phone="").values("phone")
    mine = Instance.objects.filter(lease__runner_id=runner_id, engine=Engine.EMULATOR).values("pk")
    # A personal message to a simulated contact, or the sender's copy of a group
    # message (``recipient=""``); members' copies are acknowledged by the group.
    ours = EmuMessage.objects.filter(via_instance__in=mine, read_at__isnull=True).filter(
        Q(recipient="") | (~Q(chat_id__endswith="@g.us") & ~Q(recipient__in=linked))
    )
    steps: tuple[tuple[QuerySet[EmuMessage], ReceiptStatus, str, float], ...] = (
        (ours.filter(delivered_at__isnull=True), "delivered", "delivered_at", delivered_after),
        # A message whose timer ran out is gone from the contact's phone: never read.
        (ours.filter(delivered_at__isnull=False).exclude(expires_at__lte=now), "read", "read_at", read_after),
    )
    # Both kinds are read before either is stamped, so a message delivered by this
    # tick is read at the earliest by the next one (delivered always comes first).
    batches = [
        (
            status,
            stamp,
            list(
                rows.filter(created_at__lte=now - timedelta(seconds=after))
                .order_by("created_at", "id")
                .values_list("sender", "via_instance", "id_message")[:BATCH]
            ),
        )
        for rows, status, stamp, after in steps
    ]
    if not any(due for _, _, due in batches):
        return 0
    # One transaction and one sink batch for both kinds and every instance: the
    # consumers' fixed costs (locks, notification cursors, commit, wake-ups per
    # instance) are paid once per tick, not once per kind.
    with transaction.atomic():
        for _, stamp, due in batches:
            if due:
                _stamp_copies([(sender, id_message) for sender, _, id_message in due], stamp, now)
        sink.emit_many(
            [
                (via_instance, ReceiptEvent(id_message, status, now))
                for status, _, due in batches
                for _, via_instance, id_message in due
                if via_instance is not None
            ]
        )
    return sum(len(due) for _, _, due in batches)


def _stamp_copies(messages: list[tuple[str, str]], stamp: str, now: datetime) -> None:
    """Set ``stamp`` on every copy of these (sender, id_message) messages (a group
    message has one per member) that lacks it: on PostgreSQL one UPDATE for all
    senders (a tick covers every instance the runner leases), elsewhere one per
    sender."""
    column = {"delivered_at": "delivered_at", "read_at": "read_at"}[stamp]  # the two stamp columns
    if connection.vendor == "postgresql":
        table = EmuMessage._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET {column} = %s WHERE {column} IS NULL AND (sender, id_message) IN"  # noqa: S608 - names from the model
                " (SELECT * FROM unnest(%s::varchar[], %s::varchar[]))",
                [now, [sender for sender, _ in messages], [id_message for _, id_message in messages]],
            )
        return
    by_sender: dict[str, list[str]] = {}
    for sender, id_message in messages:
        by_sender.setdefault(sender, []).append(id_message)
    for sender, id_messages in by_sender.items():
        EmuMessage.objects.filter(sender=sender, id_message__in=id_messages, **{f"{column}__isnull": True}).update(
            **{column: now}
        )
