"""Benchmark: one session runner holding many emulated instances.

  .venv/bin/python bench/runner_scale.py [--instances 10000] [--rate 200] [--duration 120]

1. Idle memory per instance: the shipped runner command with RUNNER_CAPACITY=0 (it
   leases nothing) gives the baseline RSS; the same command with the default capacity
   and every instance leased (RUNNER_CAPACITY raised to --instances when above the
   default, a setting) gives the loaded RSS, both after a few idle ticks.
   Per instance = (loaded - baseline) / instances. Target ≤ 20 KB.
2. Lease renewal under load: with that runner holding everything, the rest of the
   shipped set (web, worker, beat) is started and sendMessage is sent at ``--rate``
   (open loop) for ``--duration`` seconds. Any LeaseGrant row written during the load
   is a lease that lapsed and was re-taken (target: 0). Receipt lag: delivered_at -
   sent_at per message, p50/p99 (the emulator acknowledges after 1 s by default).
Writes var/bench/runner_scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, base_env, free_port, prepare, psql, sh, shipped, start, start_stack, stop
from bench.send_throughput import open_loop, truncate, wait_delivered


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def leased(db_url: str, runner_pid: int) -> int:
    return int(psql(db_url, "SELECT count(*) FROM instances_sessionlease WHERE expires_at > now()"
                            f" AND runner_id LIKE '%:{runner_pid}:%'"))


def settled_rss(pid: int, seconds: float) -> int:
    """Median of RSS samples over a few idle ticks."""
    samples = []
    deadline = time.time() + seconds
    while time.time() < deadline:
        samples.append(rss_kb(pid))
        time.sleep(0.5)
    return sorted(samples)[len(samples) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--database", default="relay_bench_runner", help="the bench's own PostgreSQL database (dropped and re-created)")
    args = parser.parse_args()
    pg = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay")
    db_url = pg.rpartition("/")[0] + "/" + args.database
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    env = base_env(db_url, redis_url, RUNNER_CAPACITY=str(max(5000, args.instances)))
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    sh(["redis-cli", "-u", redis_url, "FLUSHDB"])
    t0 = time.time()
    creds = prepare(db_url, env, args.instances, delay_ms=500)
    result: dict[str, Any] = {"args": vars(args), "prepare_s": round(time.time() - t0, 1)}
    port = free_port()
    runner_cmd = shipped(port)["runner"]

    empty = start(runner_cmd, dict(env, RUNNER_CAPACITY="0"), out_dir / "runner-empty.log")
    try:
        time.sleep(3)
        result["baseline_rss_kb"] = settled_rss(empty.pid, args.settle)
    finally:
        stop(empty)

    runner = start(runner_cmd, env, out_dir / "runner-scale.log")
    procs: dict[str, Any] = {}
    try:
        t1 = time.time()
        while leased(db_url, runner.pid) < args.instances and time.time() - t1 < 600:
            time.sleep(1)
        result["lease_all_s"] = round(time.time() - t1, 1)
        result["leased"] = leased(db_url, runner.pid)
        result["loaded_rss_kb"] = settled_rss(runner.pid, args.settle)
        result["idle_kb_per_instance"] = round(
            (result["loaded_rss_kb"] - result["baseline_rss_kb"]) / max(1, result["leased"]), 2)

        procs = start_stack(env, port, out_dir, kinds=("web", "worker", "beat"), suffix="-scale")
        truncate(db_url)
        load_start = psql(db_url, "SELECT now()")
        load = asyncio.run(open_loop(port, creds, args.rate, args.duration))
        accepted = load["statuses"].get(200, 0)
        wait_delivered(db_url, accepted, timeout=300)
        result["load"] = load
        result["lease_regrants_during_load"] = int(psql(
            db_url, f"SELECT count(*) FROM instances_leasegrant WHERE granted_at > '{load_start}'"))
        result["leased_after_load"] = leased(db_url, runner.pid)
        lag = psql(db_url, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), percentile_cont(0.99)"
                           " WITHIN GROUP (ORDER BY x) FROM (SELECT extract(epoch FROM delivered_at - sent_at) x"
                           " FROM messaging_outgoingmessage WHERE delivered_at IS NOT NULL) d").split("|")
        result["receipt_lag_s"] = {"p50": float(lag[0] or "nan"), "p99": float(lag[1] or "nan")}
    finally:
        for proc in [runner, *procs.values()]:
            stop(proc)
    (out_dir / "runner_scale.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
