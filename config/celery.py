"""The Celery app. Tasks live in each app's tasks.py and take ids only."""

import logging
import os
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery
from celery.signals import after_setup_logger, celeryd_init
from kombu.transport import redis as kombu_redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _survive_broker_loss_with_unacked_messages() -> None:
    """Keep the worker alive when Redis goes away while it holds unacked messages.

    After a lost broker connection, kombu's Redis channel still tries to use the
    connection it has already dropped: to put the unacked (prefetched, or running
    acks_late) messages back when Celery closes the channel, and to ack a task that
    finishes afterwards. Both failed with an AttributeError that Celery treats as
    unrecoverable, so a Redis restart stopped the whole worker, and ``runstack``
    with it (found by tests/journals/test_redis_restart.py; kombu #582, #970).
    Raised as the connection error it is, Celery logs it and reconnects; the
    messages stay in Redis' unacked set for ``restore_visible`` (or are gone with a
    Redis that restarted empty: every task here is recovered by a beat job)."""
    connparams: Callable[..., dict[str, Any]] = kombu_redis.Channel._connparams  # type: ignore[attr-defined]  # noqa: SLF001

    def checked_connparams(self: kombu_redis.Channel, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise redis.ConnectionError("the broker connection is closed")
        return connparams(self, asynchronous)

    kombu_redis.Channel._connparams = checked_connparams  # type: ignore[attr-defined]  # noqa: SLF001


_survive_broker_loss_with_unacked_messages()

# Celery's per-task lines ("Task … received", "Task … succeeded in …"): two INFO
# records per task, formatted and written by the worker's main thread for every
# drain sweep and webhook run. Under send load that was a measurable share of the
# worker's CPU per message (docs/performance.md), and the lines say nothing the
# send attempt and webhook attempt logs do not. Failures, retries and our own
# INFO lines still log; ``celery.app.trace`` logs a failed task at ERROR (a retry
# is INFO there, so it goes too; the task's own warning says why).
PER_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.worker.request")


@after_setup_logger.connect
def _quiet_per_task_lines(**_: Any) -> None:
    # After the worker set its --loglevel, before its consumer reads each logger's
    # level (celery caches isEnabledFor(INFO) when it builds a task's strategy).
    for name in PER_TASK_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))


@celeryd_init.connect
def _lower_priority(**_: Any) -> None:
    # Before the pool starts: the thread pool's threads share this process's niceness.
    from django.conf import settings

    niceness = int(getattr(settings, "WORKER_NICENESS", 0))
    if niceness > 0:
        try:
            os.nice(niceness)
        except OSError:  # a sandbox without setpriority: keep the inherited priority
            logging.getLogger(__name__).warning("could not lower the worker's priority", exc_info=True)


app = Celery("relay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(related_name="retention")  # journals.retention: housekeeping

from django.conf import settings  # noqa: E402 - after DJANGO_SETTINGS_MODULE is set

app.conf.beat_schedule = {
    "recover-send-queues": {
        "task": "messaging.tasks.recover_queues_task",
        "schedule": settings.RELAY_RECOVER_INTERVAL_SECONDS,
    },
    "wake-due-webhooks": {"task": "journals.tasks.wake_due_webhooks_task", "schedule": settings.WEBHOOK_RECOVER_INTERVAL_SECONDS},
    "prune-journals": {"task": "journals.retention.prune_journals_task", "schedule": 3600.0},
    "prune-statuses": {"task": "statuses.tasks.prune_statuses_task", "schedule": 3600.0},
    "offer-cloud-inboxes": {"task": "engines.cloud.tasks.offer_inboxes_task", "schedule": settings.RELAY_RECOVER_INTERVAL_SECONDS},
    "prune-network-statuses": {"task": "engines.emulator.tasks.prune_network_statuses_task", "schedule": 3600.0},
    "expire-notifications": {"task": "journals.tasks.expire_notifications_task", "schedule": 600.0},
    "prune-send-attempts": {"task": "messaging.tasks.prune_send_attempts_task", "schedule": 3600.0},
    "delete-expired-files": {"task": "messaging.tasks.delete_expired_files_task", "schedule": 3600.0},
    "prune-state-history": {
        "task": "instances.tasks.prune_state_history_task",
        "schedule": 3600.0,
    },
}
