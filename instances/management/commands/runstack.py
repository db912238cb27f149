"""``manage.py runstack`` (``make run``): the shipped process set (config/processes.py:
web, worker, beat, runner) in the foreground, supervised.

- A child that dies is started again after a backoff (1 s, doubling up to 30 s; back
  to 1 s once it has stayed up for a minute) while the others keep serving.
- Beat is its own child, and ``runbeat`` takes a deployment-wide lock, so a restart
  can never leave two schedulers; every child also gets SIGTERM from the kernel if
  this supervisor itself dies (``PR_SET_PDEATHSIG``), so nothing is orphaned.
- Ctrl-C (SIGINT) or SIGTERM stops everything: SIGTERM to each child's process
  group, SIGKILL after 10 s.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from config import processes

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Linux: the kernel sends SIGTERM to this child when the supervisor dies, even by
    SIGKILL, so no beat (or anything else) outlives ``make run``."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    backoff: float = 0.0
    restarts: int = field(default=0)


class Command(BaseCommand):
    help = "Run the whole product (web, worker, beat, session runner) in the foreground, supervised."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int,
                            default=int(os.environ.get("WEB_WORKERS", processes.WEB_WORKERS_DEFAULT)))
        parser.add_argument("--backoff-initial", type=float, default=1.0)
        parser.add_argument("--backoff-max", type=float, default=30.0)
        parser.add_argument("--stable-after", type=float, default=60.0,
                            help="a child up this long gets its backoff reset")

    def handle(self, *args: Any, **options: Any) -> None:
        argvs = processes.commands(host=options["host"], port=str(options["port"]),
                                   web_workers=str(options["web_workers"]), python=sys.executable)
        children = [Child(name, argv) for name, argv in argvs.items()]
        stopping = False

        def stop(signum: int = signal.SIGTERM, frame: object = None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for child in children:
                self._start(child)
            url = f"http://{options['host']}:{options['port']}"
            up_by = time.monotonic() + 60
            announced = False
            while not stopping:
                now = time.monotonic()
                for child in children:
                    self._supervise(child, now, options)
                if not announced and _answers(f"{url}/healthz"):
                    self.stdout.write(f"Relay is up on {url} — Ctrl-C stops everything")
                    self.stdout.flush()
                    announced = True
                elif not announced and now > up_by:
                    self.stderr.write(f"web did not answer on {url} within 60 s; see its output above")
                    announced = True
                time.sleep(0.2)
        finally:
            _stop_all(children)

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, cwd=settings.BASE_DIR, start_new_session=True,
                                      preexec_fn=_die_with_parent)  # no threads in this process
        child.started_at = time.monotonic()
        child.restart_at = None
        self.stdout.write(f"started {child.name} (pid {child.proc.pid})")
        self.stdout.flush()

    def _supervise(self, child: Child, now: float, options: dict[str, Any]) -> None:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restarts += 1
                self._start(child)
            return
        assert child.proc is not None
        code = child.proc.poll()
        if code is None:
            return
        if now - child.started_at >= options["stable_after"]:
            child.backoff = 0.0
        child.backoff = min(options["backoff_max"], child.backoff * 2 or options["backoff_initial"])
        child.restart_at = now + child.backoff
        # Its own process group may still hold workers (granian, celery): end them
        # before the replacement binds the same port or takes the same queue.
        _kill_group(child.proc.pid, signal.SIGKILL)
        self.stderr.write(f"{child.name} (pid {child.proc.pid}) exited with {code}; "
                          f"restarting in {child.backoff:g} s")
        self.stderr.flush()


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_all(children: list[Child]) -> None:
    running = [c.proc for c in children if c.proc is not None and c.proc.poll() is None]
    for proc in running:
        _kill_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in running:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _kill_group(proc.pid, signal.SIGKILL)  # stragglers in the group (e.g. server workers)
        if proc.poll() is None:
            proc.wait(timeout=5)


def _answers(url: str) -> bool:
    """True once the web server answers its health endpoint (even unhealthy), so the
    banner appears only when curl will work."""
    try:
        with urllib.request.urlopen(url, timeout=0.5):  # noqa: S310 - our own loopback URL
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
