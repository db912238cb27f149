"""Benchmark: sendMessage throughput, latency and end-to-end delivery, against the floor.

  .venv/bin/python bench/send_throughput.py [--instances 100] [--duration 15] [--connections 64] [--rounds 3]

What it does (PostgreSQL + Redis from DATABASE_URL / REDIS_URL, defaults: this machine):
1. Creates a fresh database ``relay_bench``, migrates, creates K authorized emulator
   instances with delaySendMessagesMilliseconds = 0 and a registered recipient.
2. Floor: runs bench/floor_app.py (raw ASGI: one token SELECT + one INSERT into the
   same table) under the same server (uvicorn, same worker count); wrk measures it.
3. Relay: starts the stack (uvicorn web workers, one Celery worker, one session
   runner), loads sendMessage with wrk at concurrency C for the duration, then waits
   until every accepted message is ``delivered``; then a second run at half the
   maximum rate (open-ish loop: wrk connections pacing themselves) for p50/p99.
4. Prints accepted req/s, p50/p99, seconds until all delivered, lost and duplicated
   counts, and Relay's throughput as a ratio of the floor. Steps 2 and 3 repeat
   ``--rounds`` times, interleaved (this VM's speed drifts within minutes, so a ratio
   only compares runs made side by side); the summary gives the median ratio, the
   worst half-rate p99 and the total lost and duplicated. Writes var/bench/*.json.

``--web-only`` starts only the web processes (no drain, no runner) to measure the
accept path alone against the same floor.

Only loopback traffic; every process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PORT = 8077
RECIPIENT = "79005550101"


def sh(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def base_env(db_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DB_POOL="true",
        DB_POOL_SIZE="8",
        LOG_LEVEL="WARNING",
        RELAY_VAR_DIR=str(ROOT / "var" / "bench"),
        EMULATOR_DELIVERED_AFTER_SECONDS="0",
        EMULATOR_READ_AFTER_SECONDS="3600",
        RUNNER_TICK_SECONDS="0.2",
    )
    return env


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare(db_url: str, env: dict[str, str], instances: int) -> list[tuple[int, str]]:
    admin_url, _, name = db_url.rpartition("/")
    sh(["psql", f"{admin_url}/postgres", "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])
    sh(["psql", f"{admin_url}/postgres", "-qc", f"CREATE DATABASE {name}"])
    sh([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env)
    django_setup(env)
    from django.contrib.auth import get_user_model

    from instances import services
    from instances.models import State
    from instances.transport.emulator import ensure_phone

    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    account = services.ensure_account(user)
    ensure_phone(RECIPIENT, "Bench recipient")
    creds = []
    for n in range(instances):
        instance = services.create_instance(account=account, name=f"bench {n}")
        phone = f"7990{n:07d}"
        services.link_phone(instance, phone=phone)
        services.change_state(instance, State.AUTHORIZED)
        services.update_settings(instance, {"delaySendMessagesMilliseconds": 0})
        creds.append((instance.id, instance.api_token))
    return creds


def lua_script(creds: list[tuple[int, str]], pace_ms: float = 0) -> str:
    pairs = ",".join(f'{{"{i}","{t}"}}' for i, t in creds)
    body = json.dumps({"chatId": f"{RECIPIENT}@c.us", "message": "hi from bench"})
    delay = f"function delay() return {pace_ms} end" if pace_ms else ""
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
{delay}
"""


def wrk(script: Path, duration: int, connections: int, threads: int = 2) -> dict[str, float]:
    out = sh(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{PORT}"]
    ).stdout
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


def wait_http(url: str, timeout: float = 30) -> None:
    import urllib.error
    import urllib.request

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


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def uvicorn_cmd(app: str, workers: int) -> list[str]:
    return [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(PORT), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]


def truncate(db_url: str) -> None:
    tables = "messaging_outgoingmessage, messaging_messagestatuschange, instances_emumessage"
    sh(["psql", db_url, "-qc", f"TRUNCATE {tables} CASCADE; CHECKPOINT"])


def counts(db_url: str) -> dict[str, int]:
    q = (
        "SELECT (SELECT count(*) FROM messaging_outgoingmessage),"
        " (SELECT count(*) FROM messaging_outgoingmessage WHERE status IN ('delivered','read')),"
        " (SELECT count(*) FROM instances_emumessage),"
        " (SELECT count(*) FROM (SELECT sender, id_message FROM instances_emumessage"
        "   GROUP BY 1, 2 HAVING count(*) > 1) d)"
    )
    rows, delivered, network, dupes = map(int, sh(["psql", db_url, "-tAc", q]).stdout.strip().split("|"))
    return {"rows": rows, "delivered": delivered, "network": network, "duplicates": dupes}


def run_floor(script: Path, env: dict[str, str], db_url: str, out_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    floor_env = dict(env, FLOOR_DSN=db_url.replace("postgres://", "postgresql://"), PYTHONPATH=str(ROOT))
    floor = start(uvicorn_cmd("bench.floor_app:app", args.web_workers), floor_env, out_dir / "floor.log")
    try:
        wait_http(f"http://127.0.0.1:{PORT}/")
        wrk(script, args.warmup, args.connections)
        truncate(db_url)
        result = wrk(script, args.duration, args.connections)
    finally:
        stop(floor)
    truncate(db_url)
    return result


def run_relay(
    creds: list[tuple[int, str]], script: Path, tmp: Path, env: dict[str, str], db_url: str, out_dir: Path,
    args: argparse.Namespace,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The full stack at full load (then until every message is delivered), and at
    half that rate."""
    procs = [
        start(uvicorn_cmd("config.asgi:application", args.web_workers), env, out_dir / "web.log"),
        start([PY, "-m", "celery", "-A", "config", "worker", "--pool", "threads", "--concurrency",
               str(args.celery_concurrency), "--loglevel", "WARNING", "-B", "--schedule",
               str(out_dir / "beat-schedule")], env, out_dir / "worker.log"),
        start([PY, "manage.py", "runsessions", "--tick", "0.2"], env, out_dir / "runner.log"),
    ]
    try:
        wait_http(f"http://127.0.0.1:{PORT}/healthz")
        wrk(script, args.warmup, args.connections)
        time.sleep(3)
        truncate(db_url)
        relay = wrk(script, args.duration, args.connections)
        load_end = time.time()
        accepted = relay["requests"] - relay["non_2xx"]
        deadline = load_end + 300
        c = counts(db_url)
        # Requests in flight when wrk stopped commit too: wait for every committed row.
        while c["delivered"] < max(accepted, c["rows"]) and time.time() < deadline:
            time.sleep(0.5)
            c = counts(db_url)
        relay["seconds_until_all_delivered"] = round(time.time() - load_end, 1)
        relay["accepted"] = accepted
        # Requests still in flight when wrk stopped may commit too (rows ≥ accepted):
        # lost = committed rows never delivered, plus any accepted reply without a row.
        relay["lost"] = (c["rows"] - c["delivered"]) + max(0, accepted - c["rows"])
        relay["duplicated"] = c["duplicates"] + max(0, c["network"] - c["rows"])
        relay["rows_committed"] = c["rows"]

        # Half of the maximum rate: 16 connections, each pacing itself.
        half = relay["rps"] / 2
        conns = 16
        pace = max(1.0, conns * 1000 / half - max(relay["p50_ms"] / 4, 1))
        paced = tmp / "paced.lua"
        paced.write_text(lua_script(creds, pace_ms=round(pace, 1)))
        truncate(db_url)
        half_rate = wrk(paced, args.duration, conns)
        half_rate["target_rps"] = round(half)
    finally:
        for proc in procs:
            stop(proc)
    return relay, half_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--celery-concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3,
                        help="floor and Relay measured this many times, interleaved; the ratio reported is the "
                             "median of the rounds' ratios (this VM's speed drifts by 10-20 %% within minutes)")
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--web-only", action="store_true",
                        help="start only the web processes (no worker, no runner): the accept path alone; "
                             "nothing is delivered, so delivery is not measured")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    pg = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay")
    db_url = pg.rpartition("/")[0] + "/relay_bench"
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    env = base_env(db_url, redis_url)
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    sh(["redis-cli", "-u", redis_url, "FLUSHDB"])
    print(f"preparing {args.instances} instances in {db_url} …", flush=True)
    creds = prepare(db_url, env, args.instances)
    tmp = Path(tempfile.mkdtemp())
    script = tmp / "send.lua"
    script.write_text(lua_script(creds))
    result: dict[str, Any] = {"instances": args.instances, "connections": args.connections,
                              "duration_s": args.duration, "web_workers": args.web_workers}

    if args.web_only:
        if not args.skip_floor:
            result["floor"] = run_floor(script, env, db_url, out_dir, args)
            print(f"floor: {result['floor']}", flush=True)
        web = start(uvicorn_cmd("config.asgi:application", args.web_workers), env, out_dir / "web.log")
        try:
            wait_http(f"http://127.0.0.1:{PORT}/healthz")
            wrk(script, args.warmup, args.connections)
            truncate(db_url)
            result["relay_web_only"] = wrk(script, args.duration, args.connections)
            print(f"relay web only: {result['relay_web_only']}", flush=True)
        finally:
            stop(web)
        if "floor" in result:
            result["web_only_ratio_to_floor"] = round(result["relay_web_only"]["rps"] / result["floor"]["rps"], 3)
        (out_dir / "send_throughput_web_only.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))
        return

    rounds: list[dict[str, Any]] = []
    for number in range(1, max(1, args.rounds) + 1):
        entry: dict[str, Any] = {"round": number}
        if not args.skip_floor:
            entry["floor"] = run_floor(script, env, db_url, out_dir, args)
            print(f"round {number} floor: {entry['floor']}", flush=True)
        entry["relay"], entry["relay_half_rate"] = run_relay(creds, script, tmp, env, db_url, out_dir, args)
        print(f"round {number} relay: {entry['relay']}", flush=True)
        print(f"round {number} relay at half rate: {entry['relay_half_rate']}", flush=True)
        if "floor" in entry:
            entry["ratio_to_floor"] = round(entry["relay"]["rps"] / entry["floor"]["rps"], 3)
            print(f"round {number} ratio to floor: {entry['ratio_to_floor']}", flush=True)
        rounds.append(entry)
    result["rounds"] = rounds
    result["lost"] = sum(r["relay"]["lost"] for r in rounds)
    result["duplicated"] = sum(r["relay"]["duplicated"] for r in rounds)
    result["half_rate_p99_ms_max"] = max(r["relay_half_rate"]["p99_ms"] for r in rounds)
    if not args.skip_floor:
        result["ratio_to_floor_median"] = statistics.median(r["ratio_to_floor"] for r in rounds)
    (out_dir / "send_throughput.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
