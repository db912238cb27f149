"""The shipped process set: one definition of every long-running process kind.

``manage.py runstack`` (``make run``), the ``Procfile``, the container
(``Dockerfile``/``compose.yaml``) and ``bench/`` all start these exact commands;
``tests/instances/test_topology.py`` fails when one of them drifts.

Process kinds and how many of each may run:
- ``web``: the ASGI server (HTTP, long-poll, WebSockets). Stateless: any number,
  on any machines, behind a load balancer.
- ``worker``: Celery worker (send queue drain, webhooks, maintenance). Any number.
- ``beat``: the Celery scheduler. Exactly one live scheduler: ``manage.py runbeat``
  holds a cluster-wide lock, so a second one only waits as a standby.
- ``runner``: session runner (``manage.py runsessions``). Any number; instances are
  spread by leases.

The web server is granian (``docs/performance.md`` has the side-by-side measurement
of daphne, uvicorn and granian that chose it).
"""

from __future__ import annotations

# Argument lists start with the interpreter placeholder; callers substitute
# ``sys.executable`` (runstack, bench) or ``python`` (Procfile, container).
PYTHON = "python"
KINDS = ("web", "worker", "beat", "runner")
WEB_WORKERS_DEFAULT = 2
WORKER_CONCURRENCY_DEFAULT = 4
# Requests a web worker serves at once. granian's default is its listen backlog
# divided by the workers (1 024 / 2 = 512 per worker): a receiveNotification long
# poll holds its slot for up to receiveTimeout (60 s), so past 1 024 waiters every
# further request, sendMessage included, waited for a waiter to finish. A waiter
# costs a socket and a few KB (docs/performance.md, Long-poll), not a thread.
WEB_BACKPRESSURE = 32768


def web(host: str, port: str, workers: str) -> list[str]:
    # asgi interface: Channels (WebSockets) and the lifespan handler in config.asgi.
    # uvloop: the loop the product was tuned on (messaging.fastlane, long-poll).
    return [PYTHON, "-m", "granian", "--interface", "asgi", "--host", host, "--port", port,
            "--workers", workers, "--loop", "uvloop", "--backpressure", str(WEB_BACKPRESSURE),
            "--log-level", "warning", "config.asgi:application"]


def worker(concurrency: str) -> list[str]:
    # Threads: the drain and webhook tasks wait on I/O; beat is NOT embedded (-B),
    # it is its own process kind so that restarting a worker never starts a scheduler.
    return [PYTHON, "-m", "celery", "-A", "config", "worker", "--pool", "threads",
            "--concurrency", concurrency, "--loglevel", "INFO"]


def beat() -> list[str]:
    return [PYTHON, "manage.py", "runbeat"]


def runner() -> list[str]:
    return [PYTHON, "manage.py", "runsessions"]


def commands(
    host: str = "127.0.0.1", port: str = "8000", web_workers: str = str(WEB_WORKERS_DEFAULT),
    concurrency: str = str(WORKER_CONCURRENCY_DEFAULT), python: str = PYTHON,
) -> dict[str, list[str]]:
    """Every process kind's argv, in start order."""
    table = {"web": web(host, port, web_workers), "worker": worker(concurrency), "beat": beat(),
             "runner": runner()}
    return {name: [python if arg == PYTHON else arg for arg in argv] for name, argv in table.items()}
