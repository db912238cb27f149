"""Webhook runs across instances (journals.webhooks ``deliver_many``/``sweep`` and the
sweep leader in journals.tasks), against real HTTP receivers on loopback."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from instances import coalesce
from instances.models import Instance
from journals import tasks, webhooks
from journals.models import Notification, WebhookAttempt
from journals.services import ingest_event
from tests.factories import make_instance
from tests.journals.test_webhooks import Receiver, incoming, receipt_of, states
from tests.processes import private_broker_queue

LOOPBACK = ["127.0.0.1/32"]


@pytest.fixture(autouse=True)
def _loopback_allowed(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    settings.WEBHOOK_RETRY_JITTER = 0.0
    settings.WEBHOOK_RETRY_SCHEDULE = [5.0, 15.0, 60.0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def queued_instance(count: int, prefix: str = "m") -> tuple[Instance, list[Notification]]:
    """An instance with ``count`` queued notifications and no webhookUrl yet (so
    nothing ran on commit: the test drives delivery)."""
    instance = make_instance(authorized=True)
    instance.settings["incomingWebhook"] = True
    instance.save(update_fields=["settings"])
    rows = []
    for n in range(count):
        notification = ingest_event(instance, incoming(f"{prefix}{n}", f"{prefix.upper()}{instance.pk}-{n:04d}"))
        assert notification is not None
        rows.append(notification)
    return instance, rows


def point(instance: Instance, url: str) -> None:
    instance.settings["webhookUrl"] = url
    instance.save(update_fields=["settings"])


def received_by_instance(receiver: Receiver) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for r in receiver.ok():
        instance_part, receipt = r.webhook_id.rsplit("-", 1)
        out.setdefault(int(instance_part), []).append(int(receipt))
    return out


def sweep_statements(receiver: Receiver, instances: int) -> int:
    made = [queued_instance(2, f"s{instances}x") for _ in range(instances)]
    for instance, _ in made:
        point(instance, receiver.url)
    with CaptureQueriesContext(connection) as queries:
        assert webhooks.sweep([instance.pk for instance, _ in made]) == []
    for instance, rows in made:
        assert states(instance) == ["done", "done"]
        assert received_by_instance(receiver)[instance.pk] == [n.receipt_id for n in rows]
    return len(queries)


def test_one_sweep_delivers_many_instances_in_the_same_statements(
    db: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "FLUSH_SECONDS", 60.0)  # no time bound: the test counts
    few = sweep_statements(receiver, 2)
    many = sweep_statements(receiver, 12)
    assert few == many
    assert many <= 8  # targets, rows, claim, and one transaction recording everything
    assert WebhookAttempt.objects.count() == 2 * 2 + 12 * 2


def test_a_failing_endpoint_does_not_delay_another_in_the_same_sweep(db: None, receiver: Receiver) -> None:
    failing = Receiver()
    failing.status = 500
    try:
        bad, bad_rows = queued_instance(3, "b")
        good, good_rows = queued_instance(3, "g")
        point(bad, failing.url)
        point(good, receiver.url)
        results = webhooks.deliver_many([bad.pk, good.pk], passes=1, concurrent=True)
        assert results[good.pk] is None
        assert results[bad.pk] == pytest.approx(5.0)  # the schedule's first retry (no jitter)
        assert [receipt_of(r) for r in receiver.ok()] == [n.receipt_id for n in good_rows]
        assert states(good) == ["done"] * 3
        # The failed head stops its own instance only: nothing behind it was posted.
        assert [receipt_of(r) for r in failing.all()] == [bad_rows[0].receipt_id]
        assert states(bad) == ["queued"] * 3
        head = Notification.objects.get(pk=bad_rows[0].pk)
        assert head.attempts == 1 and head.next_attempt_at is not None and head.next_attempt_at > timezone.now()
        # A sweep before the retry is due leaves it alone.
        assert webhooks.deliver_many([bad.pk], passes=1)[bad.pk] is None
        assert len(failing.all()) == 1
    finally:
        failing.stop()


def test_a_hanging_endpoint_is_left_to_its_own_run(
    transactional_db: None, receiver: Receiver, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 10.0
    monkeypatch.setattr(webhooks, "SWEEP_WAIT_SECONDS", 0.3)
    slow = Receiver()
    slow.delay = 1.5
    try:
        hanging, hanging_rows = queued_instance(2, "h")
        good, good_rows = queued_instance(2, "g")
        point(hanging, slow.url)
        point(good, receiver.url)
        started = time.monotonic()
        results = webhooks.deliver_many([hanging.pk, good.pk], passes=1, concurrent=True)
        took = time.monotonic() - started
        assert results == {hanging.pk: None, good.pk: None}
        assert states(good) == ["done", "done"]  # recorded without waiting for the slow one
        assert took < slow.delay, took
        # The detached run records itself once its POSTs are answered.
        deadline = time.monotonic() + 20
        while states(hanging) != ["done", "done"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert states(hanging) == ["done", "done"]
        assert [receipt_of(r) for r in slow.ok()] == [n.receipt_id for n in hanging_rows]
    finally:
        slow.stop()


def test_order_per_instance_is_kept_across_passes(
    db: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "CHUNK", 3)
    made = [queued_instance(7, f"o{n}x") for n in range(3)]
    for instance, _ in made:
        point(instance, receiver.url)
    ids = [instance.pk for instance, _ in made]
    assert webhooks.deliver_many(ids, passes=1) == dict.fromkeys(ids, 0.0)  # more to send now
    assert all(len(receipts) == 3 for receipts in received_by_instance(receiver).values())
    assert webhooks.deliver_many(ids) == dict.fromkeys(ids)
    for instance, rows in made:
        assert received_by_instance(receiver)[instance.pk] == [n.receipt_id for n in rows]
        assert states(instance) == ["done"] * 7


def test_a_killed_sweep_leaves_leases_that_lapse_and_its_rows_are_sent_again(
    db: None, receiver: Receiver
) -> None:
    made = [queued_instance(2, f"k{n}x") for n in range(2)]
    for instance, _ in made:
        point(instance, receiver.url)
    ids = [instance.pk for instance, _ in made]
    # A sweep claimed both heads and posted them, then its worker was killed before
    # it recorded anything.
    heads = [rows[0] for _, rows in made]
    claimed = webhooks._claim(
        [webhooks.Row(n.pk, n.instance_id, n.receipt_id, 0, n.created_at, n.body) for n in heads], timezone.now()
    )
    assert claimed == {n.pk for n in heads}
    targets = webhooks._targets(ids)
    for n in heads:
        assert webhooks.post(targets[n.instance_id], n.receipt_id, n.body, webhooks.webhook_policy()).ok
    # While the leases hold, other runs are turned away and nothing is sent twice.
    assert webhooks.deliver_many(ids) == dict.fromkeys(ids)
    assert len(receiver.ok()) == 2
    assert not set(ids) & set(webhooks.due_instance_ids())
    Notification.objects.filter(pk__in=[n.pk for n in heads]).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )  # the leases ran out
    assert set(ids) <= set(webhooks.due_instance_ids())
    assert webhooks.deliver_many(ids) == dict.fromkeys(ids)
    for instance, rows in made:
        # At-least-once: the head twice (receivers dedupe by X-Webhook-Id), then the rest.
        assert received_by_instance(receiver)[instance.pk] == [rows[0].receipt_id, rows[0].receipt_id, rows[1].receipt_id]
        assert states(instance) == ["done", "done"]


# --- The sweep leader (needs Redis) ------------------------------------------------------


@pytest.fixture
def broker(settings: Any) -> Iterator[str]:
    """A private broker queue with tasks going to it (not inline): the test runs the
    published tasks itself, so it can see what was published."""
    if not settings.REDIS_URL:
        pytest.skip("the sweep leader needs Redis (REDIS_URL)")
    with private_broker_queue(settings) as name:
        try:
            yield name
        finally:
            client = coalesce._redis()
            keys = [f"relay:wake:{name}:{kind}:{k}" for kind in ("webhooks", "drain") for k in ("ready", "leader", "later")]
            client.delete(name, f"{name}\x06\x163", *keys)


def published(queue: str) -> list[tuple[str, list[Any]]]:
    """(task name, args) of the webhook tasks waiting in the queue, oldest first;
    taken. (Saving an instance's settings also wakes its send queue: not ours.)"""
    client = coalesce._redis()
    out = []
    # kombu keeps one list per priority step: the queue's own name for 0 (the send
    # drain's tasks), "<queue>\x06\x16<step>" for the others (webhook tasks: 3).
    lists = [f"{queue}\x06\x16{step}" if step else queue for step in (0, 3, 6, 9)]
    while (raw := next((r for r in map(client.rpop, lists) if r is not None), None)) is not None:
        message = json.loads(str(raw, "utf-8") if isinstance(raw, bytes) else str(raw))
        args = json.loads(base64.b64decode(message["body"]))[0]
        if message["headers"]["task"].startswith("journals."):
            out.append((message["headers"]["task"], args))
    return out


def leader_mark(queue: str) -> bool:
    return bool(coalesce._redis().exists(f"relay:wake:{queue}:webhooks:leader"))


def test_wake_ups_go_to_one_leader_that_sweeps_them_and_steps_down(
    transactional_db: None, receiver: Receiver, broker: str
) -> None:
    made = [queued_instance(2, f"l{n}x") for n in range(3)]
    for instance, _ in made:
        point(instance, receiver.url)
    ids = [instance.pk for instance, _ in made]
    webhooks.wake_many(ids[:2])
    webhooks.wake(ids[2])  # a leader is running: joins the ready set, no task
    assert published(broker) == [("journals.tasks.deliver_webhooks_ready_task", [])]
    assert leader_mark(broker)
    tasks.deliver_webhooks_ready_task()  # what the worker runs
    for instance, rows in made:
        assert received_by_instance(receiver)[instance.pk] == [n.receipt_id for n in rows]
    assert not leader_mark(broker)  # stepped down: the next wake-up starts a leader
    assert published(broker) == []
    webhooks.wake(ids[0])
    assert published(broker) == [("journals.tasks.deliver_webhooks_ready_task", [])]


def test_a_leader_hands_over_after_its_run_and_shares_a_backlog(
    transactional_db: None, receiver: Receiver, broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "LEADER_RUN_SECONDS", 0.0)
    monkeypatch.setattr(webhooks, "SWEEP_SIZE", 1)
    made = [queued_instance(1, f"h{n}x") for n in range(3)]
    for instance, _ in made:
        point(instance, receiver.url)
    webhooks.wake_many([instance.pk for instance, _ in made])
    published(broker)
    tasks.deliver_webhooks_ready_task()
    # One instance swept, one handed to a helper, the leader's run is over: a
    # successor is published while the mark is still held, so no wake-up is lost.
    after = published(broker)
    assert sorted(name for name, _ in after) == [
        "journals.tasks.deliver_webhooks_many_task",
        "journals.tasks.deliver_webhooks_ready_task",
    ]
    assert leader_mark(broker)
    assert len(receiver.ok()) == 1
    for name, args in after:
        if name.endswith("many_task"):
            tasks.deliver_webhooks_many_task(*args)
    tasks.deliver_webhooks_ready_task()  # the successor
    assert sorted(received_by_instance(receiver)) == sorted(instance.pk for instance, _ in made)
    assert all(states(instance) == ["done"] for instance, _ in made)
    assert not leader_mark(broker)


# --- Hanging endpoints and the POST threads ----------------------------------------------


@pytest.fixture
def hanging() -> Iterator[socket.socket]:
    """An endpoint that accepts TCP connections (the kernel's backlog does) and never
    answers: every POST to it hangs until the read timeout. Closing it resets those
    connections, so the hung POSTs end at once."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    try:
        yield listener
    finally:
        listener.close()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_hanging_endpoints_filling_the_post_threads_never_starve_a_healthy_instance(
    transactional_db: None,
    receiver: Receiver,
    hanging: socket.socket,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The POSTs to the hanging endpoint outlast the test by far: only a thread that
    # is not stuck behind them can deliver the healthy instance's notifications.
    settings.WEBHOOK_TIMEOUT_SECONDS = 600.0
    monkeypatch.setattr(webhooks, "SWEEP_WAIT_SECONDS", 0.2)
    hanging_url = f"http://127.0.0.1:{hanging.getsockname()[1]}/hook"
    stuck = [queued_instance(1, f"hang{n}x")[0] for n in range(webhooks.SWEEP_THREADS + 2)]
    for instance in stuck:
        point(instance, hanging_url)
    good, good_rows = queued_instance(2, "healthy")
    later, later_rows = queued_instance(1, "later")
    point(good, receiver.url)
    point(later, receiver.url)
    # One sweep with more hanging endpoints than POST threads, the healthy one among
    # them (in random order: it may well be queued behind all of them).
    webhooks.deliver_many([i.pk for i in stuck] + [good.pk], passes=1, concurrent=True)
    assert wait_for(lambda: states(good) == ["done", "done"])
    # And a later sweep while every hanging POST still holds its thread.
    webhooks.deliver_many([later.pk], passes=1, concurrent=True)
    assert wait_for(lambda: states(later) == ["done"])
    assert received_by_instance(receiver) == {
        good.pk: [n.receipt_id for n in good_rows],
        later.pk: [n.receipt_id for n in later_rows],
    }
    threads, detached = webhooks._pool().threads()
    assert detached == len(stuck)  # still hanging, each on a thread of its own
    assert threads <= webhooks.SWEEP_THREADS + detached
    # Daemon threads: a worker's warm shutdown never waits for a hanging POST.
    posters = [t for t in threading.enumerate() if t.name.startswith("webhook-post")]
    assert posters and all(t.daemon for t in posters)
    # Reset the hung connections: each run records its failed attempt and ends, and
    # the stand-in threads go (the pool is back to its size).
    hanging.close()
    assert wait_for(lambda: all(Notification.objects.get(instance=i).attempts == 1 for i in stuck))
    assert wait_for(lambda: webhooks._pool().threads() == (webhooks.SWEEP_THREADS, 0))
    assert all(states(instance) == ["queued"] for instance in stuck)
