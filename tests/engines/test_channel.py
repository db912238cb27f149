"""The live-session command channel (engines.channel) between real processes: a
runner subprocess holding an instance's lease answers commands sent from this
process; commands addressed to a stale epoch are refused; with nobody holding the
session the caller is told at once. Runs on SQLite (no Redis) and PostgreSQL+Redis."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import timezone

from engines import channel
from engines.channel import CommandTimeout, NoSessionOwner, StaleEpoch
from engines.contract import TransportError
from engines.models import CommandListener, CommandState, SessionCommand
from instances.models import Instance, SessionLease
from tests.factories import make_instance
from tests.processes import running, stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ECHO = ["-m", "tests.engines.channel_echo"]


def _listening(instance: Instance) -> int:
    row = CommandListener.objects.filter(instance_id=instance.pk).values_list("epoch", flat=True).first()
    return int(row or 0)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Instance, int]]:
    """An instance whose lease a real runner process holds and serves."""
    instance = make_instance()
    with running([*ECHO, "echo-runner", "30"], tmp_path / "runner.log"):
        epoch = wait_for(lambda: _listening(instance), timeout=60, what="the runner to listen")
        yield instance, epoch


def test_the_process_holding_the_lease_answers(holder: tuple[Instance, int]) -> None:
    instance, epoch = holder

    assert channel.call(instance.pk, "echo", {"text": "hello", "n": 3}) == {"text": "hello", "n": 3}
    pid = channel.call(instance.pk, "pid")
    assert isinstance(pid, int) and pid != os.getpid()
    assert SessionLease.objects.get(instance_id=instance.pk).epoch == epoch
    # Answered commands leave no row behind.
    assert not SessionCommand.objects.exists()


def test_an_error_the_session_answers_reaches_the_caller(holder: tuple[Instance, int]) -> None:
    instance, _ = holder

    with pytest.raises(TransportError) as caught:
        channel.call(instance.pk, "refuse")

    assert caught.value.permanent
    assert "refused on purpose" in str(caught.value)


def test_a_command_addressed_to_a_stale_epoch_is_refused(holder: tuple[Instance, int]) -> None:
    instance, epoch = holder

    with pytest.raises(StaleEpoch) as caught:
        channel.call(instance.pk, "echo", {"x": 1}, epoch=epoch - 1, timeout=30)

    assert f"epoch {epoch - 1}" in str(caught.value)
    assert not caught.value.permanent
    # The refused command never ran: the holder still answers the live epoch.
    assert channel.call(instance.pk, "echo", {"x": 2}) == {"x": 2}


def test_without_a_holder_the_caller_is_told_at_once() -> None:
    instance = make_instance()  # nobody leases it

    started = time.monotonic()
    with pytest.raises(NoSessionOwner) as caught:
        channel.call(instance.pk, "echo", timeout=30)

    assert "no runner holds it" in str(caught.value)
    assert not caught.value.permanent
    assert time.monotonic() - started < 25  # long before the timeout: nothing waited
    assert not SessionCommand.objects.exists()


def test_a_lease_without_a_listening_session_is_told_at_once() -> None:
    instance = make_instance()
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="somebody", epoch=4, expires_at=timezone.now() + timezone.timedelta(seconds=60)
    )

    with pytest.raises(NoSessionOwner) as caught:
        channel.call(instance.pk, "echo", timeout=30)

    assert "starting or restarting" in str(caught.value)


def test_a_listener_that_does_not_answer_times_out_and_the_command_never_runs_later() -> None:
    instance = make_instance()
    SessionLease.objects.filter(instance_id=instance.pk).update(
        runner_id="silent", epoch=2, expires_at=timezone.now() + timezone.timedelta(seconds=60)
    )
    CommandListener.objects.create(
        instance_id=instance.pk, epoch=2, runner_id="silent", heartbeat_at=timezone.now()
    )

    with pytest.raises(CommandTimeout) as caught:
        channel.call(instance.pk, "echo", timeout=0.5)

    assert not caught.value.taken
    # Expired, then removed: a session that wakes up later finds nothing to run.
    assert not SessionCommand.objects.filter(state=CommandState.PENDING).exists()


def test_a_killed_holder_stops_answering_and_a_new_one_takes_over(tmp_path: Path) -> None:
    instance = make_instance()
    with running([*ECHO, "first", "2"], tmp_path / "first.log") as first:
        first_epoch = wait_for(lambda: _listening(instance), timeout=60, what="the first runner")
        first_pid = channel.call(instance.pk, "pid")
        stop(first, 9)
    # The lease lapses (ttl 2 s); a second runner takes it at a higher epoch.
    with running([*ECHO, "second", "30"], tmp_path / "second.log"):
        second_epoch = wait_for(
            lambda: (e := _listening(instance)) > first_epoch and e, timeout=60, what="the takeover"
        )
        assert channel.call(instance.pk, "pid") != first_pid
        with pytest.raises(StaleEpoch):
            channel.call(instance.pk, "pid", epoch=first_epoch, timeout=30)
    assert second_epoch > first_epoch
