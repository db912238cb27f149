"""Session runner leases, in-process: two ``Runner`` objects competing for one database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from engines.emulator import pairing
from instances import services
from instances.models import Instance, InstanceStateChange, LeaseGrant, SessionLease, State
from instances.runner import Runner
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


def make_runner(runner_id: str, *, ttl: float = 30.0, capacity: int = 100) -> Runner:
    return Runner(runner_id=runner_id, ttl=ttl, capacity=capacity)


def lease(instance: Instance) -> SessionLease:
    return SessionLease.objects.get(instance_id=instance.pk)


def expire(instance: Instance) -> None:
    SessionLease.objects.filter(instance_id=instance.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_acquire_takes_free_leases_and_records_grants() -> None:
    first, second = make_instance(), make_instance()
    runner = make_runner("A")

    taken = runner.acquire()

    assert sorted(taken) == sorted([first.pk, second.pk])
    assert runner.owned == {first.pk: 1, second.pk: 1}
    for inst in (first, second):
        row = lease(inst)
        assert row.runner_id == "A"
        assert row.epoch == 1
        assert row.expires_at is not None and row.expires_at > timezone.now()
        grant = LeaseGrant.objects.get(instance_id=inst.pk)
        assert (grant.epoch, grant.runner_id, grant.previous_runner_id) == (1, "A", "")


def test_acquire_again_takes_nothing_new() -> None:
    make_instance()
    runner = make_runner("A")
    runner.acquire()

    assert runner.acquire() == []
    assert LeaseGrant.objects.count() == 1


def test_second_runner_cannot_take_a_live_lease() -> None:
    inst = make_instance()
    a, b = make_runner("A"), make_runner("B")
    a.acquire()

    assert b.acquire() == []
    b.tick()

    assert b.owned == {}
    assert lease(inst).runner_id == "A"
    assert lease(inst).epoch == 1


def test_heartbeat_extends_the_lease() -> None:
    inst = make_instance()
    a = make_runner("A", ttl=30)
    a.acquire()
    SessionLease.objects.filter(instance_id=inst.pk).update(expires_at=timezone.now() + timedelta(seconds=2))

    a.heartbeat()

    row = lease(inst)
    assert row.expires_at is not None
    assert row.expires_at > timezone.now() + timedelta(seconds=20)
    assert a.owned == {inst.pk: 1}


def test_expired_lease_moves_to_another_runner_with_a_higher_epoch() -> None:
    inst = make_instance()
    a, b = make_runner("A"), make_runner("B")
    a.acquire()
    expire(inst)

    assert b.acquire() == [inst.pk]

    row = lease(inst)
    assert (row.runner_id, row.epoch) == ("B", 2)
    grant = LeaseGrant.objects.get(instance_id=inst.pk, epoch=2)
    assert grant.runner_id == "B"
    assert grant.previous_runner_id == "A"
    assert grant.previous_expires_at is not None
    assert grant.granted_at >= grant.previous_expires_at

    a.heartbeat()
    assert inst.pk not in a.owned
    # The loser's heartbeat must not renew (steal back) the lease.
    assert lease(inst).runner_id == "B"
    assert lease(inst).epoch == 2


def test_runner_whose_lease_expired_untaken_drops_it_then_retakes_with_new_epoch() -> None:
    inst = make_instance()
    a = make_runner("A")
    a.acquire()
    expire(inst)

    a.tick()

    assert a.owned == {inst.pk: 2}
    assert lease(inst).epoch == 2


def test_stale_fence_changes_nothing() -> None:
    inst = make_instance()
    a, b = make_runner("A"), make_runner("B")
    a.acquire()
    stale = a.fence(inst.pk)
    expire(inst)
    b.acquire()
    history_before = InstanceStateChange.objects.filter(instance_id=inst.pk).count()

    assert services.change_state(inst, State.AUTHORIZED, wid="79001112233@c.us", fence=stale) is False

    fresh = Instance.objects.get(pk=inst.pk)
    assert fresh.state == State.NOT_AUTHORIZED
    assert fresh.wid == ""
    assert InstanceStateChange.objects.filter(instance_id=inst.pk).count() == history_before
    # The current holder's fence works.
    assert services.change_state(inst, State.STARTING, fence=b.fence(inst.pk)) is True
    assert Instance.objects.get(pk=inst.pk).state == State.STARTING


def test_fence_of_an_expired_lease_changes_nothing_even_if_untaken() -> None:
    inst = make_instance()
    a = make_runner("A")
    a.acquire()
    fence = a.fence(inst.pk)
    expire(inst)

    assert services.change_state(inst, State.STARTING, fence=fence) is False
    assert Instance.objects.get(pk=inst.pk).state == State.NOT_AUTHORIZED


def test_shutdown_releases_leases_for_immediate_takeover() -> None:
    insts = [make_instance() for _ in range(3)]
    a, b = make_runner("A"), make_runner("B")
    a.acquire()

    a.shutdown()

    assert a.owned == {}
    assert all(lease(i).runner_id == "" for i in insts)
    assert sorted(b.acquire()) == sorted(i.pk for i in insts)
    assert all((lease(i).runner_id, lease(i).epoch) == ("B", 2) for i in insts)


def test_shutdown_does_not_release_leases_it_lost() -> None:
    inst = make_instance()
    a, b = make_runner("A"), make_runner("B")
    a.acquire()
    expire(inst)
    b.acquire()

    a.shutdown()

    assert (lease(inst).runner_id, lease(inst).epoch) == ("B", 2)


def test_capacity_is_respected() -> None:
    insts = [make_instance() for _ in range(5)]
    a, b = make_runner("A", capacity=2), make_runner("B", capacity=10)

    assert len(a.acquire()) == 2
    a.tick()
    assert len(a.owned) == 2
    assert len(b.acquire()) == 3
    assert set(a.owned) | set(b.owned) == {i.pk for i in insts}
    assert not set(a.owned) & set(b.owned)


def test_deleted_instances_are_not_leased() -> None:
    alive, deleted = make_instance(), make_instance()
    services.delete_instance(deleted)
    a = make_runner("A")

    assert a.acquire() == [alive.pk]
    assert lease(deleted).runner_id == ""


def test_deleting_an_owned_instance_drops_its_lease() -> None:
    inst = make_instance()
    a = make_runner("A")
    a.acquire()

    services.delete_instance(inst)
    a.tick()

    assert a.owned == {}
    assert lease(inst).runner_id == ""


def test_restarted_runner_with_same_id_does_not_keep_dead_leases_alive() -> None:
    """A runner restarted with a stable ``--runner-id`` must not renew the leases its
    dead predecessor held (it does not run those sessions): they must expire and be
    taken over, not stay orphaned forever."""
    orphan = make_instance()
    dead = make_runner("A")
    dead.acquire()
    SessionLease.objects.filter(instance_id=orphan.pk).update(expires_at=timezone.now() + timedelta(seconds=1))
    before = lease(orphan).expires_at
    fresh_instance = make_instance()
    restarted = make_runner("A")
    restarted.acquire()
    assert restarted.owned == {fresh_instance.pk: 1}

    restarted.heartbeat()

    assert lease(orphan).expires_at == before


@pytest.mark.parametrize(("wid", "expected"), [(True, State.AUTHORIZED), (False, State.NOT_AUTHORIZED)])
def test_step_emulator_sessions_finishes_starting(wid: bool, expected: str, settings: Any) -> None:
    settings.EMULATOR_STARTUP_SECONDS = 0
    inst = make_instance()
    if wid:
        pairing.link_phone(inst, phone="79005550001", name="Alice")
    else:
        services.change_state(inst, State.STARTING)
    assert Instance.objects.get(pk=inst.pk).state == State.STARTING
    a = make_runner("A")

    a.tick()

    fresh = Instance.objects.get(pk=inst.pk)
    assert fresh.state == expected
    if wid:
        assert fresh.wid == "79005550001@c.us"
        assert fresh.profile_name == "Alice"


def test_step_waits_for_startup_delay(settings: Any) -> None:
    settings.EMULATOR_STARTUP_SECONDS = 60
    inst = make_instance()
    pairing.link_phone(inst, phone="79005550002")
    a = make_runner("A")

    a.tick()

    assert Instance.objects.get(pk=inst.pk).state == State.STARTING


def test_only_the_lease_holder_steps_a_session(settings: Any) -> None:
    settings.EMULATOR_STARTUP_SECONDS = 0
    inst = make_instance()
    a, b = make_runner("A", capacity=0), make_runner("B")
    pairing.link_phone(inst, phone="79005550003")

    a.tick()
    assert Instance.objects.get(pk=inst.pk).state == State.STARTING
    b.tick()
    assert Instance.objects.get(pk=inst.pk).state == State.AUTHORIZED


def test_runner_that_lost_its_lease_does_not_step_the_session(settings: Any) -> None:
    settings.EMULATOR_STARTUP_SECONDS = 0
    inst = make_instance()
    a, b = make_runner("A"), make_runner("B", capacity=0)
    a.acquire()
    expire(inst)
    # B takes it over but (capacity now 0) never steps; A wakes up after the takeover.
    b.capacity = 1
    b.acquire()
    b.capacity = 0
    pairing.link_phone(inst, phone="79005550004")

    a.step_sessions()

    assert Instance.objects.get(pk=inst.pk).state == State.STARTING


@pytest.mark.django_db(transaction=True)
def test_leases_stay_renewed_while_a_tick_outlasts_the_ttl() -> None:
    """runsessions renews from a thread of its own: a tick stuck in its session steps
    for several TTLs keeps every lease (no lapse, no re-take by another runner)."""
    import threading

    from instances.management.commands.runsessions import _renew_leases

    instance = make_instance()
    runner = make_runner("A", ttl=1.0)
    other = make_runner("B", ttl=1.0)
    runner.acquire()
    stop = threading.Event()
    renewer = threading.Thread(target=_renew_leases, args=(runner, stop), daemon=True)
    renewer.start()
    try:
        # A slow tick: this thread does nothing for 3 TTLs while B tries to take over.
        deadline = timezone.now() + timedelta(seconds=3)
        while timezone.now() < deadline:
            assert other.acquire() == []
            stop.wait(0.2)
    finally:
        stop.set()
        renewer.join(timeout=5)
    assert runner.owned == {instance.pk: 1}
    assert lease(instance).runner_id == "A"
    assert LeaseGrant.objects.filter(instance_id=instance.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_without_renewal_the_same_slow_tick_loses_the_lease() -> None:
    """The control for the test above: with no renewal thread the lease lapses."""
    instance = make_instance()
    runner = make_runner("A", ttl=1.0)
    other = make_runner("B", ttl=1.0)
    runner.acquire()
    deadline = timezone.now() + timedelta(seconds=3)
    taken: list[int] = []
    while timezone.now() < deadline and not taken:
        taken = other.acquire()
        if not taken:
            import time

            time.sleep(0.2)
    assert taken == [instance.pk]
