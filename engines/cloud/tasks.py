"""Taking in Meta's webhook deliveries (``CloudInbox``) off the request path."""

from __future__ import annotations

import logging

from celery import shared_task

from engines.cloud import inbound
from engines.cloud.models import CloudInbox

log = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def take_in_inbox_task(instance_id: int) -> int:
    """The instance's queued deliveries, in order; safe to run twice (see
    ``inbound.take_in_queued``)."""
    return inbound.take_in_queued(instance_id)


@shared_task(acks_late=True, ignore_result=True)
def offer_inboxes_task() -> int:
    """Beat: offer again every instance with deliveries left behind (a worker died,
    the broker was down when the webhook answered, or a delivery failed and waits for
    its retry)."""
    waiting = list(CloudInbox.objects.filter(dead=False).values_list("instance_id", flat=True).distinct())
    for instance_id in waiting:
        offer_inbox(instance_id)
    return len(waiting)


def offer_inbox(instance_id: int) -> None:
    """Ask a worker to take the instance's deliveries in. A broker that is down only
    delays them: the row is committed, and the beat offers it again."""
    try:
        take_in_inbox_task.delay(instance_id)
    except Exception as exc:  # noqa: BLE001 - the broker's errors vary by transport
        log.warning("cloud instance %s: take-in not queued (%s); the beat will offer it", instance_id, exc)
