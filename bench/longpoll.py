"""Benchmark: receiveNotification long-polls at scale: wake-up latency and memory.

  .venv/bin/python bench/longpoll.py [--instances 200] [--waiters 10000] [--gap-ms 20]
  .venv/bin/python bench/longpoll.py --waiters 25000 --cap-to-fd-limit      # HTTP/1.1, what fits
  .venv/bin/python bench/longpoll.py --waiters 25000 --http2 [--streams-per-connection 200]

What it does (PostgreSQL + Redis from DATABASE_URL / REDIS_URL, defaults: this machine):
1. Creates a fresh database ``relay_bench_longpoll``, migrates, creates N authorized
   emulator instances with incomingWebhook on.
2. Starts one shipped web process (config/processes.py's granian command, 1 worker) (the async receiveNotification view, Redis pub/sub
   wake-ups, a psycopg pool) and a client process that opens W concurrent
   ``receiveNotification?receiveTimeout=60`` requests spread evenly over the instances
   (raw asyncio sockets, one connection each). With ``--http2`` the waiters are
   concurrent HTTP/2 streams instead, ``--streams-per-connection`` of them on each of
   W / S cleartext connections (prior knowledge, h2c: the shipped web command speaks
   HTTP/1.1 and HTTP/2 on one port); the web process then holds W / S sockets, not W.
3. Once every request is sent and has settled, this process injects one incoming
   message per instance with ``journals.services.ingest_event`` (the engine's way in),
   one instance every ``--gap-ms``, stamping the moment of commit.
4. Wake-up latency = response received by the client − commit (both CLOCK_MONOTONIC,
   one machine; over HTTP/2: the read that completed that stream's response). Prints p50/p90/p99/max, how many waiters answered, and the web
   process's RSS (VmRSS while everyone waits, VmHWM peak) from /proc. Writes
   var/bench/longpoll.json. Targets (issue 16): 25,000 waiters on one web process,
   p99 ≤ 50 ms, RSS ≤ 2 GB.

Descriptors: over HTTP/1.1 each waiter is a socket in both the web and the client
process, so W waiters need more than W + FD_HEADROOM descriptors per process. Where
the hard limit is lower and cannot be raised (this machine: 20,000, no
CAP_SYS_RESOURCE), ``--cap-to-fd-limit`` lowers W to limit − FD_HEADROOM and the
summary says so (``waiters_requested``, ``waiters``, ``fd_limit``).

Only loopback traffic; every process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from h2 import events as h2_events  # noqa: E402
from h2.config import H2Configuration  # noqa: E402
from h2.connection import H2Connection  # noqa: E402

from bench.common import create_instances, django_setup, free_port, fresh_database, shipped, stop, wait_http  # noqa: E402

PY = sys.executable
PORT = int(os.environ.get("LONGPOLL_PORT", "0"))
SENDER = "79005550202"


FD_LIMIT_WANTED = 1 << 18
# Descriptors a process needs besides its waiters' sockets: the web process's
# PostgreSQL pool, Redis, listening sockets, the interpreter's own files.
FD_HEADROOM = 1000


def raise_fd_limit() -> int:
    """Each waiter is a socket on both ends (the client process holds one, the web
    process the other), so both need more descriptors than waiters. Lift the soft
    limit, and the hard one where the process may (root, CAP_SYS_RESOURCE: a hard
    limit of 20,000 is this machine's default and stopped 25,000 waiters); the
    processes the bench starts inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= FD_LIMIT_WANTED:
        target = FD_LIMIT_WANTED if hard == resource.RLIM_INFINITY else hard
        if soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT_WANTED, FD_LIMIT_WANTED))
        return FD_LIMIT_WANTED
    except (ValueError, OSError):
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return int(hard)


def base_env(db_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        # A deployment refuses the public built-in key (config/settings.py).
        SECRET_KEY=os.environ.get("SECRET_KEY") or "relay-bench-only-key-Wf3kP9sQ2vL7xN4cR8tY1zB6",
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DB_POOL="true",
        DB_POOL_SIZE="16",
        LOG_LEVEL="WARNING",
        RELAY_VAR_DIR=str(ROOT / "var" / "bench"),
        # The client ramps up fast on few instances; limits are not under test here.
        RATE_LIMITS_ENABLED="false",
    )
    return env


def prepare(db_url: str, env: dict[str, str], instances: int) -> list[tuple[int, str]]:
    """``instances`` authorized emulator instances with ``incomingWebhook`` on
    (through ``update_settings``), created like every bench's (common.create_instances)."""
    fresh_database(db_url, env)
    django_setup(env)
    from django.contrib.auth import get_user_model

    from engines.emulator.transport import ensure_phone  # needs Django set up: imported here
    from instances import services

    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    account = services.ensure_account(user)
    ensure_phone(SENDER, "Bench sender")
    return create_instances(env, account.pk, instances, phone_prefix="7991", after_link={"incomingWebhook": True})


def group_pids(pgid: int) -> list[int]:
    """The processes of the web command's process group: granian's supervisor and its
    worker (the supervisor holds none of the waiters, the worker all of them)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[2]) == pgid:
                pids.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return pids


def rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM summed over the web command's process group."""
    out = {"VmRSS": 0, "VmHWM": 0}
    for member in group_pids(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in lines:
            key, _, value = line.partition(":")
            if key in out:
                out[key] += int(value.split()[0])
    return out


# --- The client process -------------------------------------------------------------


async def _waiter(
    instance_id: int, token: str, results: list[tuple[int, float, int, bool]], sent: list[int], gate: asyncio.Semaphore
) -> None:
    """Long-poll until a notification comes (an empty answer is re-polled, as SDKs do)."""
    request = (
        f"GET /waInstance{instance_id}/receiveNotification/{token}?receiveTimeout=60 HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{PORT}\r\nConnection: close\r\n\r\n"
    ).encode()
    first = True
    while True:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
            writer.write(request)
            await writer.drain()
        if first:
            sent[0] += 1
            first = False
        try:
            data = await reader.read()
            received = time.monotonic()
        finally:
            writer.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
        body = data.partition(b"\r\n\r\n")[2].strip()
        if status == 200 and body in (b"", b"null"):
            continue
        results.append((instance_id, received, status, status == 200))
        return


async def _client(creds: list[tuple[int, str]], waiters: int, ready_file: Path, out_file: Path) -> None:
    results: list[tuple[int, float, int, bool]] = []
    sent = [0]
    gate = asyncio.Semaphore(256)  # concurrent connects (the listen backlog is finite)
    tasks = []
    for n in range(waiters):
        instance_id, token = creds[n % len(creds)]
        tasks.append(asyncio.create_task(_waiter(instance_id, token, results, sent, gate)))
    # Ready once every request is out (or its task failed: counted below).
    while sent[0] + sum(1 for t in tasks if t.done()) < waiters:
        await asyncio.sleep(0.05)
    ready_file.write_text(str(sent[0]))
    cpu_ready = time.process_time()
    done, _ = await asyncio.wait(tasks, timeout=180)
    errors = [repr(t.exception()) for t in done if t.exception() is not None]
    out_file.write_text(json.dumps({"results": results, "errors": errors[:20], "error_count": len(errors),
                                    "cpu_s_after_ready": time.process_time() - cpu_ready}))


# --- The HTTP/2 client: many waiters per connection ------------------------------


def _poll_path(instance_id: int, token: str) -> bytes:
    return f"/waInstance{instance_id}/receiveNotification/{token}?receiveTimeout=60".encode()


class _H2Waiters(asyncio.Protocol):
    """One h2c (prior knowledge) connection carrying ``len(waiters)`` long polls as
    concurrent streams. Like the HTTP/1.1 waiter, an empty answer is re-polled (a new
    stream on the same connection); a waiter is done at its first notification.

    A protocol, not a stream reader: a wake-up completes streams on many connections
    at once, and parsing HTTP/2 in Python costs far more than reading an HTTP/1.1
    answer. Each read is stamped as it arrives and parsed after every read of the same
    loop pass is stamped, so a stream's latency does not include the parsing of the
    other connections' streams (the HTTP/1.1 client does no such work)."""

    def __init__(self, waiters: list[tuple[int, str]], results: list[tuple[int, float, int, bool]]) -> None:
        self.waiters = waiters
        self.results = results
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        # stream id -> (instance id, path, status, body so far)
        self.streams: dict[int, tuple[int, bytes, int, bytearray]] = {}
        self.sent = 0  # waiters whose first request is written (the ramp's readiness)
        self.failed = 0  # waiters lost with the connection or a reset stream (client errors)
        self.resolved = 0  # waiters answered (their first notification or an error status) or lost
        self.transport: asyncio.Transport | None = None
        self.unparsed: list[tuple[float, bytes]] = []
        loop = asyncio.get_running_loop()
        self.settings: asyncio.Future[int] = loop.create_future()  # the server's max concurrent streams
        self.done: asyncio.Future[None] = loop.create_future()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.unparsed.append((time.monotonic(), data))
        if len(self.unparsed) == 1:
            asyncio.get_running_loop().call_soon(self._parse)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"the server closed the connection with {len(self.streams)} streams open ({exc!r})"))

    def _fail(self, exc: BaseException) -> None:
        for future in (self.settings, self.done):
            if not future.done():
                future.set_exception(exc)

    def _flush(self) -> None:
        outgoing = self.conn.data_to_send()
        if outgoing and self.transport is not None and not self.transport.is_closing():
            self.transport.write(outgoing)

    def _parse(self) -> None:
        chunks, self.unparsed = self.unparsed, []
        try:
            for received, data in chunks:
                for event in self.conn.receive_data(data):
                    self._on_event(event, received)
        except Exception as exc:  # noqa: BLE001 - a protocol error ends this connection's waiters
            self._fail(exc)
            return
        self._flush()
        if self.resolved == len(self.waiters) and not self.done.done():
            self.done.set_result(None)

    def _open(self, instance_id: int, path: bytes) -> None:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, [
            (b":method", b"GET"), (b":scheme", b"http"), (b":authority", f"127.0.0.1:{PORT}".encode()),
            (b":path", path),
        ], end_stream=True)
        self.streams[stream_id] = (instance_id, path, 0, bytearray())

    def _on_event(self, event: h2_events.Event, received: float) -> None:
        if isinstance(event, h2_events.RemoteSettingsChanged):
            if not self.settings.done():
                self.settings.set_result(self.conn.remote_settings.max_concurrent_streams)
        elif isinstance(event, h2_events.ResponseReceived):
            instance_id, path, _, body = self.streams[event.stream_id or 0]
            status = next((int(v) for k, v in event.headers or [] if k == b":status"), 0)
            self.streams[event.stream_id or 0] = (instance_id, path, status, body)
        elif isinstance(event, h2_events.DataReceived):
            self.streams[event.stream_id or 0][3].extend(event.data or b"")
            # Give the window back at once: thousands of small answers share the
            # connection's 64 KB receive window.
            self.conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id or 0)
        elif isinstance(event, h2_events.StreamEnded):
            instance_id, path, status, body = self.streams.pop(event.stream_id or 0)
            if status == 200 and bytes(body).strip() in (b"", b"null"):
                self._open(instance_id, path)
            else:
                self.results.append((instance_id, received, status, status == 200))
                self.resolved += 1
        elif isinstance(event, h2_events.StreamReset):
            self.streams.pop(event.stream_id or 0, None)
            self.failed += 1
            self.resolved += 1
        elif isinstance(event, h2_events.ConnectionTerminated):
            raise ConnectionError(f"GOAWAY from the server: {event.error_code!r}")

    async def run(self, gate: asyncio.Semaphore, first: int, ramp_start: float, ramp_rate: float) -> None:
        """``first``: the global index of this connection's first waiter; waiter k's
        request goes out at ramp_start + k / ramp_rate (0: all at once)."""
        loop = asyncio.get_running_loop()
        try:
            async with gate:
                await loop.create_connection(lambda: self, "127.0.0.1", PORT)
            self.conn.initiate_connection()
            self._flush()
            # The server's SETTINGS first: it states how many streams a connection
            # may have open at once, and more than that would be refused.
            limit = await self.settings
            if len(self.waiters) > limit:
                raise ValueError(f"{len(self.waiters)} streams per connection; the server allows {limit}"
                                 " (granian --http2-max-concurrent-streams)")
            for n, (instance_id, token) in enumerate(self.waiters):
                due = ramp_start + (first + n) / ramp_rate - time.monotonic() if ramp_rate > 0 else 0.0
                if due > 0:
                    self._flush()
                    self.sent = n
                    await asyncio.sleep(due)
                if self.done.done():
                    break  # the connection failed meanwhile: await below raises why
                self._open(instance_id, _poll_path(instance_id, token))
            self._flush()
            self.sent = len(self.waiters)
            await self.done
        except BaseException:
            self.failed += len(self.waiters) - self.resolved
            self.sent = len(self.waiters)  # settled for the ramp: counted as failed
            raise
        finally:
            if self.transport is not None:
                self.transport.close()


async def _client_h2(creds: list[tuple[int, str]], waiters: int, per_connection: int, ramp_rate: float,
                     ready_file: Path, out_file: Path) -> None:
    results: list[tuple[int, float, int, bool]] = []
    assigned = [creds[n % len(creds)] for n in range(waiters)]
    connections = [_H2Waiters(assigned[start:start + per_connection], results)
                   for start in range(0, waiters, per_connection)]
    gate = asyncio.Semaphore(64)  # concurrent connects
    ramp_start = time.monotonic()
    tasks = [asyncio.create_task(c.run(gate, n * per_connection, ramp_start, ramp_rate))
             for n, c in enumerate(connections)]
    while sum(c.sent for c in connections) < waiters:
        await asyncio.sleep(0.05)
    ready_file.write_text(str(sum(c.sent for c in connections) - sum(c.failed for c in connections)))
    cpu_ready = time.process_time()
    done, _ = await asyncio.wait(tasks, timeout=180)
    errors = [repr(t.exception()) for t in done if t.exception() is not None]
    out_file.write_text(json.dumps({"results": results, "errors": errors[:20],
                                    "error_count": sum(c.failed for c in connections),
                                    "cpu_s_after_ready": time.process_time() - cpu_ready}))


def client_main(args: argparse.Namespace) -> None:
    global PORT
    PORT = args.port
    raise_fd_limit()
    creds = [(int(i), str(t)) for i, t in json.loads(Path(args.creds).read_text())]
    if args.http2:
        asyncio.run(_client_h2(creds, args.waiters, args.streams_per_connection, args.ramp_rate, Path(args.ready),
                               Path(args.out)))
    else:
        asyncio.run(_client(creds, args.waiters, Path(args.ready), Path(args.out)))


# --- The bench ----------------------------------------------------------------------


def inject(creds: list[tuple[int, str]], gap: float) -> dict[int, float]:
    """One incoming message per instance; returns the commit moment of each."""
    from django.db import transaction
    from django.utils import timezone

    from engines.events import MessageEvent
    from instances.models import Instance
    from journals.services import ingest_event

    instances = {i.id: i for i in Instance.objects.filter(pk__in=[c[0] for c in creds])}
    committed: dict[int, float] = {}
    for n, (instance_id, _) in enumerate(creds):
        event = MessageEvent(
            direction="incoming",
            chat_id=f"{SENDER}@c.us",
            id_message=f"BENCH{n:011d}",
            sender=f"{SENDER}@c.us",
            sender_name="Bench sender",
            chat_name="Bench sender",
            message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": f"wake {n}"}},
            timestamp=timezone.now(),
        )
        with transaction.atomic():
            # Runs first among the on-commit callbacks: right after COMMIT, before the
            # wake-up is published.
            def stamp(i: int = instance_id) -> None:
                committed[i] = time.monotonic()

            transaction.on_commit(stamp)
            ingest_event(instances[instance_id], event)
        time.sleep(gap)
    return committed


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU time of a process group (the web command: its worker does the work; the
    supervisor alone stays idle whatever the load)."""
    return sum(cpu_seconds(pid) for pid in group_pids(pgid))


def settle(pid: int, quiet_seconds: float) -> None:
    """Every request is sent; wait until the web process has taken them all in (its
    CPU goes quiet: each waiter's start is two short DB reads), then a bit more."""
    quiet = 0.0
    last = group_cpu_seconds(pid)
    while quiet < quiet_seconds:
        time.sleep(0.5)
        now = group_cpu_seconds(pid)
        quiet = quiet + 0.5 if now - last < 0.05 else 0.0
        last = now


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=2.0, help="quiet seconds (web CPU idle) before the first event")
    parser.add_argument("--ramp-timeout", type=float, default=120.0)
    parser.add_argument("--http2", action="store_true",
                        help="waiters are HTTP/2 streams (h2c, prior knowledge), --streams-per-connection per connection")
    parser.add_argument("--streams-per-connection", type=int, default=200,
                        help="with --http2 (granian's default SETTINGS_MAX_CONCURRENT_STREAMS is 200)")
    parser.add_argument("--ramp-rate", type=float, default=1000.0,
                        help="with --http2: requests sent per second while the waiters come in (0: every stream at"
                        " once). HTTP/1.1 is paced by its connects (about 1,500/s here)")
    parser.add_argument("--cap-to-fd-limit", action="store_true",
                        help=f"lower --waiters to what the descriptor limit allows (limit - {FD_HEADROOM}), stated"
                        " in the summary, instead of refusing to run")
    parser.add_argument("--database", default="", help="the bench's own PostgreSQL database (dropped and re-created;"
                        " default relay_bench_longpoll on DATABASE_URL_BENCH's or DATABASE_URL's server)")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--creds", help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return

    # Stopped by a signal: still run the finally blocks that stop the processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_before = os.getloadavg()
    limit = raise_fd_limit()
    requested = args.waiters
    # Sockets per process: one per waiter over HTTP/1.1, one per connection over HTTP/2.
    connections = -(-requested // args.streams_per_connection) if args.http2 else requested
    if limit < connections + FD_HEADROOM:
        if not args.cap_to_fd_limit or args.http2:
            sys.exit(f"{connections} connections need more than {connections + FD_HEADROOM} file descriptors per"
                     f" process; the limit here is {limit}: raise it (ulimit -Hn / -n), run as root, or pass"
                     " --cap-to-fd-limit (HTTP/1.1) or --http2")
        args.waiters = connections = limit - FD_HEADROOM
        print(f"HTTP/1.1: {requested} waiters need {requested + FD_HEADROOM} descriptors per process; this"
              f" machine's hard limit is {limit}: measuring {args.waiters} waiters (limit - {FD_HEADROOM})",
              flush=True)
    http = "2" if args.http2 else "1.1"
    global PORT
    PORT = free_port()
    db_url = os.environ.get("DATABASE_URL_BENCH", "postgres://postgres@127.0.0.1:5432/relay_bench_longpoll")
    if args.database:
        db_url = db_url.rpartition("/")[0] + "/" + args.database
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")
    env = base_env(db_url, redis_url)
    work = ROOT / "var" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    print(f"preparing {args.instances} instances in {db_url} (fd limit {limit})", flush=True)
    creds = prepare(db_url, env, args.instances)
    creds_file, ready_file, out_file = work / "longpoll-creds.json", work / "longpoll-ready", work / "longpoll-out.json"
    creds_file.write_text(json.dumps(creds))
    for f in (ready_file, out_file):
        f.unlink(missing_ok=True)

    # The shipped web command (config/processes.py) with one worker: "waiters on one
    # web process" is the figure measured.
    web_cmd = shipped(PORT, web_workers=1)["web"]
    web_log = (work / "longpoll-web.log").open("wb")
    web = subprocess.Popen(web_cmd, cwd=ROOT, env=env, stdout=web_log, stderr=subprocess.STDOUT, start_new_session=True)
    client: subprocess.Popen[bytes] | None = None
    try:
        wait_http(f"http://127.0.0.1:{PORT}/healthz")
        if web.poll() is not None:
            raise RuntimeError(f"the web process exited; see {web_log.name}")
        idle = rss_kb(web.pid)
        client_cmd = [PY, __file__, "--client", "--port", str(PORT), "--waiters", str(args.waiters), "--creds", str(creds_file),
                      "--ready", str(ready_file), "--out", str(out_file),
                      "--streams-per-connection", str(args.streams_per_connection), "--ramp-rate", str(args.ramp_rate)]
        if args.http2:
            client_cmd.append("--http2")
        started = time.monotonic()
        client = subprocess.Popen(client_cmd, cwd=ROOT, env=env, start_new_session=True)
        while not ready_file.exists():
            if client.poll() is not None:
                raise RuntimeError("client process died")
            if time.monotonic() - started > args.ramp_timeout:
                raise RuntimeError(f"the waiters were not all sent within {args.ramp_timeout:.0f}s")
            time.sleep(0.1)
        ramp = time.monotonic() - started
        settle(web.pid, args.settle)
        waiting = rss_kb(web.pid)
        print(f"{ready_file.read_text()} waiters connected in {ramp:.1f}s over {connections} HTTP/{http}"
              f" connections; web RSS {waiting['VmRSS'] / 1024:.0f} MB", flush=True)
        web_cpu_before = group_cpu_seconds(web.pid)
        committed = inject(creds, args.gap_ms / 1000)
        client.wait(240)
        web_cpu_wakeups = group_cpu_seconds(web.pid) - web_cpu_before
        after = rss_kb(web.pid)
    finally:
        if client is not None:
            stop(client)
        stop(web)

    data = json.loads(out_file.read_text())
    lat_ms = [(received - committed[i]) * 1000 for i, received, status, got in data["results"] if status == 200 and got]
    failed = sum(1 for _, _, status, _ in data["results"] if status != 200)
    report = {
        "http": http,
        "instances": args.instances,
        "waiters": args.waiters,
        "waiters_requested": requested,
        "connections": connections,
        "streams_per_connection": args.streams_per_connection if args.http2 else 1,
        "ramp_rate_per_s": args.ramp_rate if args.http2 else None,
        "fd_limit": limit,
        "answered_with_notification": len(lat_ms),
        "non_200": failed,
        "client_errors": data["error_count"],
        "ramp_seconds": round(ramp, 2),
        "latency_ms": {
            "p50": round(pct(lat_ms, 50), 2),
            "p90": round(pct(lat_ms, 90), 2),
            "p99": round(pct(lat_ms, 99), 2),
            "max": round(max(lat_ms), 2) if lat_ms else None,
            "mean": round(statistics.fmean(lat_ms), 2) if lat_ms else None,
        },
        # CPU seconds while the waiters are woken (web: from the first injected message;
        # client: from its ready mark, the settle pause included) against the
        # injection's wall time: the client shares the machine, and a busy client
        # delays its own stamps.
        "cpu_s_during_wakeups": {"web": round(web_cpu_wakeups, 2), "client": round(data.get("cpu_s_after_ready", 0.0), 2),
                                 "injection_wall": round(len(creds) * args.gap_ms / 1000, 2)},
        "load_average_before": [round(x, 2) for x in load_before],
        "web_rss_mb": {
            "idle": round(idle["VmRSS"] / 1024, 1),
            "all_waiting": round(waiting["VmRSS"] / 1024, 1),
            "after": round(after["VmRSS"] / 1024, 1),
            "peak": round(after["VmHWM"] / 1024, 1),
        },
        "targets": {"waiters": 25_000, "p99_ms": 50, "rss_mb": 2048},
    }
    (work / "longpoll.json").write_text(json.dumps(report, indent=2))
    (work / "longpoll-committed.json").write_text(json.dumps(committed))
    print(json.dumps(report, indent=2))
    if data["errors"]:
        print("client errors (first):", data["errors"][:5])


if __name__ == "__main__":
    main()
