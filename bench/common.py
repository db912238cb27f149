"""Helpers shared by the benches in bench/: databases, the shipped process set,
wrk, process control. Every bench starts the processes of config/processes.py (the
ones ``make run``, the Procfile and the container run), never a variant of its own."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
RECIPIENT = "79005550101"
sys.path.insert(0, str(ROOT))


def _load_processes() -> Any:
    """config/processes.py without importing the ``config`` package: its __init__
    loads the Celery app and with it Django's settings, which must wait until a bench
    has set DATABASE_URL to its own database."""
    spec = importlib.util.spec_from_file_location("relay_processes", ROOT / "config" / "processes.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


processes = _load_processes()


def sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment a user would set: PostgreSQL, Redis, the recommended pool, and
    nothing the API refuses. Receipt delays stay at their defaults unless a bench
    passes its own (as a user can)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        # A deployment refuses the public built-in key (config/settings.py).
        SECRET_KEY=os.environ.get("SECRET_KEY") or "relay-bench-only-key-Wf3kP9sQ2vL7xN4cR8tY1zB6",
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DB_POOL="true",
        LOG_LEVEL="WARNING",
        RELAY_VAR_DIR=str(ROOT / "var" / "bench"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def fresh_database(db_url: str, env: dict[str, str]) -> None:
    admin_url, _, name = db_url.rpartition("/")
    sh(["psql", f"{admin_url}/postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])
    sh(["psql", f"{admin_url}/postgres", "-qc", f"CREATE DATABASE {name}"])
    sh([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env)


PREPARE_CHUNK = 100  # instances per transaction
# Processes creating instances side by side. More than the 2 cores: each spends much
# of its time waiting for PostgreSQL's answers (about 48 statements per instance).
PREPARE_WORKERS = 4


def prepare(db_url: str, env: dict[str, str], instances: int, delay_ms: int | None = None,
            phone_prefix: str = "7990", workers: int = PREPARE_WORKERS) -> list[tuple[int, str]]:
    """A fresh database with ``instances`` authorized emulator instances, each with
    ``delaySendMessagesMilliseconds = delay_ms`` (None: the default, 3,000; 500 is
    GREEN-API's minimum), and the registered recipient every bench sends to.

    Every instance goes through the services a user's requests go through
    (``create_instance``, ``link_phone``, ``change_state``, ``update_settings``), so
    the rows are the product's own; ``create_instances`` only groups them into fewer
    transactions and processes."""
    fresh_database(db_url, env)
    django_setup(env)
    from django.contrib.auth import get_user_model

    # Imported here, not at the top: the emulator's models need Django set up, and
    # every bench imports this module before it has chosen its database.
    from engines.emulator.transport import ensure_phone
    from instances import services

    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    account = services.ensure_account(user)
    ensure_phone(RECIPIENT, "Bench recipient")
    return create_instances(env, account.pk, instances, delay_ms=delay_ms, phone_prefix=phone_prefix,
                            workers=workers)


def create_instances(env: dict[str, str], account_id: int, count: int, *, delay_ms: int | None = None,
                     phone_prefix: str = "7990", workers: int = PREPARE_WORKERS,
                     after_link: dict[str, Any] | None = None) -> list[tuple[int, str]]:
    """``count`` authorized emulator instances of ``account_id`` (phones
    ``<phone_prefix><n:07d>``), created by ``workers`` processes, each a slice of
    chunks of PREPARE_CHUNK instances per transaction; (id, token) in ``n`` order.

    One transaction per instance cost five commits (a WAL flush each) and most of the
    setup time of the benches. In a chunk the services' savepoints replace those
    commits, and their ``on_commit`` hooks (the state pushes to the channel layer,
    the send queue's wake-up on ``authorized``) run when the chunk commits, in
    order, for every instance: nothing listens yet and every queue is empty, so
    they do what they do for a user's instance, a little later."""
    from django.db import connections

    slices = [(start, min(count, start + PREPARE_CHUNK)) for start in range(0, count, PREPARE_CHUNK)]
    jobs = [(env, account_id, start, stop, delay_ms, phone_prefix, after_link) for start, stop in slices]
    if workers <= 1 or len(slices) <= 1:
        return [cred for job in jobs for cred in _create_chunk(*job)]
    # The children open their own connections; the parent's must not be shared.
    connections.close_all()
    # spawn, not fork: a forked child would inherit the parent's sockets (database,
    # Redis) and event loop state.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return [cred for chunk in pool.starmap(_create_chunk, jobs) for cred in chunk]


def _create_chunk(env: dict[str, str], account_id: int, start: int, stop: int, delay_ms: int | None,
                  phone_prefix: str, after_link: dict[str, Any] | None) -> list[tuple[int, str]]:
    """Instances ``start`` .. ``stop - 1`` in one transaction (see create_instances)."""
    django_setup(env)
    from django.db import OperationalError, transaction

    from engines.emulator import pairing
    from instances import services
    from instances.models import Account, State

    account = Account.objects.get(pk=account_id)
    changes = dict(after_link or {})
    if delay_ms is not None:
        changes["delaySendMessagesMilliseconds"] = delay_ms
    for attempt in range(3):
        creds = []
        try:
            with transaction.atomic():
                for n in range(start, stop):
                    instance = services.create_instance(account=account, name=f"bench {n}")
                    pairing.link_phone(instance, phone=f"{phone_prefix}{n:07d}")
                    services.change_state(instance, State.AUTHORIZED)
                    if changes:
                        services.update_settings(instance, changes)
                    creds.append((instance.id, instance.api_token))
            return creds
        except OperationalError:
            # Two chunks that drew each other's random idInstance wait on each
            # other's uncommitted row: PostgreSQL ends one as a deadlock. The
            # chunk rolled back whole, so it is created again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def lua_script(creds: list[tuple[int, str]]) -> str:
    """wrk: sendMessage round-robin over every instance."""
    pairs = ",".join(f'{{"{i}","{t}"}}' for i, t in creds)
    body = json.dumps({"chatId": f"{RECIPIENT}@c.us", "message": "hi from bench"})
    return f"""
local creds = {{{pairs}}}
local reqs = {{}}
local idx = 0
function init(args)
  for i, c in ipairs(creds) do
    reqs[i] = wrk.format("POST", "/waInstance" .. c[1] .. "/sendMessage/" .. c[2],
      {{["Content-Type"]="application/json"}}, '{body}')
  end
  idx = math.random(#reqs)
end
function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
"""


def wrk(script: Path, port: int, duration: int, connections: int, threads: int = 2) -> dict[str, Any]:
    out = sh(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
              f"http://127.0.0.1:{port}"]).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m[1]), m[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    total = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests": total,
        "non_2xx": int(non2xx[1]) if non2xx else 0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "socket_errors": errors[1] if errors else "",
    }


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - loopback only
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass


def shipped(port: int, web_workers: int = processes.WEB_WORKERS_DEFAULT,
            concurrency: int = processes.WORKER_CONCURRENCY_DEFAULT) -> dict[str, list[str]]:
    """The shipped process set's commands (config/processes.py), bound to ``port``."""
    return processes.commands(host="127.0.0.1", port=str(port), web_workers=str(web_workers),
                              concurrency=str(concurrency), python=PY)


def start_stack(env: dict[str, str], port: int, out_dir: Path, kinds: tuple[str, ...] = processes.KINDS,
                web_workers: int = processes.WEB_WORKERS_DEFAULT, suffix: str = "") -> dict[str, subprocess.Popen[bytes]]:
    """Start the shipped processes of ``kinds``; logs go to out_dir/<kind><suffix>.log."""
    commands = shipped(port, web_workers)
    procs = {kind: start(commands[kind], env, out_dir / f"{kind}{suffix}.log") for kind in kinds}
    if "web" in procs:
        wait_http(f"http://127.0.0.1:{port}/healthz")
    return procs


def group_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every live process in ``pid``'s process group
    (a server's workers included), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[2]) == pid:  # field 5 (pgrp) after the comm
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def psql(db_url: str, query: str) -> str:
    return sh(["psql", db_url, "-tAc", query]).stdout.strip()
