"""Benchmark: webhook deliveries per second and delivery latency, end to end.

  .venv/bin/python bench/webhooks.py [--instances 20] [--backlog 20000] [--live 5000] [--injectors 4]
                                     [--workers 1]

What it does (PostgreSQL + Redis from DATABASE_URL / REDIS_URL, defaults: this machine):
1. Creates a fresh database ``relay_bench_webhooks``, migrates, creates N instances
   whose webhookUrl points at a fast receiver on loopback (asyncio + uvloop, one
   process, HTTP/1.1 keep-alive, answers 200 and records every X-Webhook-Id).
2. Backlog: injects ``--backlog`` notifications through ``ingest_event`` (parallel
   injector processes, round-robin over the instances) with the workers stopped, then starts the shipped
   worker command (config/processes.py: threads, concurrency 4) ``--workers`` times and one
   shipped beat (``runbeat``), and measures how fast the backlog drains: deliveries/s.
   The queue is the bench's own through ``CELERY_TASK_DEFAULT_QUEUE`` (a setting), so
   other Celery workers on the same Redis never take its tasks.
3. Live: with the workers running, injector processes call ``ingest_event`` for
   ``--live`` more notifications; delivery latency is ``done_at - created_at`` (commit
   of the notification to the receiver's 2xx being recorded): p50 / p99.
4. Checks the receiver saw every notification exactly once and, per instance, in
   receiptId order. Prints the figures and writes var/bench/webhooks.json.

Only loopback traffic; every process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import django_setup, free_port, sh, shipped, start, stop  # noqa: E402

PY = sys.executable
DB_NAME = "relay_bench_webhooks"


# --- The receiver (runs as its own process) ----------------------------------------------


def run_receiver(port: int, out: Path) -> None:
    """A minimal HTTP/1.1 server: 200 to every POST, ids recorded in arrival order."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    seen: list[str] = []
    response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    lowered = name.strip().lower()
                    if lowered == b"content-length":
                        length = int(value)
                    elif lowered == b"x-webhook-id":
                        seen.append(value.strip().decode())
                if length:
                    await reader.readexactly(length)
                writer.write(response)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: out.write_text("\n".join(seen)))
        async with server:
            await stop.wait()
        out.write_text("\n".join(seen))

    asyncio.run(main())


# --- Injection (runs in the bench process and in injector processes) ----------------------


def inject(instance_ids: list[int], count: int, tag: str) -> None:
    from django.utils import timezone

    from engines.events import MessageEvent
    from instances.models import Instance
    from journals.services import ingest_event

    instances = list(Instance.objects.filter(pk__in=instance_ids).order_by("pk"))
    for n in range(count):
        instance = instances[n % len(instances)]
        ingest_event(
            instance,
            MessageEvent(
                direction="incoming",
                chat_id="79005550101@c.us",
                id_message=f"{tag}{n:08d}".upper(),
                sender="79005550101@c.us",
                message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": f"bench {n}"}},
                timestamp=timezone.now(),
                sender_name="Bench",
            ),
        )


# --- Orchestration -------------------------------------------------------------------------


def run_injectors(env: dict[str, str], var: Path, ids: list[int], count: int, processes: int, tag: str) -> None:
    """``count`` notifications through ``ingest_event`` from parallel processes, each
    over its own slice of the instances (so per-instance order is one writer's)."""
    procs = []
    for i in range(processes):
        mine = ids[i::processes]
        share = count // processes + (1 if i < count % processes else 0)
        if mine and share:
            cmd = [PY, __file__, "--inject", ",".join(map(str, mine)), str(share), f"{tag}{i}x"]
            procs.append(start(cmd, env, var / f"inject-{tag}{i}.log"))
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"an injector failed: see {var}/inject-*.log")


def base_env(db_url: str, redis_url: str, queue: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        # A deployment refuses the public built-in key (config/settings.py).
        SECRET_KEY=os.environ.get("SECRET_KEY") or "relay-bench-only-key-Wf3kP9sQ2vL7xN4cR8tY1zB6",
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        CONN_MAX_AGE="300",
        LOG_LEVEL="WARNING",
        RELAY_VAR_DIR=str(ROOT / "var" / "bench"),
        CELERY_TASK_DEFAULT_QUEUE=queue,
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
        WEBHOOK_RECOVER_INTERVAL_SECONDS="2",
    )
    return env


def wait_done(total: int, timeout: float) -> float:
    from journals.models import Notification, NotificationState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = Notification.objects.filter(state=NotificationState.DONE).count()
        if done >= total:
            return time.monotonic()
        time.sleep(0.1)
    raise SystemExit(f"timed out: {Notification.objects.filter(state=NotificationState.DONE).count()}/{total} delivered")


def latency_ms(since: Any) -> dict[str, float]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),"
            " max(ms), count(*) FROM (SELECT extract(epoch FROM done_at - created_at) * 1000 AS ms"
            " FROM journals_notification WHERE created_at >= %s AND state = 'done') t",
            [since],
        )
        p50, p99, worst, n = cursor.fetchone()
    return {"p50_ms": round(float(p50), 1), "p99_ms": round(float(p99), 1), "max_ms": round(float(worst), 1), "n": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--live", type=int, default=5_000)
    parser.add_argument("--injectors", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (nodes on this box)")
    parser.add_argument("--database", default=DB_NAME, help="the bench's own PostgreSQL database (dropped and re-created)")
    parser.add_argument("--receiver", nargs=2, metavar=("PORT", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--inject", nargs=3, metavar=("IDS", "COUNT", "TAG"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.receiver:
        run_receiver(int(args.receiver[0]), Path(args.receiver[1]))
        return
    if args.inject:
        django_setup({})
        inject([int(i) for i in args.inject[0].split(",")], int(args.inject[1]), args.inject[2])
        return

    pg = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay").rsplit("/", 1)[0]
    db_url = f"{pg}/{args.database}"
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    queue = f"bench-webhooks-{os.getpid()}"
    env = base_env(db_url, redis_url, queue)
    var = ROOT / "var" / "bench"
    var.mkdir(parents=True, exist_ok=True)

    sh(["psql", f"{pg}/postgres", "-qc", f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)"])
    sh(["psql", f"{pg}/postgres", "-qc", f"CREATE DATABASE {args.database}"])
    sh([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env)
    django_setup(env)
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from instances import services
    from journals.models import Notification, WebhookAttempt

    port = free_port()
    received = var / "webhooks-received.txt"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(start([PY, __file__, "--receiver", str(port), str(received)], env, var / "receiver.log"))
        user = get_user_model().objects.create_user("bench", password="bench-password-1")
        account = services.ensure_account(user)
        ids = []
        for n in range(args.instances):
            instance = services.create_instance(account=account, name=f"bench {n}")
            instance.settings.update({"incomingWebhook": True, "webhookUrl": ""})
            instance.save(update_fields=["settings"])
            ids.append(instance.id)
        from instances.models import Instance

        # 1. Backlog: injected while nobody delivers (no webhookUrl yet: no wake-ups).
        t0 = time.monotonic()
        run_injectors(env, var, ids, args.backlog, args.injectors, "B")
        inject_rate = args.backlog / (time.monotonic() - t0)
        for instance in Instance.objects.filter(pk__in=ids):
            instance.settings["webhookUrl"] = f"http://127.0.0.1:{port}/hook/{instance.id}"
            instance.save(update_fields=["settings"])
        shipped_cmds = shipped(free_port())
        started = time.monotonic()
        for w in range(args.workers):
            procs.append(start([*shipped_cmds["worker"], "-n", f"bench{w}@%h"], env, var / f"worker{w}.log"))
        procs.append(start([*shipped_cmds["beat"], "--schedule", str(var / "webhooks-beat")], env, var / "beat.log"))
        from journals import webhooks

        for instance_id in ids:
            webhooks.wake(instance_id)
        finished = wait_done(args.backlog, timeout=600)
        drain_seconds = finished - started
        first, last = (
            Notification.objects.order_by("done_at").values_list("done_at", flat=True).first(),
            Notification.objects.order_by("-done_at").values_list("done_at", flat=True).first(),
        )
        steady = args.backlog / max((last - first).total_seconds(), 1e-6) if first and last else 0.0

        # 2. Live: injected while the workers deliver.
        live_since = timezone.now()
        t1 = time.monotonic()
        run_injectors(env, var, ids, args.live, args.injectors, "L")
        live_inject_rate = args.live / (time.monotonic() - t1)
        wait_done(args.backlog + args.live, timeout=600)
        live_total_seconds = time.monotonic() - t1
        live = latency_ms(live_since)
        backlog_latency = latency_ms(timezone.now() - timedelta(days=1))

        # 3. Exactly once, in order.
        os.killpg(procs[0].pid, signal.SIGUSR1)
        time.sleep(1.0)
        seen = [line for line in received.read_text().splitlines() if line]
        total = args.backlog + args.live
        duplicates = len(seen) - len(set(seen))
        last_receipt: dict[str, int] = {}
        out_of_order = 0
        for webhook_id in seen:
            instance_part, receipt = webhook_id.rsplit("-", 1)
            if int(receipt) <= last_receipt.get(instance_part, 0):
                out_of_order += 1
            last_receipt[instance_part] = int(receipt)
        result = {
            "instances": args.instances,
            "workers": args.workers,
            "worker_command": shipped(0)["worker"][1:],
            "cpus": os.cpu_count(),
            "backlog": args.backlog,
            "backlog_inject_per_s": round(inject_rate, 1),
            "backlog_drain_seconds": round(drain_seconds, 2),
            "backlog_deliveries_per_s": round(args.backlog / drain_seconds, 1),
            "backlog_steady_deliveries_per_s": round(steady, 1),
            "live": args.live,
            "live_inject_per_s": round(live_inject_rate, 1),
            "live_seconds_until_all_delivered": round(live_total_seconds, 2),
            "live_latency": live,
            "backlog_latency_incl_waiting": backlog_latency,
            "received": len(seen),
            "expected": total,
            "duplicates": duplicates,
            "out_of_order": out_of_order,
            "attempts_logged": WebhookAttempt.objects.count(),
        }
        print(json.dumps(result, indent=2))
        (var / "webhooks.json").write_text(json.dumps(result, indent=2))
        if len(set(seen)) != total or duplicates or out_of_order:
            raise SystemExit("FAILED: lost, duplicated or reordered deliveries")
    finally:
        for proc in reversed(procs):
            stop(proc)
        try:  # drop the private queue's left-over wake-ups
            import redis

            redis.Redis.from_url(redis_url).delete(queue)
        except Exception as exc:  # noqa: BLE001 - best effort
            print(f"could not delete the bench queue {queue}: {exc}", file=sys.stderr)
        from django.db import connections

        connections.close_all()


if __name__ == "__main__":
    main()
