"""Start real product processes (Celery workers, runners) against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """A DATABASE_URL that points subprocesses at this test run's database."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.test_settings",
        DATABASE_URL=test_database_url(),
        RELAY_VAR_DIR=str(settings.VAR_DIR),
        CELERY_TASK_ALWAYS_EAGER="false",
        PYTHONUNBUFFERED="1",
        # Test workers keep the test run's priority: on a busy 2-core CI machine a
        # lowered worker would only make the waits on it longer
        # (tests/instances/test_worker_priority.py sets it explicitly).
        WORKER_NICENESS="0",
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


def start(args: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=process_env(**env), stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextmanager
def running(args: list[str], log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = start(args, log, **env)
    try:
        yield proc
    finally:
        stop(proc)


def celery_worker_args(queue: str, schedule: Path | None = None, concurrency: int = 2) -> list[str]:
    args = ["-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "threads",
            "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle",
            "-n", f"{queue}@%h"]
    if schedule is not None:
        args += ["-B", "--schedule", str(schedule)]
    return args


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def private_broker_queue(settings: Any) -> Iterator[str]:
    """A broker queue of the test's own (``settings.CELERY_TASK_DEFAULT_QUEUE``), with
    tasks published to the broker instead of run inline: a real worker started on that
    queue gets them, and concurrent test runs (xdist, another checkout) never eat each
    other's tasks. ``settings`` is pytest-django's fixture, which restores the queue
    name afterwards; eager mode is restored here."""
    from config.celery import app as celery_app

    name = f"test-{uuid.uuid4().hex[:10]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = name
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield name
    finally:
        celery_app.conf.task_always_eager = eager
