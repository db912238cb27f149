"""The waweb process tree, with real processes: a session runner (``runsessions``)
starts one ``wa_session`` child per leased waweb account, each a real neonize client
dialling WhatsApp through a proxy on loopback that accepts and never answers (a
silent proxy: the dial hangs, as behind a dead network), or through a refused port
(the dial fails at once: an offline instance).

Checked: a child killed with -9 is started again and the other account's child is
untouched; a child whose session says connected but stays silent is stopped and
started again; children die with a runner killed with -9, and another runner resumes the
account; a child stuck dialling is killed once its runner loses the lease; an offline
instance answers GREEN-API's error shapes (never a 500) and its sends wait in the
queue. Waits are on conditions with generous timeouts; nothing asserts a duration."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

pytest.importorskip("neonize", reason="the waweb engine needs neonize (requirements-waweb.txt)")

from engines.models import CommandListener  # noqa: E402
from engines.waweb.models import WawebSession  # noqa: E402
from instances import services  # noqa: E402
from instances.models import Instance, SessionLease, State  # noqa: E402
from messaging.models import OutgoingMessage, OutgoingStatus  # noqa: E402
from tests.conftest import method_url  # noqa: E402
from tests.factories import make_instance  # noqa: E402
from tests.processes import running, start, stop, wait_for  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RUNNER = ["manage.py", "runsessions", "--tick", "0.2", "--ttl", "6"]


class SilentProxy:
    """A TCP server on loopback that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(50)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.accepted += 1

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent_proxy() -> Iterator[SilentProxy]:
    proxy = SilentProxy()
    yield proxy
    proxy.close()


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: connecting is refused


def waweb_instance(port: int) -> Instance:
    instance = make_instance(engine="waweb")
    services.update_settings(instance, {"proxyInstance": f"127.0.0.1:{port}:user:secret"})
    return instance


def child_pid(instance: Instance, *, other_than: int = 0) -> int:
    """The pid of the instance's live session process (it announces itself on the
    command channel), once it is not ``other_than``."""
    row = CommandListener.objects.filter(instance_id=instance.pk).values_list("pid", flat=True).first()
    return int(row) if row and row != other_than and alive(int(row)) else 0


def kill_session(instance: Instance) -> int:
    """SIGKILL the instance's live session process; returns its pid. A process that
    ended on its own just before (a dial that timed out) is looked up again."""
    for _ in range(5):
        pid = wait_for(lambda: child_pid(instance), timeout=90, what="the session process")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        return pid
    raise AssertionError("the session process kept ending before it could be killed")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


def test_a_killed_child_is_started_again_and_the_others_are_untouched(
    tmp_path: Path, silent_proxy: SilentProxy
) -> None:
    first, second = waweb_instance(silent_proxy.port), waweb_instance(silent_proxy.port)
    with running(RUNNER, tmp_path / "runner.log"):
        wait_for(lambda: child_pid(first), timeout=90, what="the first session process")
        wait_for(lambda: child_pid(second), timeout=90, what="the second session process")
        wait_for(lambda: silent_proxy.accepted >= 2, timeout=60, what="both sessions dialling")

        # The pids as they are now: on a loaded machine a dial through the silent
        # proxy can time out while the other session is still starting, and its
        # process is then replaced by the supervisor before we get here.
        pid_second = wait_for(lambda: child_pid(second), timeout=90, what="the second session process")
        restarts_second = WawebSession.objects.get(instance_id=second.pk).restarts
        pid_first = kill_session(first)

        respawned = wait_for(lambda: child_pid(first, other_than=pid_first), timeout=90, what="a new session")
        assert respawned != pid_first
        assert child_pid(second) == pid_second  # same process, still alive
        assert WawebSession.objects.get(instance_id=first.pk).restarts >= 1
        assert WawebSession.objects.get(instance_id=second.pk).restarts == restarts_second


def test_children_die_with_a_killed_runner_and_another_runner_resumes(
    tmp_path: Path, silent_proxy: SilentProxy
) -> None:
    instance = waweb_instance(silent_proxy.port)
    runner = start(RUNNER, tmp_path / "first.log")
    try:
        pid = wait_for(lambda: child_pid(instance), timeout=90, what="the session process")
        epoch = SessionLease.objects.get(instance_id=instance.pk).epoch

        os.kill(runner.pid, signal.SIGKILL)  # the runner only, not its process group
        killed_at = time.monotonic()
        wait_for(lambda: not alive(pid), timeout=30, interval=0.02, what="the orphaned child to die")
        print(f"child died {time.monotonic() - killed_at:.2f} s after its runner")  # noqa: T201 - a figure for the docs
    finally:
        stop(runner, signal.SIGKILL)
    with running(RUNNER, tmp_path / "second.log"):
        wait_for(
            lambda: (
                child_pid(instance) and CommandListener.objects.get(instance_id=instance.pk).epoch > epoch
            ),
            timeout=90,
            what="another runner's session at a new epoch",
        )


def test_a_child_stuck_dialling_is_killed_when_its_runner_loses_the_lease(
    tmp_path: Path, silent_proxy: SilentProxy
) -> None:
    instance = waweb_instance(silent_proxy.port)
    with running(RUNNER, tmp_path / "runner.log"):
        pid = wait_for(lambda: child_pid(instance), timeout=90, what="the session process")
        wait_for(lambda: silent_proxy.accepted >= 1, timeout=60, what="the session dialling")
        lease = SessionLease.objects.get(instance_id=instance.pk)

        # Another runner took the lease (as after a partition): a higher epoch.
        SessionLease.objects.filter(instance_id=instance.pk).update(
            runner_id="another-runner",
            epoch=lease.epoch + 1,
            expires_at=timezone.now() + timedelta(minutes=10),
        )

        wait_for(lambda: not alive(pid), timeout=30, interval=0.05, what="the stuck child to be stopped")
        assert not child_pid(instance)


def test_a_child_that_says_connected_but_stays_silent_is_restarted(
    tmp_path: Path, silent_proxy: SilentProxy
) -> None:
    instance = waweb_instance(silent_proxy.port)
    with running(RUNNER, tmp_path / "runner.log"):
        pid = wait_for(lambda: child_pid(instance), timeout=90, what="the session process")
        hour_ago = timezone.now() - timedelta(hours=1)

        def restarted_for_silence() -> WawebSession | None:
            stored = WawebSession.objects.get(instance_id=instance.pk)
            if stored.silent_restarts:
                return stored
            # The live session says it is connected and has proven no traffic for
            # an hour: what a session whose events stopped looks like. (Marked
            # again after a start, which clears it, or a dial that timed out.)
            WawebSession.objects.filter(instance_id=instance.pk).update(
                connected=True, connected_at=hour_ago, alive_at=hour_ago, last_event_at=hour_ago
            )
            return None

        stored = wait_for(restarted_for_silence, timeout=90, interval=0.2, what="a restart for silence")
        assert stored.silent_restarts == 1
        assert stored.restarts >= 1
        assert stored.last_error.startswith("silent for 36")  # an hour and the seconds since
        assert not stored.connected
        respawned = wait_for(lambda: child_pid(instance, other_than=pid), timeout=90, what="a new session")
        assert respawned != pid
        assert not alive(pid)


def test_an_offline_instance_answers_honestly_and_keeps_sends_queued(
    tmp_path: Path, api_client: APIClient
) -> None:
    instance = waweb_instance(refused_port())
    with running(RUNNER, tmp_path / "runner.log"):
        wait_for(
            lambda: (
                WawebSession.objects.filter(instance_id=instance.pk, restarts__gte=1)
                .exclude(last_error="")
                .first()
            ),
            timeout=90,
            what="the session to fail to dial",
        )
        reason = WawebSession.objects.get(instance_id=instance.pk).last_error

        qr = api_client.get(method_url(instance, "qr"))
        assert qr.status_code == 200
        assert qr.json()["type"] == "error"
        assert "no QR code yet" in qr.json()["message"]
        assert reason[:40] in qr.json()["message"]

        assert api_client.get(method_url(instance, "getStateInstance")).json() == {
            "stateInstance": "notAuthorized"
        }
        sent = api_client.post(
            method_url(instance, "sendMessage"),
            {"chatId": "79001234567@c.us", "message": "hi"},
            format="json",
        )
        assert sent.status_code == 200
        id_message = sent.json()["idMessage"]

        code = api_client.post(
            method_url(instance, "getAuthorizationCode"), {"phoneNumber": 79001234567}, format="json"
        )
        assert code.status_code in (400, 503)
        assert set(code.json()) == {"statusCode", "timestamp", "path", "message"}

    row = OutgoingMessage.objects.get(instance=instance, id_message=id_message)
    assert row.status == OutgoingStatus.QUEUED
    instance.refresh_from_db()
    assert instance.state == State.NOT_AUTHORIZED
