"""Posting, deleting and tracking our statuses (API.md §9.7).

A status is queued like a message (``messaging.services.send`` to
``status@broadcast``): the 200 means the row is committed, the drain posts it
through the engine, which answers with the audience it reached. Receipts then come
from the engine's session per viewer (``record_status_receipt``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from engines import registry as engine_registry
from engines.contract import STATUS_BROADCAST, NotSupportedYet, TransportError
from engines.events import StatusPostedEvent, StatusViewEvent
from engines.registry import get_transport
from instances.guards import check_authorized
from instances.models import Instance
from journals.models import ChangeKind, MessageChange
from messaging import services as messaging
from messaging.models import PENDING_STATUSES, OutgoingMessage, OutgoingStatus
from statuses.models import RECEIPT_ORDER, STATISTICS_RETENTION, ReceiptStatus, StatusReceipt

log = logging.getLogger(__name__)

STATUS_METHODS = ("sendTextStatus", "sendVoiceStatus", "sendMediaStatus")


class StatusError(Exception):
    """A status request the account cannot carry out (answered with a 400)."""


def check_engine(instance: Instance, method: str) -> None:
    """Statuses need an engine that can post them: refuse at once (a 400) rather
    than accept a status that would only fail in the queue."""
    try:
        get_transport(instance)
    except NotSupportedYet as exc:
        raise StatusError(f"{method} is not supported by the {instance.engine} engine") from exc


def send_status(
    *,
    instance: Instance,
    method: str,
    type_message: str,
    request: dict[str, Any],
    payload: dict[str, Any],
    is_file: bool,
    idempotency_key: str = "",
) -> OutgoingMessage:
    """Queue a status (one of ``STATUS_METHODS``); it waits in the send queue like
    a message (showMessagesQueue lists it, clearMessagesQueue drops it)."""
    check_engine(instance, method)
    why = engine_registry.spec(instance.engine).refuses_status_participants
    if why and payload.get("participants"):
        raise StatusError(why)
    return messaging.send(
        instance=instance,
        method=method,
        chat_id=STATUS_BROADCAST,
        type_message=type_message,
        request=request,
        payload=payload,
        is_file=is_file,
        idempotency_key=idempotency_key,
    )


def our_status(instance: Instance, id_message: str) -> OutgoingMessage | None:
    return OutgoingMessage.objects.filter(
        instance=instance, chat_id=STATUS_BROADCAST, id_message=id_message, method__in=STATUS_METHODS
    ).first()


def is_deleted(instance_id: int, id_message: str) -> bool:
    return MessageChange.objects.filter(
        instance_id=instance_id, chat_id=STATUS_BROADCAST, id_message=id_message, kind=ChangeKind.DELETED
    ).exists()


def delete_status(instance: Instance, *, id_message: str) -> None:
    """deleteStatus: revoke one of our statuses. A status still in the send queue
    never leaves it (it fails with a description); a posted one is revoked through
    the engine, so its viewers stop seeing it. The journal marks it deleted either
    way (``MessageChange``: getOutgoingStatuses shows ``isDeleted``)."""
    check_engine(instance, "deleteStatus")
    status = our_status(instance, id_message)
    if status is None:
        raise StatusError(f"status {id_message} not found")
    if is_deleted(instance.pk, id_message):
        return
    now = timezone.now()
    with transaction.atomic():
        pulled = OutgoingMessage.objects.filter(pk=status.pk, status=OutgoingStatus.QUEUED).update(
            status=OutgoingStatus.SENDING, claimed_at=now
        )
        if pulled:
            messaging.record_status(status.pk, OutgoingStatus.FAILED, "The status was deleted before it was posted")
        elif status.status in PENDING_STATUSES:
            raise StatusError("the status is being posted right now; try again in a moment")
        elif status.status in (OutgoingStatus.SENT, OutgoingStatus.DELIVERED, OutgoingStatus.READ):
            check_authorized(instance)
            try:
                get_transport(instance).delete_status(id_message=id_message)
            except TransportError as exc:
                raise StatusError(f"the status could not be deleted: {exc}") from exc
        MessageChange.objects.get_or_create(
            instance_id=instance.pk,
            chat_id=STATUS_BROADCAST,
            id_message=id_message,
            kind=ChangeKind.DELETED,
            actor="",
            defaults={"timestamp": now},
        )


def consume_status_posted(pairs: Sequence[tuple[Instance | int, StatusPostedEvent]]) -> None:
    """Statuses the engine posted (``engines.sink``, from the drain inside its
    status transaction): each viewer of the audience starts at ``sent``. Safe to
    repeat (a retried post reports the same audience)."""
    rows = [
        StatusReceipt(
            instance_id=target if isinstance(target, int) else target.pk,
            id_message=event.id_message,
            participant=participant,
            timestamp=event.timestamp,
            created_at=event.timestamp,
        )
        for target, event in pairs
        for participant in event.audience
    ]
    if rows:
        StatusReceipt.objects.bulk_create(rows, ignore_conflicts=True)


def record_status_receipt(
    *, instance_id: int, id_message: str, participant: str, status: ReceiptStatus, moment: datetime
) -> bool:
    """A viewer's receipt for one of our statuses: its statistic moves forward
    (never back), and the status as a whole becomes delivered / read with its first
    viewer (outgoingMessageStatus, getOutgoingStatuses' statusMessage)."""
    with transaction.atomic():
        row = (
            StatusReceipt.objects.select_for_update()
            .filter(instance_id=instance_id, id_message=id_message, participant=participant)
            .first()
        )
        if row is None:
            row = StatusReceipt(instance_id=instance_id, id_message=id_message, participant=participant, created_at=moment)
        elif RECEIPT_ORDER[ReceiptStatus(row.status)] >= RECEIPT_ORDER[status]:
            return False
        row.status = status
        row.timestamp = moment
        row.save()
        overall = OutgoingStatus.READ if status == ReceiptStatus.READ else OutgoingStatus.DELIVERED
        messaging.record_status_by_id_message(instance_id, id_message, overall)
    return True


def prune_status_statistics() -> int:
    """Statistics are kept 30 days (API.md §9.7)."""
    deleted, _ = StatusReceipt.objects.filter(created_at__lt=timezone.now() - STATISTICS_RETENTION).delete()
    return deleted


def consume_status_views(pairs: Sequence[tuple[Any, StatusViewEvent]]) -> None:
    """The sink's consumer for viewers' receipts (``engines.events.StatusViewEvent``)."""
    for target, event in pairs:
        record_status_receipt(
            instance_id=target if isinstance(target, int) else target.pk,
            id_message=event.id_message,
            participant=event.viewer,
            status=ReceiptStatus(event.status),
            moment=event.timestamp,
        )
