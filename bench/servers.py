"""Benchmark: which ASGI server ships. daphne, uvicorn (workers) and granian (workers)
serve the same config.asgi:application on PostgreSQL + Redis, measured interleaved
(round 1: A B C, round 2: B C A, …) so each sees the same machine load.

  .venv/bin/python bench/servers.py [--rounds 3] [--duration 10] [--connections 32] [--workers 2]

For each server and round it checks, before measuring, that
- lifespan works (the server is started with lifespan on and must come up), and
- a WebSocket works (the scanqrcode socket of an authorized instance answers), and
then measures with wrk: sendMessage (the fast lane) and getStateInstance (a Django
view). Only the web processes run (the accept path is what the server changes).
Prints a table and writes var/bench/servers.json. daphne has no worker option: it
runs as one process (its documented deployment is one process per core behind a
balancer).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PY,
    ROOT,
    base_env,
    free_port,
    lua_script,
    prepare,
    psql,
    sh,
    shipped,
    start,
    stop,
    wait_http,
    wrk,
)


def commands(port: int, workers: int) -> dict[str, list[str]]:
    return {
        "daphne": [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        "uvicorn": [PY, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                    "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--lifespan", "on",
                    "--no-access-log", "--log-level", "warning"],
        "granian": shipped(port, web_workers=workers)["web"],
    }


def websocket_ok(port: int, instance_id: int, token: str) -> str:
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/waInstance{instance_id}/scanqrcode/{token}", open_timeout=10) as ws:
        message = json.loads(ws.recv(timeout=10))
    return str(message.get("type"))


def state_script(creds: list[tuple[int, str]]) -> str:
    pairs = ",".join(f'{{"{i}","{t}"}}' for i, t in creds)
    return f"""
local creds = {{{pairs}}}
local idx = 0
request = function()
  idx = idx % #creds + 1
  return wrk.format("GET", "/waInstance" .. creds[idx][1] .. "/getStateInstance/" .. creds[idx][2])
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--database", default="relay_bench_servers", help="the bench's own PostgreSQL database (dropped and re-created)")
    args = parser.parse_args()
    pg = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay")
    db_url = pg.rpartition("/")[0] + "/" + args.database
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    env = base_env(db_url, redis_url, RATE_LIMITS_ENABLED="false")
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    sh(["redis-cli", "-u", redis_url, "FLUSHDB"])
    creds = prepare(db_url, env, args.instances)
    tmp = Path(tempfile.mkdtemp())
    send, state = tmp / "send.lua", tmp / "state.lua"
    send.write_text(lua_script(creds))
    state.write_text(state_script(creds))
    names = list(commands(0, 1))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for number in range(args.rounds):
        order = names[number % len(names):] + names[:number % len(names)]
        for name in order:
            port = free_port()
            proc = start(commands(port, args.workers)[name], env, out_dir / f"server-{name}.log")
            try:
                wait_http(f"http://127.0.0.1:{port}/healthz")
                entry: dict[str, Any] = {"round": number + 1, "websocket": websocket_ok(port, *creds[0])}
                wrk(send, port, args.warmup, args.connections)
                psql(db_url, "TRUNCATE messaging_outgoingmessage CASCADE")
                entry["sendMessage"] = wrk(send, port, args.duration, args.connections)
                entry["getStateInstance"] = wrk(state, port, args.duration, args.connections)
            finally:
                stop(proc)
            log = (out_dir / f"server-{name}.log").read_text(errors="replace")
            entry["lifespan_errors"] = log.lower().count("lifespan")
            entry["tracebacks"] = log.count("Traceback")
            results[name].append(entry)
            print(name, json.dumps(entry), flush=True)
    summary = {
        name: {
            "sendMessage_rps_median": statistics.median(r["sendMessage"]["rps"] for r in runs),
            "sendMessage_p99_ms_median": statistics.median(r["sendMessage"]["p99_ms"] for r in runs),
            "getStateInstance_rps_median": statistics.median(r["getStateInstance"]["rps"] for r in runs),
            "websocket": sorted({r["websocket"] for r in runs}),
            "tracebacks": sum(r["tracebacks"] for r in runs),
        }
        for name, runs in results.items()
    }
    (out_dir / "servers.json").write_text(json.dumps({"args": vars(args), "runs": results, "summary": summary}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
