"""Waking the send queue's drain: the one place that enqueues the drain tasks.

``messaging.tasks`` runs the drain (it calls ``messaging.services``), and services
wake queues after a commit; the tasks are found here by their registered name, so
services never import the tasks module (``messaging.apps`` imports it, which
registers them in every process)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from celery import Task, current_app
from django.conf import settings

from instances import coalesce

log = logging.getLogger(__name__)

DRAIN_WAKE = "drain"  # instances.coalesce kind of the drain tasks


def _task(name: str) -> Task[Any, Any]:
    """A task of ``messaging.tasks`` by name."""
    task: Task[Any, Any] = current_app.tasks[f"messaging.tasks.{name}"]
    return task


def wake_queue(instance_id: int, countdown: float = 0, *, force: bool = False) -> None:
    """Ask a worker to drain the instance's queue (see ``wake_queues``); with a
    countdown, a delayed drain (pacing, retries), never coalesced."""
    drain_queue_task = _task("drain_queue_task")
    if countdown <= 0:
        wake_queues([instance_id], force=force)
        return
    if drain_queue_task.app.conf.task_always_eager:
        return  # eager mode (tests) has no clock: the caller drives time
    try:
        drain_queue_task.apply_async((instance_id,), countdown=countdown, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    except Exception:  # noqa: BLE001 - the database already holds the work
        log.warning("could not enqueue drain for instance %s; beat will recover it", instance_id, exc_info=True)


def wake_queues_later(waits: dict[int, float]) -> None:
    """Ask for a drain of each instance after its wait (pacing, retries). With Redis,
    waits up to coalesce.LATER_MAX_SECONDS go to the drain's timed set, which the
    sweep leader takes from once they are due, so a paced message shares a sweep
    with others; longer waits, and every wait without Redis or when Redis fails,
    are delayed ``drain_queue_task`` runs (``wake_queue`` with a countdown)."""
    waits = {i: wait for i, wait in waits.items() if wait > 0}
    short = {}
    if settings.REDIS_URL and not _task("drain_ready_task").app.conf.task_always_eager:
        short = {i: wait for i, wait in waits.items() if wait <= coalesce.LATER_MAX_SECONDS}
    if short:
        now = time.time()
        lead = coalesce.offer_later(DRAIN_WAKE, {i: now + wait for i, wait in short.items()})
        if lead is None:
            short = {}  # Redis failed: delayed tasks below
        elif lead is True and not publish(_task("drain_ready_task"), ()):
            coalesce.resign(DRAIN_WAKE)  # the next offer starts a leader; beat is the net
    for instance_id, wait in waits.items():
        if instance_id not in short:
            wake_queue(instance_id, countdown=wait)


def wake_queues(instance_ids: Iterable[int], *, force: bool = False) -> None:
    """Ask workers to drain these instances' queues now. Never raises: if the broker
    is down the rows stay queued and ``recover_queues`` wakes them later.

    With Redis the ids go to the drain's ready set (instances.coalesce ``offer``),
    and a leader task is published only when none is running: under load that is
    one Redis round trip per wake-up and no publish at all (messaging.tasks
    ``drain_ready_task``). Without Redis, in eager mode (tests), when Redis fails,
    and with ``force`` (beat), the ids are published directly in sweeps of up to
    SEND_SWEEP_SIZE."""
    drain_queues_task = _task("drain_queues_task")
    ids = list(dict.fromkeys(instance_ids))
    if not ids:
        return
    if not force and settings.REDIS_URL and not drain_queues_task.app.conf.task_always_eager:
        lead = coalesce.offer(DRAIN_WAKE, ids)
        if lead is False:
            return  # the running leader takes them
        if lead is True:
            if publish(_task("drain_ready_task"), ()):
                return
            coalesce.resign(DRAIN_WAKE)  # and wake these directly below
    size = max(1, settings.SEND_SWEEP_SIZE)
    for start in range(0, len(ids), size):
        publish(drain_queues_task, (ids[start : start + size],))


def publish(task: Any, args: tuple[Any, ...]) -> bool:
    """Send a drain task to the broker; False (logged) when the broker refused it:
    the database holds the work and beat's recovery wakes it."""
    try:
        task.apply_async(args, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    except Exception:  # noqa: BLE001 - the database holds the work; beat recovers it
        log.warning("could not publish %s; beat will recover", task.name, exc_info=True)
        return False
    return True


def publish_later(task: Any, args: tuple[Any, ...], countdown: float) -> bool:
    """``publish`` with a countdown."""
    try:
        task.apply_async(args, countdown=countdown, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    except Exception:  # noqa: BLE001 - the database holds the work; beat recovers it
        log.warning("could not publish %s; beat will recover", task.name, exc_info=True)
        return False
    return True
