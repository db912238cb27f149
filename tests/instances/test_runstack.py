"""``manage.py runstack`` (``make run``) as a supervisor, with real processes.

A child killed with SIGKILL is restarted while the web server keeps answering; beat
runs once (a second ``runbeat`` only stands by); Ctrl-C stops every child; a killed
supervisor leaves no orphan behind. Every wait is on a condition, with a deadline."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import processes
from tests.processes import ROOT, process_env, stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("transactional_db")]

START = 120.0  # four Django processes starting on a loaded 2-core CI machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except OSError:
        return False


class Stack:
    def __init__(self, log: Path, port: int) -> None:
        self.log, self.port = log, port
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runstack", "--port", str(port), "--web-workers", "1",
             "--backoff-initial", "0.2"],
            cwd=ROOT, env=process_env(), stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self, kind: str) -> list[int]:
        return [int(p) for p in re.findall(rf"^started {kind} \(pid (\d+)\)", self.text(), re.M)]

    def up(self) -> None:
        wait_for(lambda: "Relay is up" in self.text(), START, 0.2, "the stack's banner")
        wait_for(lambda: "beat lock taken" in self.text(), START, 0.2, "beat to take its lock")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path / "runstack.log", free_port())
    try:
        s.up()
        yield s
    finally:
        stop(s.proc, signal.SIGINT, timeout=30)
        for kind in processes.KINDS:  # never leave a child behind, even after a failure
            for pid in s.pids(kind):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_runstack_starts_exactly_the_shipped_commands(stack: Stack) -> None:
    expected = processes.commands(port=str(stack.port), web_workers="1", python=sys.executable)
    for kind, argv in expected.items():
        (pid,) = stack.pids(kind)
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            assert cmdline.read().rstrip(b"\0").split(b"\0") == [a.encode() for a in argv], kind


def test_a_dead_child_is_restarted_while_the_others_keep_serving(stack: Stack) -> None:
    (worker,) = stack.pids("worker")
    (web,) = stack.pids("web")
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: len(stack.pids("worker")) == 2, 30, 0.1, "the worker to be started again")
    assert f"worker (pid {worker}) exited with -9" in stack.text()
    assert alive(stack.pids("worker")[1])
    assert stack.pids("web") == [web] and healthy(stack.port)
    assert stack.proc.poll() is None

    # The restarted worker does work: it consumes a broker round trip (celery ping).
    def pong() -> bool:
        out = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "config", "inspect", "ping", "--timeout", "3"],
            cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=60, check=False,
        )
        return "pong" in out.stdout

    wait_for(pong, 90, 1.0, "the restarted worker to answer a ping")


def test_beat_never_runs_twice(stack: Stack, tmp_path: Path) -> None:
    check = [sys.executable, "manage.py", "runbeat", "--check"]
    assert subprocess.run(check, cwd=ROOT, env=process_env(), timeout=60, check=False).returncode == 0
    second_log = tmp_path / "second-beat.log"
    second = subprocess.Popen(
        [sys.executable, "manage.py", "runbeat", "--retry-seconds", "0.2"], cwd=ROOT, env=process_env(),
        stdout=second_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for(lambda: "standing by" in second_log.read_text(), 60, 0.1, "the second beat to stand by")
        # The supervisor's beat dies: the standby may take over, or the restarted one;
        # either way exactly one of them holds the lock at a time.
        (beat,) = stack.pids("beat")
        os.kill(beat, signal.SIGKILL)
        wait_for(lambda: len(stack.pids("beat")) == 2, 30, 0.1, "beat to be started again")
        wait_for(
            lambda: "beat lock taken" in second_log.read_text() or stack.text().count("beat lock taken") == 2,
            60, 0.1, "a beat to take over the lock",
        )
        holders = int("beat lock taken" in second_log.read_text()) + stack.text().count("beat lock taken") - 1
        assert holders == 1
    finally:
        stop(second)


def test_ctrl_c_stops_every_child(stack: Stack) -> None:
    children = [pid for kind in processes.KINDS for pid in stack.pids(kind)]
    assert all(alive(pid) for pid in children)
    os.kill(stack.proc.pid, signal.SIGINT)
    stack.proc.wait(timeout=60)
    wait_for(lambda: not any(alive(pid) for pid in children), 30, 0.1, "every child to exit")


def test_a_killed_supervisor_leaves_no_orphan(stack: Stack) -> None:
    children = [pid for kind in processes.KINDS for pid in stack.pids(kind)]
    os.kill(stack.proc.pid, signal.SIGKILL)
    stack.proc.wait(timeout=10)
    wait_for(lambda: not any(alive(pid) for pid in children), 60, 0.1, "every orphaned child to exit")
