"""Webhook delivery with a real Celery worker process (+ beat) on a private queue."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from instances import coalesce
from instances.models import Instance
from journals import tasks
from journals.models import Notification, NotificationState, WebhookAttempt
from tests.factories import make_instance
from tests.journals.test_webhooks import Receiver, ingest, receipt_of, states
from tests.processes import celery_worker_args, private_broker_queue, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(settings: Any) -> Iterator[str]:
    """A private broker queue (concurrent test runs never eat each other's tasks);
    tasks go to the broker, not inline, so the real worker gets them."""
    with private_broker_queue(settings) as name:
        yield name


def worker_env(queue: str, **extra: str) -> dict[str, str]:
    return {
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
        "WEBHOOK_RETRY_SCHEDULE": "0.5,1",
        "WEBHOOK_RETRY_JITTER": "0",
        "WEBHOOK_RECOVER_INTERVAL_SECONDS": "1",
        **extra,
    }


def webhook_instance(url: str) -> Instance:
    instance = make_instance(authorized=True)
    instance.settings.update({"incomingWebhook": True, "webhookUrl": url})
    instance.save(update_fields=["settings"])
    return instance


def done_count(instance: Instance) -> int:
    return Notification.objects.filter(instance=instance, state=NotificationState.DONE).count()


def test_broker_and_receiver_down_then_back_every_notification_once_in_order(
    queue: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    receiver.stop()  # the receiver is down: connection refused
    try:
        instance = webhook_instance(receiver.url)

        published: list[str] = []

        def broker_down(name: str) -> Any:
            def apply_async(*args: Any, **kwargs: Any) -> None:
                published.append(name)
                raise ConnectionError("Error 111 connecting to the broker. Connection refused.")

            return apply_async

        def redis_down() -> redis.Redis:
            # A port nothing listens on: every call raises ConnectionError for real.
            return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)

        with monkeypatch.context() as patch:
            # Redis (the broker and the wake-up sets) is down: the ready-set offer
            # fails, and so does every publish, the sweep leader's and the
            # per-instance fallback's alike.
            patch.setattr(coalesce, "_redis", redis_down)
            for task in (tasks.deliver_webhooks_ready_task, tasks.deliver_webhooks_task,
                         tasks.deliver_webhooks_many_task):
                patch.setattr(task, "apply_async", broker_down(task.name))
            first = ingest(instance, 10, "a")  # committed; the wake-ups are lost
        assert published, "the wake-ups never reached the (failing) broker: the test proves nothing"
        assert states(instance) == ["queued"] * 10

        args = celery_worker_args(queue, schedule=tmp_path / "beat-schedule", concurrency=4)
        with running(args, tmp_path / "worker.log", **worker_env(queue)):
            # Beat finds the due head and the worker retries it against the dead receiver.
            wait_for(
                lambda: WebhookAttempt.objects.filter(instance=instance).count() >= 3,
                timeout=60,
                what="failed attempts against the dead receiver",
            )
            second = ingest(instance, 10, "b")  # the broker is back: normal wake-ups
            time.sleep(1.0)
            assert done_count(instance) == 0  # head-of-line: nothing passes the head
            receiver.start()
            wait_for(lambda: done_count(instance) == 20, timeout=60, what="all 20 notifications delivered")
        receipts = [n.receipt_id for n in first + second]
        assert [receipt_of(r) for r in receiver.ok()] == receipts  # in order, none twice
        failed = WebhookAttempt.objects.filter(instance=instance, ok=False)
        assert set(failed.values_list("receipt_id", flat=True)) == {receipts[0]}
        assert all(a.status_code is None and a.error for a in failed)
        assert WebhookAttempt.objects.filter(instance=instance, ok=True).count() == 20
    finally:
        receiver.stop()


def test_dead_endpoint_of_one_instance_does_not_delay_another(queue: str, tmp_path: Path) -> None:
    hanging = Receiver()
    hanging.delay = 60.0  # accepts, never answers within the timeout
    healthy = Receiver()
    try:
        dead = webhook_instance(hanging.url)
        alive = webhook_instance(healthy.url)
        args = celery_worker_args(queue, schedule=tmp_path / "beat-schedule", concurrency=3)
        with running(args, tmp_path / "worker.log", **worker_env(queue, WEBHOOK_TIMEOUT_SECONDS="40")):
            ingest(dead, 3, "a")
            wait_for(
                lambda: Notification.objects.filter(instance=dead).exclude(next_attempt_at=None).exists(),
                timeout=30,
                what="the dead instance's head in flight",
            )
            started = time.monotonic()
            ingest(alive, 20, "b")
            wait_for(lambda: done_count(alive) == 20, timeout=30, what="the healthy instance delivered")
            took = time.monotonic() - started
            # The healthy instance was served while the dead one's first POST still waits
            # for its answer (40 s timeout): nothing of the dead one has been recorded yet.
            assert not WebhookAttempt.objects.filter(instance=dead).exists(), took
            assert done_count(dead) == 0
            assert len(healthy.ok()) == 20
            assert [receipt_of(r) for r in healthy.ok()] == sorted(receipt_of(r) for r in healthy.ok())
    finally:
        hanging.stop()
        healthy.stop()
