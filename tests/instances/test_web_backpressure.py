"""The shipped web command keeps answering while more long polls wait than granian's
default backpressure admits (its listen backlog / workers: 1 024 with one worker).

Before ``--backpressure`` was set, the 1 025th concurrent request (a sendMessage as
much as a long poll) waited until some receiveNotification ended: up to its
receiveTimeout, 60 s. Every wait here is on a condition, with a deadline far longer
than a working server needs."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import processes
from instances.models import Account
from tests.factories import make_instance
from tests.processes import ROOT, process_env, stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("transactional_db")]

WAITERS = 1100  # more than granian's default of 1 024 for one worker
INSTANCES = 20
START = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def web(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    argv = processes.commands(port=str(port), web_workers="1", python=sys.executable)["web"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=process_env(), stdout=(tmp_path / "web.log").open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: _answers(port, "/healthz"), timeout=START, what="the web process to answer")
        yield port
    finally:
        stop(proc)


def _answers(port: int, path: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


async def _request(port: int, path: str, sent: list[int] | None = None) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    if sent is not None:
        sent[0] += 1
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data.partition(b"\r\n\r\n")[2]


async def _while_waiting(port: int, polls: list[str], state: str) -> tuple[int, bytes, int]:
    """Open WAITERS long polls, then ask getStateInstance: its answer must come while
    every long poll is still waiting (none of them can end before receiveTimeout)."""
    sent = [0]
    waiters = [asyncio.create_task(_request(port, polls[n % len(polls)], sent)) for n in range(WAITERS)]
    # Every long poll is written before the probe connects: the probe queues behind
    # them, so without room for all of them it waits for one to end.
    async with asyncio.timeout(START):
        while sent[0] < WAITERS:
            await asyncio.sleep(0.05)
    status, body = await asyncio.wait_for(_request(port, state), timeout=45)
    still_waiting = sum(1 for task in waiters if not task.done())
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    return status, body, still_waiting


def test_requests_are_served_while_more_long_polls_wait_than_the_default_admits(
    web: int, account: Account
) -> None:
    # Spread over instances: one instance's receiveNotification rate limit would
    # answer some of them at once (429) and free their slots.
    instances = [make_instance(account, authorized=True) for _ in range(INSTANCES)]
    polls = [f"/waInstance{i.pk}/receiveNotification/{i.api_token}?receiveTimeout=60" for i in instances]
    state = f"/waInstance{instances[0].pk}/getStateInstance/{instances[0].api_token}"
    status, body, still_waiting = asyncio.run(_while_waiting(web, polls, state))
    assert status == 200
    assert json.loads(body) == {"stateInstance": "authorized"}
    # The answer came while the long polls held their slots (none had timed out).
    assert still_waiting == WAITERS
