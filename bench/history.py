"""Benchmark: journal reads on a big history (getChatHistory, lastIncomingMessages).

  .venv/bin/python bench/history.py [--messages 1000000] [--chats 10000] [--requests 300]

What it does (PostgreSQL from DATABASE_URL's server, default this machine):
1. Creates a fresh database ``relay_bench_history`` and migrates it.
2. Seeds one authorized emulator instance with COPY: one chat of ``--messages``
   messages over two years (90 % engine journal, alternately received and sent from
   the phone; 10 % sent through the API), plus ``--chats`` other chats of 5 messages
   each over the last 30 days, with their ChatState rows; then ANALYZE. Journal rows
   carry the stored journal object ``ingest_event`` writes with every row
   (``journals.rendering.stored_form``, the same function).
3. Starts the shipped web command (config/processes.py: granian, default workers) (rate limits off) and measures, over HTTP with one
   keep-alive client, getChatHistory(count=100) of the big chat and
   lastIncomingMessages (default 24 h window): p50 / p99 in milliseconds.
4. Prints the figures and writes var/bench/history.json; stops what it started.

``--reuse`` skips 1.-2. and measures the database a previous run seeded (migrated
first; rows seeded before journal objects were stored are rendered on read, and the
run says how many there are in the window).

Only loopback traffic. Target: p99 <= 50 ms for both.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import shipped  # noqa: E402

PY = sys.executable
PORT = 8078
DB_NAME = "relay_bench_history"
BIG_CHAT = "79001234567@c.us"


def server_url() -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{DB_NAME}", "", ""))


def fresh_database(db_url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(db_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")


def env_for(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        # A deployment refuses the public built-in key (config/settings.py).
        SECRET_KEY=os.environ.get("SECRET_KEY") or "relay-bench-only-key-Wf3kP9sQ2vL7xN4cR8tY1zB6",
        DJANGO_SETTINGS_MODULE="config.settings",
        RATE_LIMITS_ENABLED="false",
        DB_POOL="true",
        DB_POOL_SIZE="4",
        LOG_LEVEL="WARNING",
        RELAY_VAR_DIR=str(ROOT / "var" / "bench"),
    )
    env.pop("REDIS_URL", None)
    return env


def new_id() -> str:
    return secrets.token_hex(16).upper()


def seed(db_url: str, messages: int, chats: int) -> tuple[int, str]:
    """Create the instance through the service, then COPY the history."""
    os.environ.update(env_for(db_url))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from engines.emulator import pairing  # needs Django set up: imported here
    from instances import services
    from instances.models import State
    from journals.rendering import JOURNAL_JSON_VERSION, stored_form
    from tests.factories import AccountFactory

    instance = services.create_instance(account=AccountFactory())
    pairing.link_phone(instance, phone="79000000001", name="Bench")
    services.change_state(instance, State.AUTHORIZED)
    instance.refresh_from_db()
    now = datetime.now(UTC)
    started = time.monotonic()
    raw = connection.connection
    if raw is None:
        connection.ensure_connection()
        raw = connection.connection
    journal_cols = (
        "instance_id, direction, chat_id, id_message, sender, sender_name, sender_contact_name, chat_name,"
        " type_message, message_data, timestamp, is_read, created_at, journal_json, journal_json_version"
    )
    api_cols = (
        "instance_id, id_message, chat_id, method, type_message, request, payload, is_file, status,"
        " description, idempotency_key, created_at, sent_at, delivered_at, read_at, attempts"
    )
    span = timedelta(days=730)

    def journal_row(
        copy: Any,
        *,
        direction: str,
        chat_id: str,
        sender: str,
        sender_name: str,
        chat_name: str,
        message_data: dict[str, Any],
        moment: datetime,
        is_read: bool,
    ) -> None:
        """One JournalMessage row as ingest_event writes it, stored object included."""
        id_message = new_id()
        stored = stored_form(
            direction=direction,
            moment=moment,
            id_message=id_message,
            type_message="textMessage",
            chat_id=chat_id,
            sender=sender,
            sender_name=sender_name,
            sender_contact_name="",
            message_data=message_data,
        )
        assert stored is not None
        copy.write_row(
            (
                instance.id, direction, chat_id, id_message, sender, sender_name, "", chat_name, "textMessage",
                json.dumps(message_data), moment, is_read, moment, stored, JOURNAL_JSON_VERSION,
            )
        )

    with raw.cursor() as cur:
        with cur.copy(f"COPY journals_journalmessage ({journal_cols}) FROM STDIN") as copy:
            for i in range(messages):
                if i % 10 == 9:
                    continue  # sent through the API: below
                moment = now - span + span * (i + 1) / messages
                incoming = i % 2 == 0
                message_data = {"typeMessage": "textMessage", "textMessageData": {"textMessage": f"Message {i}"}}
                journal_row(
                    copy,
                    direction="incoming" if incoming else "outgoing",
                    chat_id=BIG_CHAT,
                    sender=BIG_CHAT if incoming else instance.wid,
                    sender_name="John" if incoming else "",
                    chat_name="John",
                    message_data=message_data,
                    moment=moment,
                    is_read=True,
                )
            for c in range(chats):
                chat = f"7901{c:07d}@c.us"
                for j in range(5):
                    moment = now - timedelta(days=30) + timedelta(days=30) * ((c * 5 + j + 1) / (chats * 5))
                    journal_row(
                        copy,
                        direction="incoming",
                        chat_id=chat,
                        sender=chat,
                        sender_name=f"C{c}",
                        chat_name=f"C{c}",
                        message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": f"hi {j}"}},
                        moment=moment,
                        is_read=False,
                    )
        with cur.copy(f"COPY messaging_outgoingmessage ({api_cols}) FROM STDIN") as copy:
            for i in range(9, messages, 10):
                moment = now - span + span * (i + 1) / messages
                payload = json.dumps({"message": f"Message {i}"})
                request = json.dumps({"chatId": BIG_CHAT, "message": f"Message {i}"})
                copy.write_row(
                    (
                        instance.id,
                        "BAE5" + secrets.token_hex(6).upper(),
                        BIG_CHAT,
                        "sendMessage",
                        "textMessage",
                        request,
                        payload,
                        False,
                        "read",
                        "",
                        "",
                        moment,
                        moment,
                        moment,
                        moment,
                        1,
                    )
                )
        with cur.copy(
            "COPY journals_chatstate (instance_id, chat_id, name, archived, ephemeral_expiration, last_activity) FROM STDIN"
        ) as copy:
            copy.write_row((instance.id, BIG_CHAT, "John", False, 0, now))
            for c in range(chats):
                copy.write_row((instance.id, f"7901{c:07d}@c.us", f"C{c}", False, 0, now - timedelta(days=1)))
        cur.execute("ANALYZE")
    raw.commit()
    print(f"seeded {messages + chats * 5} messages in {time.monotonic() - started:.0f} s", flush=True)
    return instance.id, instance.api_token


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(client: Any, method: str, url: str, body: Any, requests: int) -> dict[str, float]:
    for _ in range(20):
        client.request(method, url, json=body)
    times = []
    size = 0
    for _ in range(requests):
        started = time.perf_counter()
        r = client.request(method, url, json=body)
        times.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, r.text
        answer = r.json()
        size = len(answer) if isinstance(answer, list) else 1
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(percentile(times, 0.99), 2),
        "items": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="measure the database seeded by a previous run")
    args = parser.parse_args()
    db_url = server_url()
    if args.reuse:
        import psycopg

        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env_for(db_url), check=True)
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT id, api_token FROM instances_instance LIMIT 1").fetchone()
            assert row is not None, "nothing seeded yet"
            id_instance, token = int(row[0]), str(row[1])
            found = conn.execute(
                "SELECT count(*) FROM journals_journalmessage WHERE journal_json_version = 0"
                " AND timestamp >= now() - interval '1 day'"
            ).fetchone()
        if found and found[0]:
            print(f"note: {found[0]} journal rows of the last day store no journal object (seeded by older code)")
    else:
        fresh_database(db_url)
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env_for(db_url), check=True)
        id_instance, token = seed(db_url, args.messages, args.chats)
    web = subprocess.Popen(
        shipped(PORT)["web"],  # the shipped web command (config/processes.py)
        cwd=ROOT,
        env=env_for(db_url),
        start_new_session=True,
    )
    try:
        import httpx

        base = f"http://127.0.0.1:{PORT}/waInstance{id_instance}"
        with httpx.Client(timeout=60) as client:
            deadline = time.time() + 60
            while True:
                try:
                    client.get(f"http://127.0.0.1:{PORT}/healthz")
                    break
                except httpx.TransportError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.3)
            results = {
                # The floor of this server on this machine now: auth + a tiny body.
                "getStateInstance (baseline)": {
                    **measure(client, "GET", f"{base}/getStateInstance/{token}", None, args.requests),
                    "items": 1,
                },
                "getChatHistory(count=100)": measure(
                    client, "POST", f"{base}/getChatHistory/{token}", {"chatId": BIG_CHAT, "count": 100}, args.requests
                ),
                "lastIncomingMessages": measure(
                    client, "GET", f"{base}/lastIncomingMessages/{token}", None, args.requests
                ),
            }
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
    out = ROOT / "var" / "bench" / "history.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"messages": args.messages, "chats": args.chats, "results": results}, indent=2))
    for name, figures in results.items():
        print(f"{name}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms ({figures['items']} items)")


if __name__ == "__main__":
    main()
