"""Benchmark: sendMessage as shipped, against the floor, end to end.

  .venv/bin/python bench/send_throughput.py [--instances 1000] [--delays default,500]
      [--duration 15] [--connections 64] [--rounds 3] [--e2e-seconds 300]
  .venv/bin/python bench/send_throughput.py --self-test   # the checks can fail

What it runs (PostgreSQL + Redis from DATABASE_URL / REDIS_URL; database
``relay_bench``, or ``--database``): exactly the shipped process set of config/processes.py (granian
web with its default worker count, one Celery worker, one beat, one runner), with
nothing but settings a user can set: ``DB_POOL=true``, ``WEBHOOK_ALLOW_PRIVATE=true``
(the loopback receiver), default receipt delays (delivered after 1 s), default rate
limits (sendMessage 50/s per instance; wrk spreads over all instances, so each sees
a few per second), and each instance's ``delaySendMessagesMilliseconds`` at the
default (3,000) or GREEN-API's minimum (500), one result row each.

Per delay and round:
1. Floor: bench/floor_app.py (one ``INSERT … SELECT`` with the token check inside,
   psycopg pool of RELAY_FASTLANE_POOL_SIZE) under the same granian command and
   worker count; wrk, closed loop, ``--connections``: the maximum accept rate.
2. Relay: the same wrk load; CPU seconds per accepted message by process kind (from
   /proc, each kind's process group, from the load's start to the end of the wait
   below; also per message delivered by then, the fair figure when the wait ran
   out); then it waits until every committed message is
   delivered (bounded by the pacing time × 2 + 120 s). Lost = 200 answers without a
   row; undelivered = committed rows still not delivered when the wait ended;
   duplicated = messages the engine was handed more than once with success, from
   the send attempt log (messaging_sendattempt, no unique constraint).
3. Open loop at half Relay's maximum: requests are *scheduled* at a fixed rate and
   latency is counted from the scheduled time (queueing included), over 64 kept-alive
   connections.
4. End to end: every instance has ``webhookUrl`` at a loopback receiver and
   ``outgoingWebhook`` on; for ``--e2e-seconds`` the open-loop generator sends at the
   rate the pacing allows (``--e2e-rate``, default: 80 % of instances ÷ delay) and
   the receiver counts ``outgoingMessageStatus`` = delivered per idMessage; reported
   as webhooks per second vs accepted per second.

``--self-test`` injects a duplicated attempt into the log and a committed row that
is never delivered, and shows that both checks report them (exit 1 if they do not).
Writes var/bench/send_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RECIPIENT,
    ROOT,
    base_env,
    free_port,
    group_cpu_seconds,
    lua_script,
    prepare,
    processes,
    psql,
    sh,
    shipped,
    start,
    start_stack,
    stop,
    wait_http,
    wrk,
)

FLOOR_POOL = "8"  # = RELAY_FASTLANE_POOL_SIZE's default: the same pool size per web worker


def truncate(db_url: str) -> None:
    """Empty the send tables between phases. The stack keeps running meanwhile (the
    previous phase's backlog is still draining), so TRUNCATE's exclusive locks can
    meet the worker's row locks in the other order: PostgreSQL then cancels one side
    ("deadlock detected"). The worker retries its side; so does this, a few times."""
    sql = ("TRUNCATE messaging_outgoingmessage, messaging_messagestatuschange, emulator_emumessage,"
           " messaging_sendattempt CASCADE")
    for attempt in range(5):
        try:
            psql(db_url, sql)
            return
        except subprocess.CalledProcessError as exc:
            print(f"truncate failed ({(exc.stderr or '').strip()}); attempt {attempt + 1} of 5", flush=True)
            if attempt == 4:
                raise
            time.sleep(1 + attempt)


def counts(db_url: str) -> dict[str, int]:
    q = (
        "SELECT (SELECT count(*) FROM messaging_outgoingmessage),"
        " (SELECT count(*) FROM messaging_outgoingmessage WHERE status IN ('delivered','read')),"
        " (SELECT count(*) FROM (SELECT instance_id, id_message FROM messaging_sendattempt"
        "   WHERE outcome <> 'error' GROUP BY 1, 2 HAVING count(*) > 1) d)"
    )
    rows, delivered, dupes = map(int, psql(db_url, q).split("|"))
    return {"rows": rows, "delivered": delivered, "duplicated": dupes}


def lost_and_duplicated(c: dict[str, int], accepted: int) -> dict[str, int]:
    """lost: answered 200 but no row (gone for good); undelivered: committed rows not
    delivered when the wait ended (lost only if they never are: re-run the wait, or
    read the rows' status); duplicated: handed to the engine twice with success."""
    return {"lost": max(0, accepted - c["rows"]), "undelivered": c["rows"] - c["delivered"],
            "duplicated": c["duplicated"]}


# --- open-loop generator -----------------------------------------------------------------


async def open_loop(port: int | list[int], creds: list[tuple[int, str]], rate: float, duration: float,
                    connections: int = 64) -> dict[str, Any]:
    """Requests scheduled at ``rate``/s; latency from the scheduled instant, so time
    spent waiting for a free connection (queueing) counts. With several ports the
    connections are spread over them like a load balancer; a connection that fails
    (its node died) counts its request as an error, and is replaced by one to a port
    that still accepts connections."""
    ports = [port] if isinstance(port, int) else list(port)
    body = json.dumps({"chatId": f"{RECIPIENT}@c.us", "message": "open loop"}).encode()
    pool: asyncio.Queue[tuple[asyncio.StreamReader | None, asyncio.StreamWriter | None, int]] = asyncio.Queue()
    for n in range(connections):
        target = ports[n % len(ports)]
        reader, writer = await asyncio.open_connection("127.0.0.1", target)
        pool.put_nowait((reader, writer, target))
    dead: set[int] = set()
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def reconnect(previous: int) -> tuple[asyncio.StreamReader | None, asyncio.StreamWriter | None, int]:
        for target in [p for p in ports if p != previous] + [previous]:
            if target in dead:
                continue
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", target)
                return reader, writer, target
            except OSError:
                dead.add(target)
        return None, None, previous

    async def one(n: int, scheduled: float) -> None:
        instance_id, token = creds[n % len(creds)]
        reader, writer, target = await pool.get()
        try:
            if reader is None or writer is None:
                reader, writer, target = await reconnect(target)
                if reader is None or writer is None:
                    raise ConnectionError("no node accepts connections")
            writer.write(
                f"POST /waInstance{instance_id}/sendMessage/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            )
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - scheduled)
            statuses[status] = statuses.get(status, 0) + 1
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            statuses[0] = statuses.get(0, 0) + 1  # 0: no HTTP answer (connection failed)
            if writer is not None:
                writer.close()
            reader = writer = None
        finally:
            pool.put_nowait((reader, writer, target))

    tasks = []
    t0 = time.perf_counter()
    for n in range(int(rate * duration)):
        scheduled = t0 + n / rate
        pause = scheduled - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.create_task(one(n, scheduled)))
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - t0
    while not pool.empty():
        leftover = pool.get_nowait()[1]
        if leftover is not None:
            leftover.close()
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2) if latencies else float("nan")

    return {"target_rps": round(rate, 1), "sent": len(tasks), "answered": len(latencies), "statuses": statuses,
            "achieved_rps": round(len(latencies) / elapsed, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


# --- webhook receiver --------------------------------------------------------------------


class Receiver:
    """Loopback webhook receiver: counts outgoingMessageStatus=delivered per idMessage."""

    def __init__(self) -> None:
        self.delivered: dict[str, float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 keeps the connection open between deliveries, as a production
            # receiver (nginx, any framework's server) does: http.server's default
            # HTTP/1.0 closes it after every POST, and the connects (with a listen
            # backlog of 5 dropping SYNs) were half the product's POST time.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                data = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if data.get("typeWebhook") == "outgoingMessageStatus" and data.get("status") == "delivered":
                    with receiver.lock:
                        receiver.delivered.setdefault(str(data.get("idMessage")), time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # listen backlog (http.server's default is 5)
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def point_webhooks(db_url: str, url: str) -> None:
    psql(db_url, "UPDATE instances_instance SET settings = settings || "
                 f"'{json.dumps({'webhookUrl': url, 'outgoingWebhook': True})}'::jsonb")


# --- runs -------------------------------------------------------------------------------


def floor_command(port: int, workers: int) -> list[str]:
    command = shipped(port, web_workers=workers)["web"]
    return [*command[:-1], "bench.floor_app:app"]


def run_floor(script: Path, env: dict[str, str], db_url: str, out_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    floor_env = dict(env, FLOOR_DSN=db_url.replace("postgres://", "postgresql://"), FLOOR_POOL_SIZE=FLOOR_POOL,
                     PYTHONPATH=str(ROOT))
    floor = start(floor_command(port, args.web_workers), floor_env, out_dir / "floor.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/")
        wrk(script, port, args.warmup, args.connections)
        truncate(db_url)
        return wrk(script, port, args.duration, args.connections)
    finally:
        stop(floor)
        truncate(db_url)


def wait_delivered(db_url: str, accepted: int, timeout: float) -> tuple[dict[str, int], float]:
    start_at = time.time()
    c = counts(db_url)
    while c["delivered"] < max(accepted, c["rows"]) and time.time() - start_at < timeout:
        time.sleep(1)
        c = counts(db_url)
    return c, round(time.time() - start_at, 1)


def run_relay(creds: list[tuple[int, str]], script: Path, env: dict[str, str], db_url: str, out_dir: Path,
              args: argparse.Namespace, delay_ms: int, receiver: Receiver) -> dict[str, Any]:
    port = free_port()
    procs = start_stack(env, port, out_dir, web_workers=args.web_workers)
    result: dict[str, Any] = {}
    try:
        wrk(script, port, args.warmup, args.connections)
        wait_delivered(db_url, 0, 600)
        truncate(db_url)
        cpu0 = {kind: group_cpu_seconds(proc.pid) for kind, proc in procs.items()}
        load = wrk(script, port, args.duration, args.connections)
        accepted = load["requests"] - load["non_2xx"]
        # Pacing bounds delivery: each instance sends one message per delay.
        drain_s = accepted * delay_ms / 1000 / len(creds)
        c, seconds = wait_delivered(db_url, accepted, timeout=drain_s * 2 + 120)
        cpu1 = {kind: group_cpu_seconds(proc.pid) for kind, proc in procs.items()}
        result["max"] = dict(load, accepted=accepted, seconds_until_all_delivered=seconds,
                             **lost_and_duplicated(c, accepted))
        result["cpu_ms_per_accepted"] = {k: round((cpu1[k] - cpu0[k]) * 1000 / max(1, accepted), 3) for k in procs}
        # The same CPU over the messages delivered within the wait: when the wait ends
        # with messages still queued, per accepted understates what each one costs.
        result["cpu_ms_per_delivered"] = {
            k: round((cpu1[k] - cpu0[k]) * 1000 / max(1, c["delivered"]), 3) for k in procs
        }
        truncate(db_url)
        result["open_loop_half"] = asyncio.run(open_loop(port, creds, load["rps"] / 2, args.duration))
        if args.e2e_seconds:
            truncate(db_url)
            rate = args.e2e_rate or 0.8 * len(creds) * 1000 / delay_ms
            receiver.delivered.clear()
            t0 = time.time()
            e2e = asyncio.run(open_loop(port, creds, rate, args.e2e_seconds))
            accepted_e2e = sum(n for status, n in e2e["statuses"].items() if status == 200)
            c, _ = wait_delivered(db_url, accepted_e2e, timeout=120)
            # Only this phase's messages count (the table was emptied before it): the
            # earlier phases' notifications are still being delivered meanwhile, and
            # counting them made the ratio look better than it was.
            phase = set(psql(db_url, "SELECT id_message FROM messaging_outgoingmessage").split())

            def received() -> dict[str, float]:
                with receiver.lock:
                    return {k: at for k, at in receiver.delivered.items() if k in phase}

            deadline = time.time() + 120
            while len(received()) < accepted_e2e and time.time() < deadline:
                time.sleep(1)
            got = received()
            span = max(got.values(), default=t0) - t0
            webhooks_per_s = len(got) / max(span, 1e-9)
            accepted_per_s = accepted_e2e / args.e2e_seconds
            result["end_to_end"] = dict(
                e2e, accepted=accepted_e2e, accepted_per_s=round(accepted_per_s, 1), webhooks_delivered=len(got),
                webhooks_per_s=round(webhooks_per_s, 1),
                # The target: webhooks keep up with what is accepted, sustained. Their
                # rate runs from the phase's start to the last arrival, so a backlog
                # that drains after the load (however completely) lowers it.
                throughput_ratio=round(webhooks_per_s / max(accepted_per_s, 1e-9), 3),
                # How many arrived at all within the bounded wait (not a rate).
                ratio_to_accepted=round(len(got) / max(1, accepted_e2e), 3),
                **lost_and_duplicated(c, accepted_e2e),
            )
    finally:
        for proc in procs.values():
            stop(proc)
    return result


def self_test(db_url: str, env: dict[str, str]) -> None:
    """The lost, undelivered and duplicated checks must be able to fail: inject one of each."""
    creds = prepare(db_url, env, 1)
    truncate(db_url)
    instance_id = creds[0][0]
    psql(db_url, "INSERT INTO messaging_sendattempt (message_id, instance_id, id_message, attempt, outcome, created_at)"
                 f" VALUES (1, {instance_id}, 'BAE5DUP', 1, 'sent', now()), (1, {instance_id}, 'BAE5DUP', 2, 'sent', now())")
    # One committed message that is never delivered (no worker runs).
    psql(db_url, "INSERT INTO messaging_outgoingmessage (instance_id, id_message, chat_id, method, type_message,"
                 " request, payload, is_file, status, description, idempotency_key, created_at, attempts)"
                 f" VALUES ({instance_id}, 'BAE5UNDELIVERED', '{RECIPIENT}@c.us', 'sendMessage', 'textMessage',"
                 " '{}', '{}', false, 'queued', '', '', now(), 0)")
    # Two 200 answers were "received", one row exists: one lost.
    verdict = lost_and_duplicated(counts(db_url), accepted=2)
    injected = {"lost": 1, "undelivered": 1, "duplicated": 1}
    print(json.dumps({"injected": injected, "measured": verdict}))
    if verdict != injected:
        sys.exit("self-test FAILED: a check did not see what was injected")
    print("self-test passed: every check reports the injected fault")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--delays", default="default,500", help="delaySendMessagesMilliseconds rows")
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--web-workers", type=int, default=processes.WEB_WORKERS_DEFAULT)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--e2e-seconds", type=int, default=300)
    parser.add_argument("--e2e-rate", type=float, default=0.0)
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--database", default="relay_bench",
                        help="the bench's own PostgreSQL database (dropped and re-created)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    pg = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay")
    db_url = pg.rpartition("/")[0] + "/" + args.database
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    env = base_env(db_url, redis_url, WEBHOOK_ALLOW_PRIVATE="true")
    if args.self_test:
        self_test(db_url, env)
        return
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    receiver = Receiver()
    result: dict[str, Any] = {"args": vars(args), "rows": []}
    for delay in args.delays.split(","):
        sh(["redis-cli", "-u", redis_url, "FLUSHDB"])
        delay_ms = 3000 if delay == "default" else int(delay)
        creds = prepare(db_url, env, args.instances, None if delay == "default" else delay_ms)
        point_webhooks(db_url, receiver.url)
        script = Path(tempfile.mkdtemp()) / "send.lua"
        script.write_text(lua_script(creds))
        rounds = []
        for number in range(1, args.rounds + 1):
            entry: dict[str, Any] = {"round": number, "floor": run_floor(script, env, db_url, out_dir, args)}
            entry.update(run_relay(creds, script, env, db_url, out_dir, args, delay_ms, receiver))
            entry["ratio_to_floor"] = round(entry["max"]["rps"] / entry["floor"]["rps"], 3)
            print(f"delay {delay} round {number}: {json.dumps(entry)}", flush=True)
            rounds.append(entry)
        result["rows"].append({
            "delaySendMessagesMilliseconds": delay_ms, "rounds": rounds,
            "ratio_to_floor_median": statistics.median(r["ratio_to_floor"] for r in rounds),
            "open_loop_half_p99_ms_max": max(r["open_loop_half"]["p99_ms"] for r in rounds),
            "lost": sum(r["max"]["lost"] + r.get("end_to_end", {}).get("lost", 0) for r in rounds),
            "undelivered": sum(r["max"]["undelivered"] + r.get("end_to_end", {}).get("undelivered", 0) for r in rounds),
            "duplicated": sum(r["max"]["duplicated"] + r.get("end_to_end", {}).get("duplicated", 0) for r in rounds),
        })
    (out_dir / "send_throughput.json").write_text(json.dumps(result, indent=2))
    print(json.dumps([{k: v for k, v in row.items() if k != "rounds"} for row in result["rows"]], indent=2))


if __name__ == "__main__":
    main()
