"""Benchmark: runner failover under load.

  .venv/bin/python bench/failover.py [--instances 200] [--rate 100] [--duration 60] [--kill-after 15] [--nodes 1|2]

``--nodes 1`` (default): the shipped process set (config/processes.py) with TWO
runners sharing the instances; one runner is killed with SIGKILL.
``--nodes 2``: two "nodes" on this machine sharing PostgreSQL and Redis, each a full
shipped set (web, worker, beat, runner; the second beat stands by on its lock); the
load is spread over both web ports like a load balancer would, and the whole first
node (every process) is killed with SIGKILL. Its beat's lock passes to the other.

It sends sendMessage at a fixed rate (open loop) for ``--duration`` seconds, kills
after ``--kill-after`` seconds, and checks:
- every instance the dead runner held is re-leased by the survivor within
  RUNNER_LEASE_TTL_SECONDS + 5 s of the kill (LeaseGrant rows);
- 0 lost: every accepted message ends delivered;
- 0 duplicated: from the send attempt log (no unique constraint).
Settings are the defaults a user gets (TTL 15 s, receipts after 1 s, rate limits on),
instances at delaySendMessagesMilliseconds = 500. Exit status 1 when a check fails.
Writes var/bench/failover.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    base_env,
    free_port,
    prepare,
    psql,
    sh,
    shipped,
    start,
    start_stack,
    stop,
    wait_http,
)
from bench.send_throughput import lost_and_duplicated, open_loop, truncate, wait_delivered


def leases(db_url: str) -> dict[str, int]:
    rows = psql(db_url, "SELECT runner_id, count(*) FROM instances_sessionlease WHERE runner_id <> ''"
                        " AND expires_at > now() GROUP BY 1")
    return {line.split("|")[0]: int(line.split("|")[1]) for line in rows.splitlines() if line}


def runner_id_of(db_url: str, pid: int) -> str:
    found = [r for r in leases(db_url) if f":{pid}:" in r]
    return found[0] if found else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--kill-after", type=float, default=15.0)
    parser.add_argument("--nodes", type=int, default=1, choices=[1, 2])
    parser.add_argument("--database", default="relay_bench_failover", help="the bench's own PostgreSQL database (dropped and re-created)")
    args = parser.parse_args()
    pg = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay")
    db_url = pg.rpartition("/")[0] + "/" + args.database
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    env = base_env(db_url, redis_url)
    ttl = float(env.get("RUNNER_LEASE_TTL_SECONDS", "15"))
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    sh(["redis-cli", "-u", redis_url, "FLUSHDB"])
    creds = prepare(db_url, env, args.instances, delay_ms=500)
    truncate(db_url)
    result: dict[str, Any] = {"args": vars(args), "ttl_s": ttl}
    # A runner takes every free lease up to RUNNER_CAPACITY, so the first one up would
    # hold everything. To share: the first (the victim) is capped at half, and the
    # second, started once the first holds its half, keeps the default capacity (room
    # for all, as a survivor needs).
    half = (args.instances + 1) // 2
    env_a = dict(env, RUNNER_CAPACITY=str(half))
    env_b = dict(env, RUNNER_CAPACITY=str(max(5000, args.instances)))

    def wait_half(runner: subprocess.Popen[bytes]) -> None:
        deadline = time.time() + 120
        while sum(n for r, n in leases(db_url).items() if f":{runner.pid}:" in r) < half and time.time() < deadline:
            time.sleep(0.5)

    if args.nodes == 1:
        port = free_port()
        ports = [port]
        shared = start_stack(env, port, out_dir, kinds=("web", "worker", "beat"), suffix="-failover")
        runner_cmd = shipped(port)["runner"]
        runners = [start(runner_cmd, env_a, out_dir / "runner-a-failover.log")]
        wait_half(runners[0])
        runners.append(start(runner_cmd, env_b, out_dir / "runner-b-failover.log"))
        victims = [runners[0]]
        others = [*runners[1:], *shared.values()]
    else:
        ports = [free_port(), free_port()]
        nodes = []
        for name, node_port, node_env in zip("ab", ports, (env_a, env_b), strict=True):
            commands = shipped(node_port)
            # Each node's worker needs its own Celery node name (a real node has its own hostname).
            commands["worker"] = [*commands["worker"], "-n", f"worker-{name}@%h"]
            # One beat schedule file per node (each node has its own disk).
            commands["beat"] = [*commands["beat"], "--schedule", str(out_dir / f"beat-{name}-schedule")]
            nodes.append({kind: start(argv, node_env, out_dir / f"{kind}-{name}-nodes.log")
                          for kind, argv in commands.items()})
            wait_http(f"http://127.0.0.1:{node_port}/healthz")
            if name == "a":
                wait_half(nodes[0]["runner"])
        runners = [nodes[0]["runner"], nodes[1]["runner"]]
        victims = list(nodes[0].values())
        others = list(nodes[1].values())
    try:
        deadline = time.time() + 120
        while sum(leases(db_url).values()) < args.instances and time.time() < deadline:
            time.sleep(0.5)
        result["leases_before"] = leases(db_url)
        victim_id = runner_id_of(db_url, runners[0].pid)
        held = int(psql(db_url, f"SELECT count(*) FROM instances_sessionlease WHERE runner_id = '{victim_id}'"))
        load: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: load.update(asyncio.run(open_loop(ports, creds, args.rate, args.duration))), daemon=True
        )
        thread.start()
        time.sleep(args.kill_after)
        killed_at = psql(db_url, "SELECT extract(epoch FROM now())")
        for victim in victims:
            os.killpg(victim.pid, signal.SIGKILL)
        thread.join(args.duration + 120)
        accepted = load.get("statuses", {}).get(200, 0)
        c, seconds = wait_delivered(db_url, accepted, timeout=300)
        regranted = psql(
            db_url,
            "SELECT count(DISTINCT instance_id), coalesce(max(extract(epoch FROM granted_at)) - "
            f"{killed_at}, 0) FROM instances_leasegrant WHERE previous_runner_id = '{victim_id}'"
            f" AND granted_at > to_timestamp({killed_at})",
        ).split("|")
        result.update(
            victim=victim_id, victim_held=held, re_leased=int(regranted[0]),
            re_leased_within_s=round(float(regranted[1]), 1), load=load, accepted=accepted,
            seconds_until_all_delivered=seconds, leases_after=leases(db_url), **lost_and_duplicated(c, accepted),
        )
        checks = {
            "all re-leased": result["re_leased"] == held and held > 0,
            "within TTL + 5 s": result["re_leased_within_s"] <= ttl + 5,
            "0 lost": result["lost"] == 0 and result["undelivered"] == 0,
            "0 duplicated": result["duplicated"] == 0,
        }
        if args.nodes == 2:
            # Some beat holds the lock after the kill (the survivor's, if the dead
            # node's held it): `runbeat --check` exits 0 only while one does.
            check = subprocess.run([*shipped(ports[1])["beat"], "--check"], cwd=ROOT, env=env, timeout=120,
                                   check=False, capture_output=True)
            result["some_beat_holds_lock_after_kill"] = check.returncode == 0
            checks["beat running after the kill"] = result["some_beat_holds_lock_after_kill"]
        result["checks"] = checks
    finally:
        for proc in [*victims, *others]:
            stop(proc)
    (out_dir / "failover.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if not all(result.get("checks", {}).values()):
        sys.exit("FAILED: " + ", ".join(k for k, ok in result.get("checks", {}).items() if not ok))


if __name__ == "__main__":
    main()
