"""``manage.py runsessions``: a session runner (see instances/runner.py)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from instances.runner import Runner


class Command(BaseCommand):
    help = "Lease instances and run their engine sessions until SIGINT/SIGTERM."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--runner-id", default="", help="Stable id (default: host:pid:random).")
        parser.add_argument("--tick", type=float, default=settings.RUNNER_TICK_SECONDS)
        parser.add_argument("--ttl", type=float, default=settings.RUNNER_LEASE_TTL_SECONDS)

    def handle(self, *args: Any, **options: Any) -> None:
        runner = Runner(ttl=options["ttl"])
        if options["runner_id"]:
            runner.runner_id = options["runner_id"]
        stop = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.stdout.write(f"runner {runner.runner_id} started (ttl {runner.ttl}s)", ending="\n")
        self.stdout.flush()
        renewer = threading.Thread(target=_renew_leases, args=(runner, stop), name="lease-renewal", daemon=True)
        renewer.start()
        try:
            while not stop.is_set():
                close_old_connections()
                try:
                    runner.tick()
                except Exception:  # noqa: BLE001 - a failed tick (DB blip) must not kill the runner
                    self.stderr.write("runner tick failed; retrying", ending="\n")

                    logging.getLogger(__name__).exception("runner tick failed")
                stop.wait(options["tick"])
        finally:
            stop.set()
            renewer.join(timeout=runner.ttl)
            runner.shutdown()
            self.stdout.write(f"runner {runner.runner_id} stopped", ending="\n")


def _renew_leases(runner: Runner, stop: threading.Event) -> None:
    """Renew this runner's leases three times per TTL, whatever the ticks are doing
    (a slow tick must not let a live runner's leases lapse)."""
    interval = max(0.2, runner.ttl / 3)
    while not stop.wait(interval):
        close_old_connections()
        try:
            runner.renew()
        except Exception:  # noqa: BLE001 - a DB blip: the next round retries, well within the TTL
            logging.getLogger(__name__).exception("lease renewal failed; retrying")
    close_old_connections()
