"""Benchmark: journal reads on a big history (getChatHistory, lastIncomingMessages).

  .venv/bin/python bench/history.py [--messages 1000000] [--chats 10000] [--requests 300]
      [--database relay_bench_history]

What it does (PostgreSQL from DATABASE_URL's server, default this machine):
1. Creates a fresh database ``relay_bench_history`` (``--database``) and migrates it.
2. Seeds one authorized emulator instance with COPY: one chat of ``--messages``
   messages over two years (90 % engine journal, alternately received and sent from
   the phone; 10 % sent through the API), plus ``--chats`` other chats of 5 messages
   each over the last 30 days, with their ChatState rows, into the tables without
   their secondary indexes and constraints, which are then re-created from
   PostgreSQL's own definitions (checked equal to the migrated schema); then ANALYZE.
   Journal rows carry the stored journal object ``ingest_event`` writes with every
   row (``journals.rendering.stored_form``, through a template held to it on a
   sample of rows).
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

from bench.common import free_port, shipped  # noqa: E402

PY = sys.executable
DB_NAME = "relay_bench_history"
BIG_CHAT = "79001234567@c.us"


def server_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def fresh_database(db_url: str) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(db_url)._replace(path="/postgres"))
    name = urlsplit(db_url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


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


SAMPLE_EVERY = 9_973  # rows checked against stored_form itself (a prime: every shape is hit)


class Renderer:
    """``journals.rendering.stored_form`` for text rows of one shape (direction,
    chat, sender), ~15 times cheaper: stored_form is called once with marker values
    and the markers are replaced per row. Seeding 10 million rows through
    stored_form itself cost ~60-230 µs a row (10-40 minutes); ``check`` holds
    the template to stored_form on a sample of rows, so a renderer change that the
    template does not follow fails the seeding instead of seeding wrong objects."""

    ID, TEXT, STAMP = "QQIDQQ", "QQTEXTQQ", 4_102_444_799  # 2099-12-31 23:59:59 UTC

    def __init__(self, **shape: str) -> None:
        from journals.rendering import stored_form

        self.shape = shape
        self.stored_form = stored_form
        template = stored_form(id_message=self.ID, moment=datetime.fromtimestamp(self.STAMP, UTC),
                               message_data=self.data(self.TEXT), **self.common())
        assert template is not None
        assert template.count(self.ID) == 1 and template.count(self.TEXT) == 1
        assert template.count(str(self.STAMP)) == 1
        # COPY's text format: these would need escaping, and the template has none.
        assert not any(ch in template for ch in "\\\t\n\r")
        head, _, rest = template.partition(str(self.STAMP))
        self.parts = (head, *rest.partition(self.ID)[::2])

    def common(self) -> dict[str, str]:
        return dict(type_message="textMessage", sender_contact_name="", **self.shape)

    @staticmethod
    def data(text: str) -> dict[str, Any]:
        return {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}}

    def __call__(self, id_message: str, moment: datetime, text: str) -> str:
        head, middle, tail = self.parts
        return f"{head}{int(moment.timestamp())}{middle}{id_message}{tail}".replace(self.TEXT, text)

    def check(self, id_message: str, moment: datetime, text: str, rendered: str) -> None:
        expected = self.stored_form(id_message=id_message, moment=moment, message_data=self.data(text), **self.common())
        if rendered != expected:
            raise SystemExit(f"seeding FAILED: the template renders {rendered!r}, stored_form {expected!r}")


def without_indexes(cur: Any, tables: tuple[str, ...]) -> list[str]:
    """Drop the secondary indexes, unique and foreign-key constraints of ``tables``
    and return the statements that re-create them (PostgreSQL's own definitions).
    COPY into bare tables, then one index build per index, is several times faster
    than maintaining five indexes row by row, and the foreign key no longer queues
    a deferred trigger event per row; the schema ends exactly as migrated (checked
    by ``schema_of``)."""
    restore = []
    cur.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f') ORDER BY contype DESC",
        [list(tables)],
    )
    for table, name, definition in cur.fetchall():
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    cur.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
        " WHERE indrelid = ANY(%s::regclass[]) AND NOT indisprimary",
        [list(tables)],
    )
    for name, definition in cur.fetchall():
        cur.execute(f"DROP INDEX {name}")
        restore.insert(0, definition)  # indexes first: the unique constraints build their own
    return restore


def schema_of(cur: Any, tables: tuple[str, ...]) -> list[tuple[str, ...]]:
    cur.execute(
        "SELECT 'c', conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = ANY(%s::regclass[])"
        " UNION ALL SELECT 'i', indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
        " WHERE indrelid = ANY(%s::regclass[]) ORDER BY 1, 2",
        [list(tables), list(tables)],
    )
    return [tuple(row) for row in cur.fetchall()]


def copy_line(*values: object) -> bytes:
    """One row of COPY's text format (values hold no tab, newline or backslash)."""
    return ("\t".join(str(v) for v in values) + "\n").encode()


def seed(db_url: str, messages: int, chats: int) -> tuple[int, str]:
    """Create the instance through the services, then COPY the history."""
    os.environ.update(env_for(db_url))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from engines.emulator import pairing  # needs Django set up: imported here
    from instances import services
    from instances.models import State
    from journals.rendering import JOURNAL_JSON_VERSION

    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    instance = services.create_instance(account=services.ensure_account(user))
    pairing.link_phone(instance, phone="79000000001", name="Bench")
    services.change_state(instance, State.AUTHORIZED)
    instance.refresh_from_db()
    now = datetime.now(UTC)
    started = time.monotonic()
    timings: dict[str, float] = {}
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    journal_cols = (
        "instance_id, direction, chat_id, id_message, sender, sender_name, sender_contact_name, chat_name,"
        " type_message, message_data, timestamp, is_read, created_at, journal_json, journal_json_version"
    )
    api_cols = (
        "instance_id, id_message, chat_id, method, type_message, request, payload, is_file, status,"
        " description, idempotency_key, created_at, sent_at, delivered_at, read_at, attempts"
    )
    span = timedelta(days=730)
    incoming = Renderer(direction="incoming", chat_id=BIG_CHAT, sender=BIG_CHAT, sender_name="John")
    outgoing = Renderer(direction="outgoing", chat_id=BIG_CHAT, sender=instance.wid, sender_name="")
    tables = ("journals_journalmessage", "messaging_outgoingmessage", "journals_chatstate")
    rows = 0

    def journal_line(renderer: Renderer, chat_name: str, moment: datetime, text: str, is_read: bool) -> bytes:
        """One JournalMessage row as ingest_event writes it, stored object included."""
        nonlocal rows
        id_message = new_id()
        stored = renderer(id_message, moment, text)
        if rows % SAMPLE_EVERY == 0:
            renderer.check(id_message, moment, text, stored)
        rows += 1
        shape = renderer.shape
        data = json.dumps(Renderer.data(text))
        return copy_line(
            instance.id, shape["direction"], shape["chat_id"], id_message, shape["sender"], shape["sender_name"],
            "", chat_name, "textMessage", data, moment.isoformat(), "t" if is_read else "f", moment.isoformat(),
            stored, JOURNAL_JSON_VERSION,
        )

    with raw.cursor() as cur:
        migrated = schema_of(cur, tables)
        # The seeding session's own memory for the index builds (not the product's
        # setting: the web process measured afterwards runs with the server's).
        cur.execute("SET maintenance_work_mem = '256MB'")
        restore = without_indexes(cur, tables)
        with cur.copy(f"COPY journals_journalmessage ({journal_cols}) FROM STDIN") as copy:
            for i in range(messages):
                if i % 10 == 9:
                    continue  # sent through the API: below
                moment = now - span + span * ((i + 1) / messages)
                renderer = incoming if i % 2 == 0 else outgoing
                copy.write(journal_line(renderer, "John", moment, f"Message {i}", True))
            for c in range(chats):
                chat = f"7901{c:07d}@c.us"
                small = Renderer(direction="incoming", chat_id=chat, sender=chat, sender_name=f"C{c}")
                for j in range(5):
                    moment = now - timedelta(days=30) + timedelta(days=30) * ((c * 5 + j + 1) / (chats * 5))
                    copy.write(journal_line(small, f"C{c}", moment, f"hi {j}", False))
        timings["journal_copy_s"] = time.monotonic() - started
        with cur.copy(f"COPY messaging_outgoingmessage ({api_cols}) FROM STDIN") as copy:
            for i in range(9, messages, 10):
                moment = now - span + span * ((i + 1) / messages)
                at = moment.isoformat()
                copy.write(copy_line(
                    instance.id, "BAE5" + secrets.token_hex(6).upper(), BIG_CHAT, "sendMessage", "textMessage",
                    json.dumps({"chatId": BIG_CHAT, "message": f"Message {i}"}),
                    json.dumps({"message": f"Message {i}"}), "f", "read", "", "", at, at, at, at, 1,
                ))
        with cur.copy(
            "COPY journals_chatstate (instance_id, chat_id, name, archived, ephemeral_expiration, last_activity) FROM STDIN"
        ) as copy:
            copy.write_row((instance.id, BIG_CHAT, "John", False, 0, now))
            for c in range(chats):
                copy.write_row((instance.id, f"7901{c:07d}@c.us", f"C{c}", False, 0, now - timedelta(days=1)))
        timings["copy_s"] = time.monotonic() - started
        for statement in restore:
            cur.execute(statement)
        timings["indexes_s"] = time.monotonic() - started - timings["copy_s"]
        if schema_of(cur, tables) != migrated:
            raise SystemExit("seeding FAILED: the indexes and constraints differ from the migrated schema")
        mark = time.monotonic()
        cur.execute(f"ANALYZE {', '.join(tables)}")
        timings["analyze_s"] = time.monotonic() - mark
    raw.commit()
    total = time.monotonic() - started
    print(f"seeded {messages + chats * 5} messages in {total:.0f} s: "
          + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()), flush=True)
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
    parser.add_argument("--database", default=DB_NAME, help="the bench's own PostgreSQL database (dropped and re-created)")
    args = parser.parse_args()
    db_url = server_url(args.database)
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
    port = free_port()
    web = subprocess.Popen(
        shipped(port)["web"],  # the shipped web command (config/processes.py)
        cwd=ROOT,
        env=env_for(db_url),
        start_new_session=True,
    )
    try:
        import httpx

        base = f"http://127.0.0.1:{port}/waInstance{id_instance}"
        with httpx.Client(timeout=60) as client:
            deadline = time.time() + 60
            while True:
                try:
                    client.get(f"http://127.0.0.1:{port}/healthz")
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
