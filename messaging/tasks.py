"""Send-queue tasks. They take an instance id, call one service and are safe to run
twice (the drain lock and row claims make duplicates no-ops)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from celery import Task, shared_task
from celery.worker import state as worker_state
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections
from django.utils.dateparse import parse_datetime

from engines.contract import TransportError
from instances import coalesce
from messaging import media, services
from messaging.wake import DRAIN_WAKE, publish, publish_later

log = logging.getLogger(__name__)

TRANSIENT_RETRY_SECONDS = 10.0
# The drain's tasks go ahead of every other task in the broker queue (Redis serves
# priority 0 first; the others default to CELERY_TASK_DEFAULT_PRIORITY, 3): a leader,
# its helpers and delayed drains must not wait behind the webhook runs that each
# sent message publishes (docs/performance.md, "Drain waves").
DRAIN_PRIORITY = 0
# A leader hands over to a fresh task after this long, so one task never holds a
# worker thread (or its broker ack) for the whole of a long burst. Not shorter: the
# successor waits in the broker queue behind every webhook run published meanwhile,
# and at 2 s the drain had no leader about half the time under the send bench
# (docs/performance.md). A worker's warm shutdown ends the run at once (_stopping).
LEADER_RUN_SECONDS = 30.0
# The leader's clock for its run (tests step it).
_clock = time.monotonic

# A leader waiting only for paced instances to come due polls this often when it
# has no linger of its own (SEND_SWEEP_LINGER_MS = 0).
IDLE_POLL_SECONDS = 0.02


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


# While the database is down, resume_drains_task tries again this often, for up to
# RESUME_MAX_RETRIES times (then beat's recover_queues is the net).
RESUME_RETRY_SECONDS = 1.0
RESUME_MAX_RETRIES = 900


@shared_task(bind=True, acks_late=True, max_retries=RESUME_MAX_RETRIES, ignore_result=True, priority=DRAIN_PRIORITY)
def resume_drains_task(
    self: Task[Any, Any], worker: str, instance_ids: list[int], locked: list[int], interrupted_at: str
) -> None:
    """After a database outage interrupted a sweep (services.DrainInterrupted):
    once the database answers again, release the dead sweep's locks, put its claimed
    rows back and wake its instances, so queues move within seconds of the recovery."""
    try:
        ids = services.resume_drains(worker, instance_ids, locked, parse_datetime(interrupted_at))
    except (OperationalError, InterfaceError) as exc:
        if self.request.is_eager:
            return  # inline (no broker): no clock to wait on; beat's recover_queues is the net
        close_old_connections()  # a broken connection is not reused on the retry
        raise self.retry(exc=exc, countdown=RESUME_RETRY_SECONDS) from exc
    services.wake_queues(ids, force=True)


def _interrupted(exc: services.DrainInterrupted) -> None:
    """Hand an interrupted sweep to resume_drains_task (the broker is Redis, which
    may well be up while PostgreSQL is not)."""
    log.warning("drain interrupted by a database outage; resuming %d instance(s) when it is back", len(exc.instance_ids))

    close_old_connections()
    publish_later(resume_drains_task, (exc.worker, exc.instance_ids, exc.locked, exc.at.isoformat()), RESUME_RETRY_SECONDS)


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True, priority=DRAIN_PRIORITY)
def drain_queue_task(self: Task[Any, Any], instance_id: int) -> None:
    """A delayed drain of one instance (pacing, transient-error retries)."""
    try:
        wait = services.drain_queue(instance_id, _worker_id())
    except services.DrainInterrupted as exc:
        _interrupted(exc)
        return
    except TransportError as exc:
        if self.request.is_eager:
            return  # inline (tests): no clock to back off on; recover_queues retries
        # The row went back to the queue head; retry the drain with backoff.
        countdown = min(300, 2 ** min(self.request.retries, 8))
        raise self.retry(exc=exc, countdown=countdown) from exc
    if wait is not None:
        services.wake_queue(instance_id, countdown=wait)


@shared_task(acks_late=True, ignore_result=True, priority=DRAIN_PRIORITY)
def drain_queues_task(instance_ids: list[int]) -> None:
    """A sweep over the given instances (services.drain_queues): without Redis, when
    Redis failed, beat's recovery, and a leader's helpers. Leftovers are re-woken."""
    try:
        again = _sweep(instance_ids, _worker_id())
    except services.DrainInterrupted as exc:
        _interrupted(exc)
        return
    if again:
        services.wake_queues(again)


@shared_task(acks_late=True, ignore_result=True, priority=DRAIN_PRIORITY)
def drain_ready_task() -> None:
    """The sweep leader (instances.coalesce ``offer``/``take``): while instances are
    ready, take up to SEND_SWEEP_SIZE of them and sweep them together. Its caller set
    the leader mark, so producers only add ids to the ready set meanwhile.

    The first sweep goes at once (an idle system sends with no added latency); while
    it keeps leading, it waits SEND_SWEEP_LINGER_MS before each further take, so
    under load each sweep carries what arrived meanwhile instead of one or two
    instances. More ready than one sweep holds: a helper task gets the next chunk,
    so other worker threads share a backlog. Paced instances come back through the
    timed set (messaging.wake ``wake_queues_later``): ``take`` returns them once
    due, and while only they are left the leader keeps leading and polls for them.
    More of them due than one sweep holds: helper tasks sweep the rest, and, like
    every drain task, they are served before the webhook runs waiting in the broker
    queue (DRAIN_PRIORITY).

    After LEADER_RUN_SECONDS it publishes its successor but keeps leading until the
    successor has started (``coalesce.begin_leading``): the successor waits for a
    free worker thread (and before DRAIN_PRIORITY waited behind every webhook run in
    the broker queue), and a leader that stopped at once left every paced instance
    waiting that long (the drain's slow waves, docs/performance.md). Safe to run twice: two leaders only take disjoint ids, and
    drain locks keep each instance to one sender."""
    worker = _worker_id()
    size = max(1, settings.SEND_SWEEP_SIZE)
    linger = max(0.0, settings.SEND_SWEEP_LINGER_MS / 1000)
    epoch = coalesce.begin_leading(DRAIN_WAKE)
    deadline = _clock() + LEADER_RUN_SECONDS
    successor = False  # published, and not seen starting yet
    carry: list[int] = []
    first = True
    while True:
        if not first and linger:
            time.sleep(linger)
        first = False
        if successor and not carry and _succeeded(epoch):
            return  # it leads now (the mark is shared); this one holds nothing
        ids = carry + coalesce.take(DRAIN_WAKE, size - len(carry))
        if not ids:
            if not coalesce.keep_leading(DRAIN_WAKE):
                return
            if _stopping():
                if not successor and not publish(drain_ready_task, ()):
                    coalesce.resign(DRAIN_WAKE)
                return
        if _clock() >= deadline:
            if epoch is None:
                # Redis could not count leaders, so a successor's start cannot be
                # seen: hand over now, still holding the mark, as a leader did before.
                if not coalesce.give_back(DRAIN_WAKE, ids):
                    publish(drain_queues_task, (ids,))
                if not publish(drain_ready_task, ()):
                    coalesce.resign(DRAIN_WAKE)  # the next offer starts a leader; beat is the net
                return
            published, deadline = _hand_over()
            successor = successor or published
        if not ids:
            # Only timed ids (paced instances) are left: poll for them until due.
            if not linger:
                time.sleep(IDLE_POLL_SECONDS)
            continue
        if len(ids) > size:  # timed ids came due on top of the ready ones
            ids, extra = ids[:size], ids[size:]
            for start in range(0, len(extra), size):  # helpers, served before webhook runs
                publish(drain_queues_task, (extra[start : start + size],))
        elif len(ids) == size:
            helper = coalesce.take(DRAIN_WAKE, size)
            if helper:
                publish(drain_queues_task, (helper,))
        try:
            carry = _sweep(ids, worker)
        except services.DrainInterrupted as exc:
            _interrupted(exc)
            # Step down: resume_drains_task's wake-ups (or the next offer) start a
            # fresh leader once the database is back, without waiting for this
            # mark to lapse.
            coalesce.resign(DRAIN_WAKE)
            return
        if _stopping():
            # Hand over now, still holding the mark: a successor takes the rest.
            if not coalesce.give_back(DRAIN_WAKE, carry):
                publish(drain_queues_task, (carry,))
            if not successor and coalesce.keep_leading(DRAIN_WAKE) and not publish(drain_ready_task, ()):
                coalesce.resign(DRAIN_WAKE)  # the next offer starts a leader; beat is the net
            return


def _hand_over() -> tuple[bool, float]:
    """The leader's run is over: publish its successor. Returns whether it was
    published, and when to publish another if none has started by then (a lost
    publish, or a successor on a worker that died, must not end the drain)."""
    return publish(drain_ready_task, ()), _clock() + LEADER_RUN_SECONDS


def _succeeded(epoch: int | None) -> bool:
    """A later leader has started (or Redis cannot tell: then step down too, as a
    leader did before successors were counted)."""
    latest = coalesce.leader_epoch(DRAIN_WAKE)
    return epoch is None or latest is None or latest > epoch


def _stopping() -> bool:
    """The worker is in its warm shutdown (SIGTERM): a leader hands over now rather
    than hold the shutdown for the rest of its run."""
    # Identity, as celery's own check: a warm shutdown sets it to EX_OK, which is 0.
    return worker_state.should_stop is not None and worker_state.should_stop is not False


def _sweep(instance_ids: list[int], worker: str) -> list[int]:
    """One sweep; schedules each instance's delayed or failed leftovers and returns
    the ones with more ready now."""
    report = services.drain_queues(instance_ids, worker)
    later = {i: wait for i, wait in report.waits.items() if wait and i not in report.errors}
    later.update(dict.fromkeys(report.errors, TRANSIENT_RETRY_SECONDS))
    services.wake_queues_later(later)
    return [i for i, wait in report.waits.items() if wait == 0.0 and i not in report.errors]


@shared_task(acks_late=True, ignore_result=True)
def recover_queues_task() -> dict[str, int]:
    return services.recover_queues()


@shared_task(acks_late=True, ignore_result=True)
def prune_send_attempts_task() -> int:
    return services.prune_send_attempts()


@shared_task(acks_late=True, ignore_result=True)
def delete_expired_files_task() -> int:
    """Sent files live 15 days (their urlFile links expire with them)."""
    return media.delete_expired_files()
