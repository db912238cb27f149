"""``manage.py runstack``: web + Celery worker (with beat) + session runner in the
foreground, as one process group. Ctrl-C (or SIGTERM) stops all of them; if any one
dies, the others are stopped too so the failure is visible."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the whole product (web, worker, beat, session runner) in the foreground."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, **options: Any) -> None:
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        commands = {
            "web": [python, "-m", "daphne", "-b", options["host"], "-p", str(options["port"]),
                    "config.asgi:application"],
            "worker": [python, "-m", "celery", "-A", "config", "worker", "-B", "--pool", "threads",
                       "--concurrency", "4", "--loglevel", "INFO",
                       "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME],
            "runner": [python, manage, "runsessions"],
        }
        procs: dict[str, subprocess.Popen[bytes]] = {}
        stopping = False

        def stop(signum: int = signal.SIGTERM, frame: object = None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, cmd in commands.items():
            procs[name] = subprocess.Popen(cmd, cwd=settings.BASE_DIR)
            self.stdout.write(f"started {name} (pid {procs[name].pid})")
        url = f"http://{options['host']}:{options['port']}"
        if _wait_until_up(f"{url}/healthz", procs["web"], timeout=60):
            self.stdout.write(f"Relay is up on {url} — Ctrl-C stops everything")
        else:
            self.stderr.write(f"web did not answer on {url} within 60 s; see its output above")
        exit_code = 0
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with {proc.returncode}; stopping the stack")
                        exit_code = proc.returncode or 1
                        stopping = True
                        break
                time.sleep(0.3)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.time() + 10
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    proc.kill()
        if exit_code:
            raise SystemExit(exit_code)


def _wait_until_up(url: str, web: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll the health endpoint so the banner appears only when curl will work."""
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline and web.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback URL
                return True
        except urllib.error.HTTPError:
            return True  # it answers (even if unhealthy)
        except OSError:
            time.sleep(0.3)
    return False
