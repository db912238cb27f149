"""Benchmark: the edge's hand-written infrastructure against the maintained libraries.

  .venv/bin/python bench/infra_clients.py [--rounds 7] [--ops 10000] [--pool-ops 5000] [--concurrency 1,32]
      [--ours-rev REV] [--request-cpu-us 560] [--only redis,pool,limiter]
  .venv/bin/python bench/infra_clients.py --flip-verdict pool   # the check must fail

Three components, each doing the operation the sendMessage fast lane does per request
(``messaging.fastlane.FastLane._send_message``), on one uvloop event loop (granian's
loop) with ``C`` concurrent callers (a web worker serves many requests at once),
against the PostgreSQL and Redis of DATABASE_URL / REDIS_URL:

- ``redis``: the rate-limit counting script (``ratelimit.COUNT_SCRIPT``, EVALSHA) on
  a window key: our RESP client (``instances/rediscount.py`` ``ScriptClient``) vs
  redis-py's asyncio client with hiredis (``register_script``, a ``Script`` call).
- ``pool``: take a connection, run the fast lane's ``INSERT … SELECT`` (the token
  check inside, ``FAST_INSERT_SQL``) on a reused cursor, read the rowcount, hand the
  connection back: ``EdgePool`` (``instances/edgepool.py``) vs
  ``psycopg_pool.AsyncConnectionPool`` (same size, autocommit connections).
- ``limiter``: ``ratelimit.count_async(instance, sendMessage)`` as shipped vs the
  ``limits`` library's ``FixedWindowRateLimiter.hit`` on its redis-py asyncio storage
  (measured only where ``limits`` is importable: it is not a dependency).

"Ours" is the tree's own code, or with ``--ours-rev`` the modules as they were at a
commit (loaded from git, so the comparison can be re-run after hand-written code
left the tree). Each round runs every variant once, in a rotated order (so each sees
the same machine load); per variant it reports the median over rounds, and the
spread (min–max), of the client process's CPU time per operation (what a web worker
pays, on 2 shared cores) and of operations per second.

Verdict per component: the library's extra CPU per request (its median minus ours,
times the operations one fast-lane request makes) as a share of the CPU one accepted
sendMessage costs the web process (``--request-cpu-us``, from bench/send_throughput.py
``cpu_ms_per_accepted.web``). Under 5 % at every concurrency: "library" (the
hand-written code goes); otherwise "ours" (kept, with the figure). The bench writes
the table to var/bench/infra_clients.md, reads it back, recomputes each verdict
from the figures in the table, and exits 1 if one differs from the verdict it printed
(``--flip-verdict`` prints the other verdict on purpose, to show the check fail).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
import types
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, base_env, prepare

THRESHOLD = 0.05  # of one request's web CPU
# Operations of each component per sendMessage served by the fast lane's one-statement
# path: one count, one pool checkout with its INSERT, one limiter call.
PER_REQUEST = {"redis": 1, "pool": 1, "limiter": 1}
POOL_SIZE = 8  # RELAY_FASTLANE_POOL_SIZE's default

Op = Callable[[int], Awaitable[Any]]


# --- "ours", from git --------------------------------------------------------------------


def load_from_git(rev: str, path: str, name: str) -> types.ModuleType:
    """The module at ``path`` as it was at ``rev``, imported under ``name``."""
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout
    module = types.ModuleType(name)
    module.__file__ = f"{rev}:{path}"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own code from git
    return module


def load_ours(rev: str) -> dict[str, types.ModuleType]:
    if not rev:
        import importlib.util

        from instances import edgepool, ratelimit, rediscount

        # A second copy of the limiter with a state of its own (its clients per loop).
        spec = importlib.util.find_spec("instances.ratelimit")
        assert spec is not None and spec.loader is not None
        ratelimit_redispy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ratelimit_redispy)
        return {"rediscount": rediscount, "edgepool": edgepool, "ratelimit": ratelimit,
                "ratelimit_redispy": ratelimit_redispy}
    rediscount = load_from_git(rev, "instances/rediscount.py", "ours_rediscount")
    moved = subprocess.run(["git", "cat-file", "-e", f"{rev}:instances/edgepool.py"], cwd=ROOT,
                           capture_output=True).returncode == 0
    edgepool = load_from_git(rev, "instances/edgepool.py" if moved else "messaging/edgepool.py", "ours_edgepool")
    # The old limiter imports the old client by its old name.
    saved = sys.modules.get("instances.rediscount")
    sys.modules["instances.rediscount"] = rediscount
    try:
        ratelimit = load_from_git(rev, "instances/ratelimit.py", "ours_ratelimit")
        ratelimit_redispy = load_from_git(rev, "instances/ratelimit.py", "ours_ratelimit_redispy")
    finally:
        if saved is None:
            del sys.modules["instances.rediscount"]
        else:
            sys.modules["instances.rediscount"] = saved
    return {"rediscount": rediscount, "edgepool": edgepool, "ratelimit": ratelimit,
            "ratelimit_redispy": ratelimit_redispy}


# --- the operations ----------------------------------------------------------------------


def window_key(n: int) -> str:
    # 1 000 instances, as bench/send_throughput.py spreads its load; one window.
    return f"rl:bench{n % 1000}:sendMessage:{int(time.time())}"


async def redis_variants(ours: dict[str, types.ModuleType], redis_url: str) -> dict[str, tuple[Op, Any]]:
    import redis.asyncio as aioredis

    from instances.ratelimit import COUNT_SCRIPT

    client = ours["rediscount"].ScriptClient.for_url(redis_url, script=COUNT_SCRIPT, timeout=0.5)
    assert client is not None, "a plain redis:// REDIS_URL is needed"

    async def op_ours(n: int) -> int:
        return int(await client([window_key(n)], [2]))

    library = aioredis.Redis.from_url(redis_url, socket_timeout=0.5)
    script = library.register_script(COUNT_SCRIPT)

    async def op_library(n: int) -> int:
        return int(await script(keys=[window_key(n)], args=[2]))

    return {"ours": (op_ours, None), "library": (op_library, library.aclose)}


def fast_insert(creds: tuple[int, str]) -> tuple[str, Callable[[], list[Any]]]:
    from messaging.fastlane import FAST_INSERT_SQL, _compose

    instance_id, token = creds

    def params() -> list[Any]:
        _, values = _compose(instance_id, {"chatId": "79005550101@c.us", "message": "bench"}, True)
        return [*values, instance_id, token, "true"]

    return FAST_INSERT_SQL, params


async def pool_variants(ours: dict[str, types.ModuleType], creds: tuple[int, str]) -> dict[str, tuple[Op, Any]]:
    from django.conf import settings
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    db = settings.DATABASES["default"]
    kwargs = {"dbname": db["NAME"], "user": db.get("USER") or None, "password": db.get("PASSWORD") or None,
              "host": db.get("HOST") or None, "port": db.get("PORT") or None}
    sql, params = fast_insert(creds)
    edge = ours["edgepool"].EdgePool(POOL_SIZE, kwargs)

    async def op_ours(n: int) -> bool:
        # messaging/fastlane.py at OURS_REV, line for line.
        conn = await edge.acquire()
        try:
            cursor = edge.cursor(conn)
            await cursor.execute(sql, params())
            return bool(cursor.rowcount == 1)
        finally:
            edge.release(conn)

    library: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        kwargs=dict(kwargs, autocommit=True), min_size=POOL_SIZE, max_size=POOL_SIZE, open=False, timeout=10)
    await library.open(wait=True)
    cursors: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    async def op_library(n: int) -> bool:
        async with library.connection() as conn:
            cursor = cursors.get(conn)
            if cursor is None:
                cursor = cursors[conn] = conn.cursor()
            await cursor.execute(sql, params())
            return bool(cursor.rowcount == 1)

    async def op_library_plain(n: int) -> bool:
        async with library.connection() as conn:
            cursor = await conn.execute(sql, params())
            return bool(cursor.rowcount == 1)

    async def close_ours() -> None:
        await edge.close()

    return {"ours": (op_ours, close_ours), "library": (op_library, library.close),
            "library, a cursor per statement": (op_library_plain, None)}


async def limiter_variants(ours: dict[str, types.ModuleType], redis_url: str) -> dict[str, tuple[Op, Any]]:
    from instances import registry

    spec = registry.BY_NAME["sendMessage"]
    shipped = ours["ratelimit"]

    async def op_ours(n: int) -> bool:
        return bool((await shipped.count_async(n % 1000, spec))[0])

    # The shipped limiter's own code on redis-py's client (what it used for other URL
    # schemes): its policy's cost alone, next to the library's on the same client.
    import redis.asyncio as aioredis

    policy = ours["ratelimit_redispy"]
    loops: dict[int, Any] = {}

    async def op_ours_redispy(n: int) -> bool:
        key = id(asyncio.get_running_loop())
        if key not in loops:
            client = aioredis.Redis.from_url(redis_url, socket_timeout=0.5)
            loops[key] = policy._aio_counters[key] = client.register_script(policy.COUNT_SCRIPT)
        return bool((await policy.count_async(n % 1000, spec))[0])

    variants: dict[str, tuple[Op, Any]] = {"ours": (op_ours, None), "ours on redis-py": (op_ours_redispy, None)}
    try:
        from limits import RateLimitItemPerSecond
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import FixedWindowRateLimiter
    except ImportError:
        print("limiter: the limits library is not importable; measuring ours only", file=sys.stderr)
        return variants
    storage = RedisStorage(f"async+{redis_url}", implementation="redispy", socket_timeout=0.5)
    limiter = FixedWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(spec.rate_limit or 50)

    async def op_library(n: int) -> bool:
        return bool(await limiter.hit(item, str(n % 1000), spec.name))

    variants["library"] = (op_library, None)
    return variants


# --- measuring ---------------------------------------------------------------------------


async def run_op(op: Op, ops: int, concurrency: int) -> dict[str, float]:
    """CPU and wall time of ``ops`` operations spread over ``concurrency`` callers.
    Failed operations are counted, not raised: on a shared machine the database can
    stall past the pool's 10 s wait, and such a run is left out of the medians."""
    counter = itertools.count()
    errors = 0

    async def caller() -> None:
        nonlocal errors
        for n in iter(counter.__next__, None):
            if n >= ops:
                return
            try:
                await op(n)
            except Exception as exc:
                errors += 1
                if errors == 1:
                    print(f"  an operation failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)

    for n in range(50):  # warm: connections, script caches, statement plans
        await op(n)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cpu_us_per_op": cpu / ops * 1e6, "ops_per_s": ops / wall, "errors": errors}


async def measure(component: str, variants: dict[str, tuple[Op, Any]], args: argparse.Namespace,
                  between: Callable[[], None]) -> dict[str, Any]:
    samples: dict[str, dict[int, list[dict[str, float]]]] = {
        name: {c: [] for c in args.concurrency} for name in variants}
    names = list(variants)
    for round_number in range(args.rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            for concurrency in args.concurrency:
                between()
                ops = args.pool_ops if component == "pool" else args.ops
                samples[name][concurrency].append(await run_op(variants[name][0], ops, concurrency))
        print(f"{component}: round {round_number + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    for _, close in variants.values():
        if close is not None:
            await close()
    result: dict[str, Any] = {}
    for name in names:
        result[name] = {}
        for concurrency in args.concurrency:
            runs = [r for r in samples[name][concurrency] if not r["errors"]]
            if not runs:
                raise SystemExit(f"{component}/{name}: every run had failed operations")
            cpu = [r["cpu_us_per_op"] for r in runs]
            rate = [r["ops_per_s"] for r in runs]
            result[name][concurrency] = {
                "cpu_us_median": round(statistics.median(cpu), 1), "cpu_us_min": round(min(cpu), 1),
                "cpu_us_max": round(max(cpu), 1), "ops_per_s_median": round(statistics.median(rate)),
                "ops_per_s_min": round(min(rate)), "ops_per_s_max": round(max(rate)),
                "runs": len(runs), "runs_left_out": len(samples[name][concurrency]) - len(runs),
            }
    return result


def verdict(component: str, ours_us: dict[int, float], library_us: dict[int, float], request_cpu_us: float) -> str:
    worst = max((library_us[c] - ours_us[c]) * PER_REQUEST[component] / request_cpu_us for c in ours_us)
    return "library" if worst < THRESHOLD else "ours"


# --- the table and its check -------------------------------------------------------------

ROW = re.compile(r"^\| (?P<component>\w+) \| (?P<concurrency>\d+) \| (?P<ours>[\d.]+) \([\d.]+–[\d.]+\) \|"
                 r" (?P<library>[\d.]+) \([\d.]+–[\d.]+\) \| .*? \| (?P<verdict>ours|library) \|$")


def table(results: dict[str, Any], verdicts: dict[str, str], request_cpu_us: float) -> str:
    lines = [
        f"request web CPU assumed: {request_cpu_us:g} µs per accepted sendMessage; threshold {THRESHOLD:.0%}",
        "",
        "| component | callers | ours µs CPU/op (min–max) | library µs CPU/op (min–max) | ours ops/s | library ops/s"
        " | library − ours, share of a request | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for component, variants in results.items():
        if "library" not in variants:
            continue
        for concurrency, ours in variants["ours"].items():
            lib = variants["library"][concurrency]
            share = (lib["cpu_us_median"] - ours["cpu_us_median"]) * PER_REQUEST[component] / request_cpu_us
            lines.append(
                f"| {component} | {concurrency} | {ours['cpu_us_median']} ({ours['cpu_us_min']}–{ours['cpu_us_max']}) |"
                f" {lib['cpu_us_median']} ({lib['cpu_us_min']}–{lib['cpu_us_max']}) |"
                f" {ours['ops_per_s_median']} | {lib['ops_per_s_median']} | {share:+.1%} | {verdicts[component]} |"
            )
    extra = [(c, name, v) for c, variants in results.items() for name, v in variants.items()
             if name not in ("ours", "library")]
    for component, name, per_c in extra:
        for concurrency, v in per_c.items():
            lines.append(f"\n{component} / {name}, {concurrency} callers: {v['cpu_us_median']} µs CPU/op"
                         f" ({v['cpu_us_min']}–{v['cpu_us_max']}), {v['ops_per_s_median']} ops/s")
    return "\n".join(lines) + "\n"


def check_table(text: str, printed: dict[str, str], request_cpu_us: float) -> list[str]:
    """Recompute each verdict from the figures in the written table; the mismatches."""
    ours: dict[str, dict[int, float]] = {}
    library: dict[str, dict[int, float]] = {}
    in_table: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            c, n = m["component"], int(m["concurrency"])
            ours.setdefault(c, {})[n] = float(m["ours"])
            library.setdefault(c, {})[n] = float(m["library"])
            in_table.setdefault(c, set()).add(m["verdict"])
    problems = []
    for component, said in printed.items():
        recomputed = verdict(component, ours[component], library[component], request_cpu_us)
        if in_table[component] != {said} or recomputed != said:
            problems.append(f"{component}: printed {said!r}, table says {sorted(in_table[component])},"
                            f" its figures give {recomputed!r}")
    return problems


# --- main --------------------------------------------------------------------------------


async def run(args: argparse.Namespace, db_url: str, redis_url: str, creds: tuple[int, str]) -> dict[str, Any]:
    import uvloop  # noqa: F401 - granian's loop; asyncio.run below runs on it (see main)

    from bench.common import psql

    ours = load_ours(args.ours_rev)
    results: dict[str, Any] = {}

    def flush_redis() -> None:
        subprocess.run(["redis-cli", "-u", redis_url, "FLUSHDB"], check=True, capture_output=True)

    def truncate() -> None:
        psql(db_url, "TRUNCATE messaging_outgoingmessage")

    if "redis" in args.only:
        results["redis"] = await measure("redis", await redis_variants(ours, redis_url), args, flush_redis)
    if "pool" in args.only:
        results["pool"] = await measure("pool", await pool_variants(ours, creds), args, truncate)
    if "limiter" in args.only:
        results["limiter"] = await measure("limiter", await limiter_variants(ours, redis_url), args, flush_redis)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--ops", type=int, default=10_000, help="Redis operations per variant and round")
    parser.add_argument("--pool-ops", type=int, default=5_000, help="pool operations per variant and round")
    parser.add_argument("--concurrency", default="1,32", help="concurrent callers on the loop")
    parser.add_argument("--ours-rev", default="", help="take ours from this commit (default: the tree)")
    parser.add_argument("--request-cpu-us", type=float, default=560.0,
                        help="web CPU per accepted sendMessage (bench/send_throughput.py)")
    parser.add_argument("--only", default="redis,pool,limiter")
    parser.add_argument("--database", default="relay_bench_infra",
                        help="the bench's own PostgreSQL database (dropped and re-created)")
    parser.add_argument("--flip-verdict", default="", help="components whose verdict to print wrong (the check must fail)")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.only = args.only.split(",")
    pg = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay")
    db_url = pg.rpartition("/")[0] + "/" + args.database
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    env = base_env(db_url, redis_url, RATE_LIMITS_ENABLED="true")
    creds = prepare(db_url, env, 1)[0]  # also sets Django up on that database
    load = os.getloadavg()
    import uvloop

    results = uvloop.run(run(args, db_url, redis_url, creds))
    load_after = os.getloadavg()
    verdicts = {
        component: verdict(component, {c: v["cpu_us_median"] for c, v in variants["ours"].items()},
                           {c: v["cpu_us_median"] for c, v in variants["library"].items()}, args.request_cpu_us)
        for component, variants in results.items() if "library" in variants
    }
    for component in filter(None, args.flip_verdict.split(",")):
        verdicts[component] = "library" if verdicts[component] == "ours" else "ours"
    out_dir = ROOT / "var" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    text = table(results, verdicts, args.request_cpu_us)
    (out_dir / "infra_clients.md").write_text(text)
    (out_dir / "infra_clients.json").write_text(json.dumps(
        {"args": {k: v for k, v in vars(args).items()}, "load_before": load, "load_after": load_after,
         "results": results, "verdicts": verdicts}, indent=2))
    print(text)
    print(f"load average (1/5/15 min) before {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f},"
          f" after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}")
    print("verdicts: " + json.dumps(verdicts))
    problems = check_table((out_dir / "infra_clients.md").read_text(), verdicts, args.request_cpu_us)
    if problems:
        sys.exit("verdict check FAILED: " + "; ".join(problems))
    print("verdict check passed: every printed verdict is the one the table's figures give")


if __name__ == "__main__":
    main()
