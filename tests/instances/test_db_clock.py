"""Leases and fences are judged on the database's clock (instances.dbclock), not on
each process's: a process whose clock runs an hour ahead must not take over a live
session lease or drain lock, nor write through a fence, because of its clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from engines.emulator import pairing
from instances import services as instance_services
from instances.models import Instance, SessionLease, State
from instances.runner import Runner
from messaging import services
from messaging.models import SendCursor
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on this process's clock runs an hour ahead of the database's."""
    real = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real() + timedelta(hours=1))


def test_a_runner_with_a_fast_clock_does_not_take_a_live_lease(request: pytest.FixtureRequest) -> None:
    instance = make_instance()
    holder = Runner(ttl=60)
    holder.runner_id = "holder"
    assert holder.acquire() == [instance.pk]
    request.getfixturevalue("clock_ahead")
    fast = Runner(ttl=60)
    fast.runner_id = "fast-clock"
    assert fast.acquire() == []
    assert SessionLease.objects.get(instance=instance).runner_id == "holder"
    holder.heartbeat()  # the holder keeps it, whatever this process's clock says
    assert holder.owned == {instance.pk: SessionLease.objects.get(instance=instance).epoch}


def test_a_fence_holds_on_the_database_clock(request: pytest.FixtureRequest) -> None:
    instance = make_instance()
    pairing.link_phone(instance, phone="79005550101", name="P")
    runner = Runner(ttl=60)
    runner.runner_id = "holder"
    runner.acquire()
    request.getfixturevalue("clock_ahead")
    # The lease is live on the database's clock: the fenced write goes through.
    assert instance_services.change_state(instance, State.AUTHORIZED, fence=runner.fence(instance.pk))
    assert Instance.objects.get(pk=instance.pk).state == State.AUTHORIZED


def test_a_worker_with_a_fast_clock_does_not_take_a_live_drain_lock(request: pytest.FixtureRequest) -> None:
    instance = make_instance(authorized=True)
    assert services._acquire_drain_locks([instance.pk], "worker-a") == [instance.pk]
    request.getfixturevalue("clock_ahead")
    assert services._acquire_drain_locks([instance.pk], "worker-b") == []
    assert SendCursor.objects.get(instance=instance).locked_by == "worker-a"
