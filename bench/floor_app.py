"""The floor for the sendMessage hot path: the strongest raw implementation of the
same durable accept. A raw ASGI app, no framework, one statement per request: an
``INSERT … SELECT`` into our outgoing-message table (same indexes) whose SELECT checks
the token, so a wrong token inserts nothing and answers 401. Pool: psycopg's, sized
like the fast lane's (FLOOR_POOL_SIZE = RELAY_FASTLANE_POOL_SIZE).

Run under the same server command and worker count as Relay (bench/send_throughput.py).
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from psycopg_pool import AsyncConnectionPool

DSN = os.environ["FLOOR_DSN"]
pool: AsyncConnectionPool | None = None

INSERT = (
    "INSERT INTO messaging_outgoingmessage (instance_id, id_message, chat_id, method, type_message,"
    " request, payload, is_file, status, description, idempotency_key, created_at, attempts)"
    " SELECT id, %s, %s, 'sendMessage', 'textMessage', %s, %s, false, 'queued', '', '', now(), 0"
    " FROM instances_instance WHERE id = %s AND api_token = %s RETURNING id"
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                size = int(os.environ.get("FLOOR_POOL_SIZE", "8"))
                pool = AsyncConnectionPool(DSN, min_size=size, max_size=size, open=False, kwargs={"autocommit": True})
                await pool.open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if pool is not None:
                    await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    parts = scope["path"].split("/")  # ['', 'waInstance123', 'sendMessage', 'token']
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    data = json.loads(body)
    instance_id = int(parts[1][len("waInstance"):])
    assert pool is not None
    id_message = "BAE5" + secrets.token_hex(6).upper()
    echo = json.dumps(data)
    async with pool.connection() as conn:
        cursor = await conn.execute(INSERT, (id_message, data["chatId"], echo, echo, instance_id, parts[3]))
        row = await cursor.fetchone()
    if row is None:
        await _respond(send, 401, b'{"code":401,"description":"Unauthorized"}')
        return
    await _respond(send, 200, json.dumps({"idMessage": id_message}).encode())


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
