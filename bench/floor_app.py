"""The floor for the sendMessage hot path: a raw ASGI app doing exactly one token
SELECT and one INSERT into our outgoing-message table (same indexes), no framework.

Run under the same server as Relay (uvicorn); bench/send_throughput.py compares.
"""

from __future__ import annotations

import hmac
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
    " VALUES (%s, %s, %s, 'sendMessage', 'textMessage', %s, %s, false, 'queued', '', '', now(), 0)"
)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                pool = AsyncConnectionPool(
                    DSN, min_size=10, max_size=10, open=False, kwargs={"autocommit": True, "prepare_threshold": 0}
                )
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
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT api_token FROM instances_instance WHERE id = %s", (instance_id,))).fetchone()
        if row is None or not hmac.compare_digest(row[0], parts[3]):
            await _respond(send, 401, b'{"code":401,"description":"Unauthorized"}')
            return
        id_message = "BAE5" + secrets.token_hex(6).upper()
        echo = json.dumps(data)
        await conn.execute(INSERT, (instance_id, id_message, data["chatId"], echo, echo))
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
