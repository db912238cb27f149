"""A session process for the command-channel tests: takes the lease of every free
instance as a real ``Runner`` and serves their commands through ``engines.channel``
until SIGTERM. Commands: ``echo`` (answers its args), ``refuse`` (a permanent
error), ``pid`` (answers its process id)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
    django.setup()
    from engines.channel import Listener
    from engines.contract import TransportError
    from instances.runner import Runner

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runner = Runner(runner_id=sys.argv[1], ttl=float(sys.argv[2]), capacity=100)

    def handler(name: str, args: dict[str, Any]) -> Any:
        if name == "echo":
            return args
        if name == "pid":
            return os.getpid()
        if name == "refuse":
            raise TransportError("refused on purpose", permanent=True)
        raise TransportError(f"unknown command {name}", permanent=True)

    listeners: dict[int, Listener] = {}
    while not stop.is_set():
        runner.heartbeat()
        runner.acquire()
        for instance_id, epoch in runner.owned.items():
            if instance_id not in listeners or listeners[instance_id].epoch != epoch:
                listener = Listener(instance_id, epoch, runner.runner_id)
                if listener.start():
                    listeners[instance_id] = listener
        for instance_id, listener in list(listeners.items()):
            if not listener.keep_alive():
                listener.stop()
                del listeners[instance_id]
                continue
            listener.serve_once(handler)
        if listeners:
            next(iter(listeners.values())).wait(0.2)
        else:
            stop.wait(0.1)
    for listener in listeners.values():
        listener.stop()
    runner.shutdown()


if __name__ == "__main__":
    main()
