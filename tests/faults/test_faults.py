"""The fault suite: the whole stack as real processes (uvicorn, a Celery worker with
beat, a session runner) under a steady sendMessage load, on a PostgreSQL cluster and
a redis-server of its own (the machine's shared ones are never touched). One fault
per phase, in order: kill -9 of the web server, of the worker, of the runner; Redis
killed and restarted; PostgreSQL restarted; the webhook receiver down, then up.

After each phase: every accepted idMessage (a 200 to the client) reaches a final
status, and exactly once, counted from the send attempt log (messaging_sendattempt,
no unique constraint); every notification reaches the webhook receiver, first
arrivals in receiptId order; the queue moves again (a probe sent after the fault
reaches a final status) within RECOVERY_BOUND_SECONDS, counted from the moment the
failed part is started again (a process spawned, a server started: its start-up is
part of the recovery). Figures (accepted, lost,
duplicated, recovery) go to var/faults/figures.json (earlier runs: docs/performance-history.md).

Nothing is timed tightly: every wait is on a condition with a generous bound (the
machine has two shared cores). The stack runs with short recovery settings
(stuck-row and lock timeouts of 10 s, recovery every 2 s, webhook retries after
0.5/1 s), stated in STACK_ENV, so a phase ends in seconds, not minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import _free_port
from tests.journals.test_webhooks import Receiver, receipt_of

pytestmark = [pytest.mark.integration, pytest.mark.services]

ROOT = Path(__file__).resolve().parent.parent.parent
RECIPIENT = "79001112299"
RECOVERY_BOUND_SECONDS = 90.0  # fault over -> a new message reaches a final status
SETTLE_BOUND_SECONDS = 180.0  # load over -> every accepted message final, every webhook in
STARTUP_BOUND_SECONDS = 90.0  # a Django process starting on a loaded machine
PACE_SECONDS = 0.05  # between accepted sends: a steady load, not a flood (the suite stays short)
FINAL = ("sent", "delivered", "read", "failed", "noAccount", "notInGroup", "yellowCard")
SECRET = "relay-fault-suite-only-key-V7pX2mQ9sL4wK8nR3tZ6yB1cF5"

STACK_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "SECRET_KEY": SECRET,
    "RATE_LIMITS_ENABLED": "false",
    "SEND_STUCK_AFTER_SECONDS": "10",
    "SEND_DRAIN_LOCK_SECONDS": "10",
    "RELAY_RECOVER_INTERVAL_SECONDS": "2",
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
    "WEBHOOK_RETRY_SCHEDULE": "0.5,1",
    "WEBHOOK_RETRY_JITTER": "0",
    "WEBHOOK_RECOVER_INTERVAL_SECONDS": "1",
    # A delivery's lease outlives its POST timeout (journals.webhooks.lease_seconds):
    # a worker killed mid-POST holds its instance's webhooks that long (~200 s with
    # the defaults). Short timeouts keep the phase short; the receiver answers at once.
    "WEBHOOK_TIMEOUT_SECONDS": "5",
    "WEBHOOK_CONNECT_TIMEOUT_SECONDS": "2",
    "PYTHONUNBUFFERED": "1",
    "LOG_LEVEL": "WARNING",
}

BOOTSTRAP = """
import os
from instances import services
from engines.emulator.transport import ensure_phone
from tests.factories import make_instance
ensure_phone(os.environ["FAULT_RECIPIENT"], "Recipient")
instance = make_instance(authorized=True)
services.update_settings(instance, {
    "delaySendMessagesMilliseconds": 0, "webhookUrl": os.environ["FAULT_WEBHOOK"],
    "outgoingWebhook": True, "outgoingAPIMessageWebhook": True,
})
print("INSTANCE", instance.id, instance.api_token)
"""


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# --- Private services ---------------------------------------------------------------------


def _pg_bin() -> Path | None:
    found = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PrivateCluster:
    """A throw-away PostgreSQL cluster on a free port, started and restarted by this
    test (pg_ctl), never the machine's shared one."""

    def __init__(self, workdir: Path) -> None:
        bindir = _pg_bin()
        assert bindir is not None
        self.bin = bindir
        # Its own top-level directory: the server's user must be able to reach it
        # (pytest's temporary directories are private to the user running pytest).
        self.dir = Path(tempfile.mkdtemp(prefix="relay-faults-pg-")) / "data"
        self.port = _free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/relay"

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run([*self.as_postgres, *args], timeout=timeout, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{args[0]} failed: {result.stdout}{result.stderr}"

    def init(self) -> None:
        self.dir.mkdir()
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.dir.parent, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.dir), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "relay")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-o", options, "-l", str(self.dir / "log"),
                  "-w", "-t", "60", "start")

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "-t", "60", "stop")

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.dir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, 20, "redis-server to start", 0.05)

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# --- The stack ------------------------------------------------------------------------------


class Stack:
    """web + worker (+beat) + runner as real processes; each can be killed (-9) and
    started again."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.port = _free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        queue = env["CELERY_TASK_DEFAULT_QUEUE"]
        self.args = {
            "web": ["-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(self.port),
                    "--lifespan", "off", "--log-level", "warning", "--timeout-graceful-shutdown", "1"],
            "worker": ["-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "threads", "--concurrency",
                       "4", "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "-n", f"{queue}@%h",
                       "-B", "--schedule", str(workdir / "beat-schedule")],
            "runner": ["manage.py", "runsessions", "--tick", "0.2"],
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, *self.args[name]], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if name == "web":
            wait_for(self.answers, STARTUP_BOUND_SECONDS, "the web server")

    def answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


class Load(threading.Thread):
    """Posts sendMessage back to back and keeps what was accepted (200) in order."""

    def __init__(self, stack: Stack, instance_id: int, token: str, tag: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{stack.url}/waInstance{instance_id}/sendMessage/{token}"
        self.tag = tag
        self.accepted: list[str] = []
        self.refused: dict[str, int] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        n = 0
        with httpx.Client(timeout=10) as client:
            while not self.halt.is_set():
                n += 1
                try:
                    r = client.post(self.url, json={"chatId": f"{RECIPIENT}@c.us", "message": f"{self.tag} {n}"})
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                    time.sleep(0.1)
                else:
                    if r.status_code == 200:
                        self.accepted.append(r.json()["idMessage"])
                        time.sleep(PACE_SECONDS)
                        continue
                    key = str(r.status_code)
                    time.sleep(0.1)
                self.refused[key] = self.refused.get(key, 0) + 1

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


@dataclass
class Figures:
    fault: str
    accepted: int = 0
    lost: int = 0
    duplicated: int = 0
    recovery_seconds: float = 0.0
    refused: dict[str, int] = field(default_factory=dict)
    webhooks_received: int = 0
    webhook_duplicates: int = 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if _pg_bin() is None or shutil.which("redis-server") is None:
        pytest.skip("needs PostgreSQL's server binaries and redis-server")  # CI has both
    workdir = tmp_path_factory.mktemp("faults")
    cluster = PrivateCluster(workdir)
    cluster.init()
    redis_server = PrivateRedis(workdir)
    redis_server.start()
    receiver = Receiver()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        **STACK_ENV,
        "DATABASE_URL": cluster.dsn.replace("postgresql://", "postgres://"),
        "REDIS_URL": redis_server.url,
        "RELAY_VAR_DIR": str(workdir / "var"),
        "CELERY_TASK_DEFAULT_QUEUE": f"faults-{uuid.uuid4().hex[:8]}",
    }
    stack = Stack(workdir, env)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True,
                       timeout=300)
        boot = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", BOOTSTRAP], cwd=ROOT, check=True, timeout=120,
            env={**env, "FAULT_RECIPIENT": RECIPIENT, "FAULT_WEBHOOK": receiver.url}, capture_output=True, text=True,
        )
        _, instance_id, token = next(line for line in boot.stdout.splitlines() if line.startswith("INSTANCE")).split()
        for name in ("web", "worker", "runner"):
            stack.start(name)
        yield {"cluster": cluster, "redis": redis_server, "receiver": receiver, "stack": stack,
               "instance": (int(instance_id), token), "figures": [], "workdir": workdir}
    finally:
        stack.stop_all()
        receiver.stop()
        redis_server.kill()
        try:
            cluster.stop()
        except (AssertionError, subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(cluster.dir.parent, ignore_errors=True)


def statuses(cluster: PrivateCluster, ids: list[str]) -> dict[str, str]:
    return dict(cluster.query(
        "SELECT id_message, status FROM messaging_outgoingmessage WHERE id_message = ANY(%s)", (ids,)
    ))


def send_probe(world: dict[str, Any]) -> str:
    """A message posted after the fault: retried until accepted."""
    stack: Stack = world["stack"]
    instance_id, token = world["instance"]
    url = f"{stack.url}/waInstance{instance_id}/sendMessage/{token}"

    def accepted() -> str | None:
        try:
            r = httpx.post(url, json={"chatId": f"{RECIPIENT}@c.us", "message": "probe"}, timeout=10)
        except httpx.HTTPError:
            return None
        return str(r.json()["idMessage"]) if r.status_code == 200 else None

    return str(wait_for(accepted, RECOVERY_BOUND_SECONDS, "a probe to be accepted", 0.25))


def run_phase(world: dict[str, Any], name: str, fault: Callable[[], float]) -> Figures:
    """Load, the fault (returns the monotonic time it ended), recovery, then the checks."""
    cluster: PrivateCluster = world["cluster"]
    receiver: Receiver = world["receiver"]
    instance_id, token = world["instance"]
    load = Load(world["stack"], instance_id, token, name)
    load.start()
    try:
        wait_for(lambda: len(load.accepted) >= 20, 60, f"{name}: load before the fault")
        ended = fault()
        probe = send_probe(world)
        wait_for(lambda: statuses(cluster, [probe]).get(probe) in FINAL, RECOVERY_BOUND_SECONDS,
                 f"{name}: the probe to reach a final status (logs: {world['workdir']})")
        recovery = time.monotonic() - ended
        wait_for(lambda: len(load.accepted) >= 20 + 10, 60, f"{name}: load after the recovery")
    finally:
        load.stop()
    accepted = [*load.accepted, probe]
    figures = Figures(fault=name, accepted=len(accepted), recovery_seconds=round(recovery, 1),
                      refused=load.refused)

    def settled() -> bool:
        return all(s in FINAL for s in statuses(cluster, accepted).values())

    try:
        wait_for(settled, SETTLE_BOUND_SECONDS, f"{name}: every accepted message to reach a final status")
    except AssertionError:
        pass  # counted as lost below, with the figures
    final = statuses(cluster, accepted)
    figures.lost = sum(1 for i in accepted if final.get(i) not in FINAL)
    # Exactly once, from the attempt log (no unique constraint): answered hand-overs per message.
    answered = dict(cluster.query(
        "SELECT id_message, count(*) FILTER (WHERE outcome <> 'error') FROM messaging_sendattempt"
        " WHERE instance_id = %s AND id_message = ANY(%s) GROUP BY 1", (instance_id, accepted),
    ))
    figures.duplicated = sum(1 for i in accepted if answered.get(i, 0) > 1)
    never = [i for i in accepted if answered.get(i, 0) == 0 and final.get(i) in FINAL]

    # Webhooks: every notification committed so far reaches the receiver, first
    # arrivals in receiptId order.
    def expected() -> list[int]:
        return [r for (r,) in cluster.query(
            "SELECT receipt_id FROM journals_notification WHERE instance_id = %s ORDER BY receipt_id", (instance_id,)
        )]

    def delivered_all() -> bool:
        got = {receipt_of(r) for r in receiver.ok()}
        return set(expected()) <= got

    try:
        wait_for(delivered_all, SETTLE_BOUND_SECONDS, f"{name}: every webhook")
    except AssertionError:
        pass
    arrivals = [receipt_of(r) for r in receiver.ok()]
    first_seen = list(dict.fromkeys(arrivals))
    figures.webhooks_received = len(first_seen)
    figures.webhook_duplicates = len(arrivals) - len(first_seen)
    world["figures"].append(figures)
    record(world)
    missing = sorted(set(expected()) - set(first_seen))
    assert figures.lost == 0, f"{name}: lost {figures.lost} of {figures.accepted} ({world['workdir']})"
    assert figures.duplicated == 0, f"{name}: {figures.duplicated} sent more than once"
    assert not never, f"{name}: final without an attempt logged: {never[:5]}"
    assert not missing, f"{name}: webhooks never delivered: {missing[:10]}"
    assert first_seen == sorted(first_seen), f"{name}: webhooks out of order"
    assert recovery <= RECOVERY_BOUND_SECONDS
    return figures


def record(world: dict[str, Any]) -> None:
    out = ROOT / "var" / "faults"
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(json.dumps([asdict(f) for f in world["figures"]], indent=2))


# --- The phases (in file order; each leaves the stack whole again) ---------------------------


def test_web_killed_mid_load(world: dict[str, Any]) -> None:
    stack: Stack = world["stack"]

    def fault() -> float:
        stack.kill("web")
        restarted = time.monotonic()
        stack.start("web")
        return restarted

    run_phase(world, "kill -9 web", fault)


def test_worker_killed_mid_load(world: dict[str, Any]) -> None:
    stack: Stack = world["stack"]

    def fault() -> float:
        stack.kill("worker")
        ended = time.monotonic()
        stack.start("worker")
        return ended

    run_phase(world, "kill -9 worker", fault)


def test_runner_killed_mid_load(world: dict[str, Any]) -> None:
    stack: Stack = world["stack"]

    def fault() -> float:
        stack.kill("runner")
        ended = time.monotonic()
        stack.start("runner")
        return ended

    run_phase(world, "kill -9 runner", fault)


def test_redis_killed_and_restarted_mid_load(world: dict[str, Any]) -> None:
    redis_server: PrivateRedis = world["redis"]

    def fault() -> float:
        redis_server.kill()
        time.sleep(2)  # an outage, not a blip
        redis_server.start()
        return time.monotonic()

    run_phase(world, "Redis kill -9 + restart", fault)


def test_postgresql_restarted_mid_load(world: dict[str, Any]) -> None:
    cluster: PrivateCluster = world["cluster"]
    stack: Stack = world["stack"]
    instance_id, token = world["instance"]
    during: list[httpx.Response] = []

    def fault() -> float:
        cluster.stop()
        # While it is down every wire route answers a JSON 503 with Retry-After.
        for method, verb in (("sendMessage", "post"), ("getSettings", "get"), ("getStateInstance", "get")):
            url = f"{stack.url}/waInstance{instance_id}/{method}/{token}"
            kwargs: dict[str, Any] = {"json": {"chatId": f"{RECIPIENT}@c.us", "message": "down"}} if verb == "post" else {}
            during.append(getattr(httpx, verb)(url, timeout=30, **kwargs))
        cluster.start()
        return time.monotonic()

    run_phase(world, "PostgreSQL restart", fault)
    for r in during:
        assert r.status_code == 503, (r.request.url, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["retry-after"]
        assert r.json()["statusCode"] == 503


def test_webhook_receiver_down_then_up(world: dict[str, Any]) -> None:
    receiver: Receiver = world["receiver"]

    def fault() -> float:
        receiver.stop()
        time.sleep(3)  # deliveries fail meanwhile and are retried
        receiver.start()
        return time.monotonic()

    run_phase(world, "webhook receiver down 3 s", fault)
