"""Two real ``manage.py runsessions`` processes competing for leases.

Kills one with SIGKILL and proves the other takes every orphaned instance after the
TTL, that epochs only grow, and that no takeover happened before the previous holder's
lease had expired (no instance was ever held by two runners at once).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from instances.models import Instance, LeaseGrant, SessionLease
from tests.factories import make_instance

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("transactional_db")]

TTL = 2.0
TICK = 0.2
STARTUP = 30.0  # Django start-up of a runner subprocess on a busy CI machine
BASE_DIR = Path(settings.BASE_DIR)


def database_url() -> str:
    """The test database, as a DATABASE_URL a subprocess understands."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = db.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}" if password else user
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


class Runners:
    """Starts ``runsessions`` subprocesses and kills whatever is left at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, runner_id: str, ttl: float = TTL) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "RELAY_VAR_DIR": str(settings.VAR_DIR),
        }
        log = (self.log_dir / f"runner-{runner_id}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runsessions", "--tick", str(TICK), "--ttl", str(ttl),
             "--runner-id", runner_id],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs[runner_id] = proc
        return proc

    def log(self, runner_id: str) -> str:
        return (self.log_dir / f"runner-{runner_id}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - kill -9 does not hang
                pass


@pytest.fixture
def runners(tmp_path: Path) -> Iterator[Runners]:
    group = Runners(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


def wait_for(condition: Callable[[], bool], timeout: float, what: str, diag: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    if condition():
        return
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{diag()}")


def holders(ids: list[int]) -> dict[int, str]:
    """instance id -> runner id of each live lease (expired leases count as free)."""
    now = timezone.now()
    rows = SessionLease.objects.filter(instance_id__in=ids).values_list("instance_id", "runner_id", "expires_at")
    return {pk: rid for pk, rid, expires in rows if rid and expires is not None and expires > now}


def assert_no_overlap(ids: list[int]) -> None:
    """From the grant audit: per instance, epochs strictly increase, are unique, and
    every takeover from a runner came after that runner's lease had expired."""
    for pk in ids:
        grants = list(LeaseGrant.objects.filter(instance_id=pk).order_by("granted_at", "id"))
        assert grants, f"instance {pk} was never leased"
        epochs = [g.epoch for g in grants]
        assert epochs == sorted(set(epochs)), f"instance {pk}: epochs not strictly increasing {epochs}"
        for prev, grant in zip(grants, grants[1:], strict=False):
            if grant.previous_runner_id:
                assert grant.previous_runner_id == prev.runner_id, (pk, prev.runner_id, grant.previous_runner_id)
                assert grant.previous_expires_at is not None
                assert grant.granted_at >= grant.previous_expires_at, (
                    f"instance {pk}: {grant.runner_id} took epoch {grant.epoch} at {grant.granted_at} "
                    f"before {prev.runner_id}'s lease expired at {grant.previous_expires_at}"
                )


def test_survivor_takes_over_killed_runner_without_overlap(runners: Runners) -> None:
    ids = [make_instance().pk for _ in range(10)]
    runners.start("A")
    runners.start("B")

    def diag() -> str:
        return f"holders={holders(ids)}\nA:\n{runners.log('A')}\nB:\n{runners.log('B')}"

    wait_for(lambda: len(holders(ids)) == len(ids), STARTUP, "all instances leased", diag)
    owners = holders(ids)
    counts = {rid: sum(1 for r in owners.values() if r == rid) for rid in ("A", "B")}
    victim = max(counts, key=lambda rid: counts[rid])
    survivor = "B" if victim == "A" else "A"
    orphaned = [pk for pk, rid in owners.items() if rid == victim]
    assert orphaned
    assert runners.procs[survivor].poll() is None, runners.log(survivor)

    killed_at: datetime = timezone.now()
    runners.procs[victim].send_signal(signal.SIGKILL)
    runners.procs[victim].wait(timeout=5)

    wait_for(
        lambda: all(holders(ids).get(pk) == survivor for pk in orphaned),
        TTL + 4,
        f"{survivor} to take over {victim}'s instances",
        diag,
    )

    for pk in orphaned:
        takeover = LeaseGrant.objects.filter(instance_id=pk, previous_runner_id=victim).order_by("-epoch").first()
        assert takeover is not None, f"no takeover grant for {pk}"
        assert takeover.runner_id == survivor
        # The killed runner was renewing until killed_at, so its lease ran past it.
        assert takeover.granted_at > killed_at
        assert not LeaseGrant.objects.filter(instance_id=pk, runner_id=victim, granted_at__gt=killed_at).exists()
    assert_no_overlap(ids)
    assert all(not Instance.objects.get(pk=pk).is_deleted for pk in ids)


# Long enough that no lease of the SIGTERM test can expire while the test runs, on a
# machine as loaded as it gets: every takeover it sees must come from a released
# lease (the grant records no previous holder), which is what "promptly" means.
# Nothing is timed against the wall clock beyond generous bounds.
SIGTERM_TTL = 120.0


def test_sigterm_releases_leases_promptly(runners: Runners) -> None:
    ids = [make_instance().pk for _ in range(6)]
    runners.start("A", ttl=SIGTERM_TTL)
    runners.start("B", ttl=SIGTERM_TTL)

    def diag() -> str:
        return f"holders={holders(ids)}\nA:\n{runners.log('A')}\nB:\n{runners.log('B')}"

    wait_for(lambda: len(holders(ids)) == len(ids), STARTUP, "all instances leased", diag)
    owners = holders(ids)
    victim = max(("A", "B"), key=lambda rid: sum(1 for r in owners.values() if r == rid))
    survivor = "B" if victim == "A" else "A"
    released = [pk for pk, rid in owners.items() if rid == victim]

    terminated_at = timezone.now()
    runners.procs[victim].send_signal(signal.SIGTERM)
    assert runners.procs[victim].wait(timeout=STARTUP) == 0, runners.log(victim)
    assert "stopped" in runners.log(victim)

    # Released at exit: none of them is still held by the stopped runner.
    assert not any(holders(ids).get(pk) == victim for pk in released), diag()
    # The survivor takes them from a free lease, well before the TTL would have let it.
    wait_for(
        lambda: all(holders(ids).get(pk) == survivor for pk in released), STARTUP, "takeover of released leases", diag
    )
    for pk in released:
        grant = LeaseGrant.objects.filter(instance_id=pk, granted_at__gt=terminated_at).order_by("epoch").first()
        assert grant is not None
        assert (grant.runner_id, grant.previous_runner_id, grant.previous_expires_at) == (survivor, "", None)
    assert_no_overlap(ids)
