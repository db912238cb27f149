"""A Celery worker lowers its own CPU priority (``WORKER_NICENESS``), so on one
machine the web process gets the CPU first when everything is busy (docs/deploy.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from journals.tasks import wake_due_webhooks_task
from tests.processes import celery_worker_args, private_broker_queue, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("transactional_db")]


def thread_niceness(pid: int) -> dict[int, int]:
    """Every thread's nice value (field 19 of /proc/<pid>/task/<tid>/stat)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(") ", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found[int(task.name)] = int(fields[16])
    return found


def ready(log: Path) -> bool:
    return log.exists() and " ready." in log.read_text(errors="replace")


@pytest.mark.parametrize("niceness", [0, 7])
def test_a_worker_runs_every_thread_at_its_configured_niceness(niceness: int, tmp_path: Path, settings: Any) -> None:
    if not settings.REDIS_URL:
        pytest.skip("a real worker needs the Redis broker")
    base = os.nice(0)  # this process's own value: the worker inherits it first
    log = tmp_path / "worker.log"
    with private_broker_queue(settings) as queue, running(
        celery_worker_args(queue, concurrency=3), log, WORKER_NICENESS=str(niceness), CELERY_TASK_DEFAULT_QUEUE=queue
    ) as proc:
        wait_for(lambda: ready(log), timeout=90, what="the worker to be ready")
        # The thread pool starts its threads on demand: give it tasks (a housekeeping
        # task with nothing to do) until more than the main thread exists.
        for _ in range(3):
            wake_due_webhooks_task.apply_async(queue=queue)

        def pool_started() -> dict[int, int] | None:
            found = thread_niceness(proc.pid)
            return found if len(found) >= 2 else None

        threads = wait_for(pool_started, timeout=60, what="the pool's threads to start")
    # The main thread and the pool's threads that ran the tasks, all lowered.
    assert set(threads.values()) == {min(19, base + niceness)}, threads
