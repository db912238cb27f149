"""``manage.py runbeat``: the Celery scheduler, of which at most one runs at a time.

Two schedulers would enqueue every periodic job twice. Beat is therefore its own
process kind (never ``worker -B``), and before scheduling anything it takes a lock
that the whole deployment shares:

- PostgreSQL: a session advisory lock on a connection this process keeps open.
  The server drops it when the process or its connection dies, so a crashed beat
  never blocks its successor; if the connection is lost while beat runs, this
  process exits at once (another one may already hold the lock).
- SQLite (one machine): an exclusive ``flock`` on ``$RELAY_VAR_DIR/beat.lock``,
  released by the kernel when the process dies.

A second ``runbeat`` (another machine, a restart that raced its predecessor)
waits as a standby and takes over when the lock is released.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from typing import Any

import psycopg
from celery import current_app
from django.conf import settings
from django.core.management.base import BaseCommand

log = logging.getLogger(__name__)

# pg_advisory_lock key: any constant unique to this purpose ("relaybeat" as bytes).
ADVISORY_KEY = 0x72656C6179626561
CHECK_SECONDS = 2.0


class BeatLock:
    """The deployment-wide beat lock (see the module docstring)."""

    def __init__(self) -> None:
        self._conn: Any = None
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if settings.IS_POSTGRES:
            return self._try_pg()
        return self._try_file()

    def _try_pg(self) -> bool:
        if self._conn is None or self._conn.closed:
            db = settings.DATABASES["default"]
            self._conn = psycopg.connect(
                host=db.get("HOST") or None, port=db.get("PORT") or None, dbname=db["NAME"],
                user=db.get("USER") or None, password=db.get("PASSWORD") or None, autocommit=True,
                application_name="relay-beat-lock",
            )
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY]).fetchone()
        return bool(row and row[0])

    def _try_file(self) -> bool:
        if self._fd is None:
            self._fd = os.open(str(settings.VAR_DIR / "beat.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def still_held(self) -> bool:
        """False once the PostgreSQL session holding the lock is gone."""
        if self._conn is None:
            return True  # flock: held for as long as this process lives
        try:
            self._conn.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means the session (and lock) may be gone
            return False
        return True


class Command(BaseCommand):
    help = "Run the Celery beat scheduler; waits as a standby while another beat holds the lock."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--schedule", default=settings.CELERY_BEAT_SCHEDULE_FILENAME)
        parser.add_argument("--retry-seconds", type=float, default=5.0)
        parser.add_argument("--check", action="store_true",
                            help="exit 0 if some beat holds the lock, 1 if none does (a health check)")

    def handle(self, *args: Any, **options: Any) -> None:
        lock = BeatLock()
        if options["check"]:
            # Taking the lock succeeds only when no beat holds it; this process exits
            # right after, which releases it again.
            raise SystemExit(1 if lock.try_acquire() else 0)
        announced = False
        while True:
            try:
                if lock.try_acquire():
                    break
            except Exception:  # noqa: BLE001 - database not up yet: keep waiting, as a standby would
                log.exception("beat lock: cannot reach the database")
            if not announced:
                self.stdout.write("another beat holds the lock; standing by", ending="\n")
                self.stdout.flush()
                announced = True
            time.sleep(options["retry_seconds"])
        self.stdout.write(f"beat lock taken (pid {os.getpid()}); scheduling", ending="\n")
        self.stdout.flush()
        threading.Thread(target=_watch, args=(lock,), daemon=True, name="beat-lock-watch").start()

        current_app.Beat(schedule=options["schedule"], loglevel=os.environ.get("LOG_LEVEL", "INFO")).run()


def _watch(lock: BeatLock) -> None:
    """Exit the moment the lock may have been lost: a scheduler without the lock
    could be the second one."""
    while True:
        time.sleep(CHECK_SECONDS)
        if not lock.still_held():
            log.error("beat lock lost (database connection gone); exiting so no two beats run")
            os._exit(3)
