"""Send-queue tasks. They take an instance id, call one service and are safe to run
twice (the drain lock and row claims make duplicates no-ops)."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from celery import Task, shared_task

from instances import coalesce
from instances.transport import TransportError
from messaging import services

DRAIN_WAKE = "drain"  # instances.coalesce kind of the drain tasks
TRANSIENT_RETRY_SECONDS = 10.0


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def drain_queue_task(self: Task[Any, Any], instance_id: int) -> None:
    coalesce.clear_pending(DRAIN_WAKE, [instance_id])  # before reading the queue: no lost wake-up
    try:
        wait = services.drain_queue(instance_id, _worker_id())
    except TransportError as exc:
        if self.request.is_eager:
            return  # inline (tests): no clock to back off on; recover_queues retries
        # The row went back to the queue head; retry the drain with backoff.
        countdown = min(300, 2 ** min(self.request.retries, 8))
        raise self.retry(exc=exc, countdown=countdown) from exc
    if wait is not None:
        services.wake_queue(instance_id, countdown=wait)


@shared_task(acks_late=True, ignore_result=True)
def drain_queues_task(instance_ids: list[int]) -> None:
    """A sweep over several instances (services.drain_queues). Each instance's
    leftovers are re-woken: more ready now, a paced next message, or a transient
    engine error (retried after TRANSIENT_RETRY_SECONDS; beat's recovery is the net)."""
    coalesce.clear_pending(DRAIN_WAKE, instance_ids)  # before reading the queues: no lost wake-up
    report = services.drain_queues(instance_ids, _worker_id())
    again = [i for i, wait in report.waits.items() if wait == 0.0 and i not in report.errors]
    for instance_id, wait in report.waits.items():
        if wait and instance_id not in report.errors:
            services.wake_queue(instance_id, countdown=wait)
    for instance_id in report.errors:
        services.wake_queue(instance_id, countdown=TRANSIENT_RETRY_SECONDS)
    if again:
        services.wake_queues(again)


@shared_task(acks_late=True, ignore_result=True)
def recover_queues_task() -> dict[str, int]:
    return services.recover_queues()


@shared_task(acks_late=True, ignore_result=True)
def delete_expired_files_task() -> int:
    """Sent files live 15 days (their urlFile links expire with them)."""
    from messaging import media

    return media.delete_expired_files()
