"""The drain's wake-ups with Redis: ids wait in one ready set and one leader task at a
time sweeps them (instances.coalesce offer/take/keep_leading, messaging.tasks
drain_ready_task). No wake-up may be lost, and under load a sweep carries every
instance that became ready meanwhile."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu.transport.redis import PRIORITY_STEPS
from kombu.transport.redis import Channel as RedisChannel

from engines.emulator.transport import ensure_phone
from instances import coalesce
from instances import services as instance_services
from instances.models import Instance
from messaging import services, tasks
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.factories import make_instance
from tests.processes import private_broker_queue

RECIPIENT = "79001112255"
CHAT = f"{RECIPIENT}@c.us"
KIND = tasks.DRAIN_WAKE


@pytest.fixture
def private_queue(settings: Any) -> Iterator[str]:
    """Redis keys and broker queue of our own; tasks are published, not run inline
    (the tests capture what is published)."""
    if not settings.REDIS_URL:
        pytest.skip("the drain leader needs Redis (REDIS_URL)")
    client = coalesce._redis()  # tests may replace coalesce._redis with a failing one
    with private_broker_queue(settings) as name:
        keys = (
            coalesce._ready_key(KIND), coalesce._leader_key(KIND), coalesce._later_key(KIND),
            coalesce._epoch_key(KIND), name,
        )
        try:
            yield name
        finally:
            client.delete(*keys)


class Published:
    """apply_async of the drain tasks, captured instead of sent to the broker."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        for task in (tasks.drain_ready_task, tasks.drain_queues_task, tasks.drain_queue_task):
            monkeypatch.setattr(task, "apply_async", self._recorder(task.name))

    def _recorder(self, name: str) -> Any:
        def apply_async(args: tuple[Any, ...] = (), **_: Any) -> None:
            self.calls.append((name.rsplit(".", 1)[-1], tuple(args)))

        return apply_async

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch, private_queue: str) -> Published:
    return Published(monkeypatch)


def ready_ids() -> set[int]:
    return {int(raw) for raw in coalesce._redis().smembers(coalesce._ready_key(KIND))}


def leader_held() -> bool:
    return bool(coalesce._redis().exists(coalesce._leader_key(KIND)))


def unpaced_sender() -> Instance:
    instance = make_instance(authorized=True)
    instance_services.update_settings(instance, {"delaySendMessagesMilliseconds": 0})
    instance.refresh_from_db()
    return instance


def queue_one(instance: Instance, text: str) -> OutgoingMessage:
    # Queued without its on-commit wake-up: the tests wake explicitly.
    return OutgoingMessage.objects.create(
        instance=instance, id_message=uuid.uuid4().hex[:20].upper(), chat_id=CHAT, method="sendMessage",
        type_message="textMessage", request={"chatId": CHAT, "message": text}, payload={"message": text},
        status=OutgoingStatus.QUEUED,
    )


def test_offer_starts_one_leader_and_later_offers_only_add_ids(private_queue: str) -> None:
    assert coalesce.offer(KIND, [3, 1]) is True  # no leader: the caller starts one
    assert coalesce.offer(KIND, [2, 3]) is False  # a leader will take them
    assert ready_ids() == {1, 2, 3}
    assert leader_held()


def test_the_leader_takes_then_steps_down_only_when_nothing_is_left(private_queue: str) -> None:
    coalesce.offer(KIND, [5, 4, 6])
    assert coalesce.take(KIND, 2) in ([4, 5], [4, 6], [5, 6])
    assert len(coalesce.take(KIND, 10)) == 1
    assert coalesce.take(KIND, 10) == []
    coalesce.offer(KIND, [7])  # arrives while the leader is about to step down
    assert coalesce.keep_leading(KIND) is True  # it keeps the mark and takes it
    assert coalesce.take(KIND, 10) == [7]
    assert coalesce.keep_leading(KIND) is False
    assert not leader_held()
    assert coalesce.offer(KIND, [8]) is True  # the next producer starts a new leader


def test_the_leader_mark_lapses_if_its_worker_dies(private_queue: str) -> None:
    coalesce.offer(KIND, [1])
    ttl = coalesce._redis().ttl(coalesce._leader_key(KIND))
    assert 0 < ttl <= coalesce.LEADER_TTL_SECONDS


def test_wake_queues_publishes_one_leader_for_many_wake_ups(db: None, published: Published) -> None:
    services.wake_queues([11, 12])
    services.wake_queues([12, 13])
    services.wake_queue(14)
    assert published.calls == [("drain_ready_task", ())]
    assert ready_ids() == {11, 12, 13, 14}


def test_beat_and_eager_mode_publish_the_ids_themselves(db: None, published: Published, settings: Any) -> None:
    services.wake_queues([21, 22], force=True)
    assert published.calls == [("drain_queues_task", ([21, 22],))]
    assert ready_ids() == set()


def test_without_redis_the_ids_are_published_directly(
    db: None, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Down:
        def pipeline(self, **_: Any) -> Any:
            raise redis.ConnectionError("down")

    monkeypatch.setattr(coalesce, "_redis", lambda: Down())
    services.wake_queues([31, 32, 33])
    assert published.calls == [("drain_queues_task", ([31, 32, 33],))]


def test_a_failed_leader_publish_drops_the_mark_and_wakes_directly(
    db: None, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(*_: Any, **__: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.drain_ready_task, "apply_async", broker_down)
    services.wake_queues([41])
    assert published.calls == [("drain_queues_task", ([41],))]
    assert not leader_held()  # so the next wake-up tries to start a leader again


def test_a_leader_sweeps_every_ready_instance_together_and_steps_down(
    db: None, published: Published, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    ensure_phone(RECIPIENT, "Recipient")
    senders = [unpaced_sender() for _ in range(4)]
    for n, sender in enumerate(senders):
        queue_one(sender, f"first {n}")
        queue_one(sender, f"second {n}")
    sweeps: list[list[int]] = []
    real = services.drain_queues

    def recording(ids: list[int], worker: str, **kw: Any) -> services.DrainReport:
        sweeps.append(sorted(ids))
        return real(ids, worker, **kw)

    monkeypatch.setattr(services, "drain_queues", recording)
    assert coalesce.offer(KIND, [s.id for s in senders]) is True
    tasks.drain_ready_task()
    assert sweeps == [sorted(s.id for s in senders)]  # one sweep for all four
    assert OutgoingMessage.objects.filter(status=OutgoingStatus.SENT).count() == 8
    assert not leader_held() and ready_ids() == set()
    assert published.calls == []


def test_a_backlog_larger_than_a_sweep_gets_a_helper(
    db: None, published: Published, settings: Any
) -> None:
    ensure_phone(RECIPIENT, "Recipient")
    settings.SEND_SWEEP_SIZE = 2
    settings.SEND_SWEEP_LINGER_MS = 0
    senders = [unpaced_sender() for _ in range(5)]
    for sender in senders:
        queue_one(sender, "hello")
    coalesce.offer(KIND, [s.id for s in senders])
    tasks.drain_ready_task()
    helpers = [args[0] for name, args in published.calls if name == "drain_queues_task"]
    assert len(helpers) == 1 and len(helpers[0]) == 2  # the chunk after the leader's first
    helped = set(helpers[0])
    sent = set(
        OutgoingMessage.objects.filter(status=OutgoingStatus.SENT).values_list("instance_id", flat=True)
    )
    assert sent == {s.id for s in senders} - helped  # the leader swept everything else
    assert not leader_held()


class SweepClock:
    """The leader's run clock (tasks._clock), moved on from inside its sweeps; each
    sweep is recorded, and ``on_sweep`` may act as the rest of the world meanwhile."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 0.0
        self.sweeps: list[list[int]] = []
        self.on_sweep: dict[int, Any] = {}  # sweep number (from 1) → what happens during it
        monkeypatch.setattr(tasks, "_clock", lambda: self.now)
        real = services.drain_queues

        def recording(ids: list[int], worker: str, **kw: Any) -> services.DrainReport:
            self.sweeps.append(sorted(ids))
            self.on_sweep.get(len(self.sweeps), lambda: None)()
            return real(ids, worker, **kw)

        monkeypatch.setattr(services, "drain_queues", recording)

    def run_over(self) -> float:
        self.now += tasks.LEADER_RUN_SECONDS + 1
        return self.now


def offer_due_now(senders: list[Instance]) -> None:
    """The senders come due in the timed set, as paced instances do."""
    assert coalesce.offer_later(KIND, {s.id: time.time() - 1 for s in senders}) is True


def test_more_due_than_a_sweep_holds_go_to_helpers(
    db: None, published: Published, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    ensure_phone(RECIPIENT, "Recipient")
    settings.SEND_SWEEP_SIZE = 1
    clock = SweepClock(monkeypatch)
    senders = sorted((unpaced_sender() for _ in range(3)), key=lambda s: s.id)
    for sender in senders:
        queue_one(sender, "hello")
    offer_due_now(senders)
    tasks.drain_ready_task()
    assert clock.sweeps == [[senders[0].id]]  # oldest ids first
    assert published.calls == [("drain_queues_task", ([senders[1].id],)), ("drain_queues_task", ([senders[2].id],))]
    assert not leader_held()


def test_the_leader_keeps_leading_after_its_run_until_its_successor_starts(
    db: None, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_phone(RECIPIENT, "Recipient")
    clock = SweepClock(monkeypatch)
    senders = sorted((unpaced_sender() for _ in range(3)), key=lambda s: s.id)
    for sender in senders:
        queue_one(sender, "hello")

    def run_over_and_offer(sender: Instance) -> Any:
        return lambda: (clock.run_over(), coalesce.offer(KIND, [sender.id]))

    # The run ends during the first sweep while more is offered; the successor
    # starts during the second, and more is offered again.
    clock.on_sweep = {
        1: run_over_and_offer(senders[1]),
        2: lambda: (coalesce.begin_leading(KIND), coalesce.offer(KIND, [senders[2].id])),
    }
    coalesce.offer(KIND, [senders[0].id])
    tasks.drain_ready_task()
    assert published.calls == [("drain_ready_task", ())]
    # It swept on after publishing its successor (nothing waited for it to start),
    # and stopped once it had: the last offer is the successor's.
    assert clock.sweeps == [[senders[0].id], [senders[1].id]]
    assert ready_ids() == {senders[2].id}
    assert leader_held()


def test_a_leader_publishes_a_successor_again_if_none_started(
    db: None, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost publish, or a successor whose worker died, must not end the drain."""
    ensure_phone(RECIPIENT, "Recipient")
    clock = SweepClock(monkeypatch)
    senders = sorted((unpaced_sender() for _ in range(3)), key=lambda s: s.id)
    for sender in senders:
        queue_one(sender, "hello")
    clock.on_sweep = {
        1: lambda: (clock.run_over(), coalesce.offer(KIND, [senders[1].id])),
        2: lambda: (clock.run_over(), coalesce.offer(KIND, [senders[2].id])),
    }
    coalesce.offer(KIND, [senders[0].id])
    tasks.drain_ready_task()
    assert published.names() == ["drain_ready_task", "drain_ready_task"]
    assert len(clock.sweeps) == 3
    assert OutgoingMessage.objects.filter(status=OutgoingStatus.SENT).count() == 3


def test_a_leader_with_nothing_left_at_hand_over_just_steps_down(
    db: None, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_phone(RECIPIENT, "Recipient")
    clock = SweepClock(monkeypatch)
    clock.on_sweep = {1: clock.run_over}
    sender = unpaced_sender()
    queue_one(sender, "hello")
    coalesce.offer(KIND, [sender.id])
    tasks.drain_ready_task()
    assert published.calls == []
    assert not leader_held()


def later_ids() -> dict[int, float]:
    return {int(raw): at for raw, at in coalesce._redis().zrange(coalesce._later_key(KIND), 0, -1, withscores=True)}


def test_timed_ids_are_taken_only_once_due_and_keep_their_earliest_time(private_queue: str) -> None:
    now = time.time()
    assert coalesce.offer_later(KIND, {1: now - 1, 2: now + 60}) is True  # no leader yet: start one
    assert coalesce.offer_later(KIND, {1: now + 30}) is False  # an id keeps its earlier time
    assert coalesce.take(KIND, 10) == [1]
    assert later_ids().keys() == {2}
    assert coalesce.keep_leading(KIND) is True  # 2 is still to come: the leader stays
    assert leader_held()


def test_a_paced_instance_comes_back_to_the_leader_not_through_a_task_per_message(
    db: None, published: Published
) -> None:
    """delaySendMessagesMilliseconds = 500: the first message goes at once, the
    instance waits in the timed set, and the same leader sends the second one when it
    is due (never earlier). No delayed drain_queue_task is published per message."""
    ensure_phone(RECIPIENT, "Recipient")
    paced = make_instance(authorized=True)
    instance_services.update_settings(paced, {"delaySendMessagesMilliseconds": 500})
    first, second = queue_one(paced, "one"), queue_one(paced, "two")
    assert coalesce.offer(KIND, [paced.id]) is True
    tasks.drain_ready_task()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (OutgoingStatus.SENT, OutgoingStatus.SENT)
    assert first.sent_at is not None and second.sent_at is not None
    assert (second.sent_at - first.sent_at).total_seconds() >= 0.5  # paced, never early
    assert published.calls == []  # no delayed task, no helper: one leader did both
    assert later_ids() == {} and not leader_held()


def test_without_redis_a_paced_wait_is_a_delayed_task(
    db: None, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Down:
        def pipeline(self, **_: Any) -> Any:
            raise redis.ConnectionError("down")

    monkeypatch.setattr(coalesce, "_redis", lambda: Down())
    services.wake_queues_later({51: 0.5, 52: 30.0})
    assert sorted(published.calls) == [("drain_queue_task", (51,)), ("drain_queue_task", (52,))]


def test_a_leader_hands_over_at_once_when_its_worker_shuts_down(
    db: None, published: Published, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A warm shutdown (SIGTERM) must not wait out the leader's run: it sweeps what it
    took, then hands over (a successor for the next worker) keeping the mark."""
    from celery.worker import state as worker_state

    ensure_phone(RECIPIENT, "Recipient")
    settings.SEND_SWEEP_SIZE = 1
    senders = [unpaced_sender() for _ in range(3)]
    for sender in senders:
        queue_one(sender, "hello")
    coalesce.offer(KIND, [s.id for s in senders])
    monkeypatch.setattr(worker_state, "should_stop", 0)  # celery's EX_OK
    tasks.drain_ready_task()  # LEADER_RUN_SECONDS (30 s) is far off
    assert published.names() == ["drain_queues_task", "drain_ready_task"]  # a helper, then the successor
    assert leader_held()
    assert len(ready_ids()) == 1  # the successor's to take


def test_drain_tasks_are_served_before_the_webhook_runs_queued_ahead_of_them(private_queue: str) -> None:
    """Under send load each sent message publishes webhook runs; a drain leader
    published after hundreds of them must still be the next task a worker gets
    (before, it waited behind them all and the paced drain stood still meanwhile)."""
    from journals import tasks as journal_tasks

    for instance_id in (1, 2, 3):
        journal_tasks.deliver_webhooks_task.apply_async((instance_id,), queue=private_queue)
    tasks.drain_ready_task.apply_async((), queue=private_queue)
    # A worker BRPOPs the queue's priority lists in kombu's step order, lowest first.
    client = coalesce._redis()
    lists = [f"{private_queue}{RedisChannel.sep}{step}" if step else private_queue for step in PRIORITY_STEPS]
    served = []
    for _ in range(4):
        raw = next(raw for raw in (client.rpop(key) for key in lists) if raw is not None)
        served.append(json.loads(raw)["headers"]["task"])
    client.delete(*lists)
    assert served == ["messaging.tasks.drain_ready_task"] + ["journals.tasks.deliver_webhooks_task"] * 3


def test_the_broker_queue_gauge_counts_every_priority(private_queue: str) -> None:
    from instances import selectors
    from journals import tasks as journal_tasks

    journal_tasks.deliver_webhooks_task.apply_async((1,), queue=private_queue)
    tasks.drain_ready_task.apply_async((), queue=private_queue)
    assert ("relay_broker_queue_length", 2) in [(name, value) for name, _, value in selectors.queue_depths()]
