"""Redis killed (-9) and restarted while clients long-poll and webhooks are delivered:
nothing is lost, nothing is received twice.

Everything that talks to Redis runs as a real process against a private
``redis-server`` on a free port (the shared Redis is never touched): the web server
(uvicorn, the receiveNotification edge), a Celery worker with beat, and injectors
that commit notifications through ``ingest_event``. The test process only reads the
database, long-polls over HTTP and runs the webhook receiver.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.db import connection

from instances.models import Instance
from journals.models import Notification, NotificationState
from tests.conftest import _free_port
from tests.factories import make_instance
from tests.journals.test_webhooks import Receiver, receipt_of
from tests.processes import celery_worker_args, running, start, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RECEIVE_TIMEOUT = 20  # seconds a long-poll waits; a lost wake-up costs at most this
# Commits one incoming message per instance per round, through the real service.
INJECT = """
import os
from django.utils import timezone
from instances.models import Instance
from engines.events import MessageEvent
from journals.services import ingest_event

ids = [int(i) for i in os.environ["INJECT_IDS"].split(",")]
instances = list(Instance.objects.filter(pk__in=ids).order_by("pk"))
tag = os.environ["INJECT_TAG"]
for n in range(int(os.environ["INJECT_ROUNDS"])):
    for instance in instances:
        ingest_event(instance, MessageEvent(
            direction="incoming", chat_id="79001234567@c.us", id_message=f"{tag}{n:04d}",
            sender="79001234567@c.us", sender_name="R", timestamp=timezone.now(),
            message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": f"{tag} {n}"}},
        ))
"""


class RedisServer:
    """A private, non-persistent redis-server that can be killed and brought back on
    the same port."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, timeout=10, interval=0.05, what="redis-server to start")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # -9: no shutdown, every queued task and mark is gone
            self.proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (the receiveNotification edge and real worker processes)")
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Poller(threading.Thread):
    """A client long-polling receiveNotification and deleting what it gets, as a
    GREEN-API SDK does. Errors while Redis is away are retried."""

    def __init__(self, base_url: str, instance: Instance) -> None:
        super().__init__(daemon=True)
        self.receive = f"{base_url}/waInstance{instance.id}/receiveNotification/{instance.api_token}"
        self.delete_url = f"{base_url}/waInstance{instance.id}/deleteNotification/{instance.api_token}/"
        self.received: list[int] = []  # receiptIds, in the order they were handed out
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=RECEIVE_TIMEOUT + 20) as client:
            while not self.stopping.is_set():
                try:
                    r = client.get(self.receive, params={"receiveTimeout": RECEIVE_TIMEOUT})
                    if r.status_code != 200:
                        raise RuntimeError(f"receiveNotification: HTTP {r.status_code}")
                    note = r.json()
                except (httpx.HTTPError, RuntimeError, ValueError) as exc:
                    self.errors.append(str(exc))
                    time.sleep(0.2)
                    continue
                if note is None:
                    continue
                receipt = int(note["receiptId"])
                self.received.append(receipt)
                self.delete_notification(client, receipt)

    def delete_notification(self, client: httpx.Client, receipt: int) -> None:
        while not self.stopping.is_set():
            try:
                r = client.delete(f"{self.delete_url}{receipt}")
                if r.status_code == 200:
                    return
                self.errors.append(f"deleteNotification: HTTP {r.status_code}")
            except httpx.HTTPError as exc:
                self.errors.append(str(exc))
            time.sleep(0.2)


def receipts(instances: list[Instance]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {i.id: [] for i in instances}
    for instance_id, receipt in Notification.objects.filter(instance__in=instances).order_by(
        "instance_id", "receipt_id"
    ).values_list("instance_id", "receipt_id"):
        out[instance_id].append(receipt)
    return out


def test_redis_killed_and_restarted_loses_nothing(redis_server: RedisServer, tmp_path: Path) -> None:
    receiver = Receiver()
    queue = f"test-{uuid.uuid4().hex[:10]}"
    env = {
        "REDIS_URL": redis_server.url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
        "WEBHOOK_RETRY_SCHEDULE": "0.5,1",
        "WEBHOOK_RETRY_JITTER": "0",
        "WEBHOOK_RECOVER_INTERVAL_SECONDS": "1",
    }
    polled = [make_instance(authorized=True) for _ in range(3)]
    hooked = [make_instance(authorized=True) for _ in range(3)]
    for instance in polled + hooked:
        instance.settings["incomingWebhook"] = True
        if instance in hooked:
            instance.settings["webhookUrl"] = receiver.url
        instance.save(update_fields=["settings"])
    ids = ",".join(str(i.id) for i in polled + hooked)

    def inject(tag: str, rounds: int) -> subprocess.Popen[bytes]:
        return start(["manage.py", "shell", "-c", INJECT], tmp_path / f"inject-{tag}.log",
                     INJECT_IDS=ids, INJECT_TAG=tag, INJECT_ROUNDS=str(rounds), **env)

    def done(proc: subprocess.Popen[bytes]) -> None:
        assert proc.wait(timeout=60) == 0, f"an injector failed: see {tmp_path}/inject-*.log"

    port = _free_port()
    web_args = ["-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                "--lifespan", "off", "--log-level", "warning", "--timeout-graceful-shutdown", "1"]
    pollers = [Poller(f"http://127.0.0.1:{port}", instance) for instance in polled]
    worker_args = celery_worker_args(queue, schedule=tmp_path / "beat-schedule", concurrency=4)
    try:
        with running(web_args, tmp_path / "web.log", **env), running(
            worker_args, tmp_path / "worker.log", **env
        ) as worker:
            wait_for(lambda: _answers(port), timeout=30, what="the web server")
            for poller in pollers:
                poller.start()
            first = inject("a", 4)
            # Mid-stream: as soon as the first notifications are through, Redis dies;
            # the rest of this injection is committed while it is down (every
            # wake-up, webhook task and pending mark of that time is lost).
            wait_for(lambda: len(receiver.ok()) >= 3 and sum(len(p.received) for p in pollers) >= 3,
                     timeout=30, what=f"the first deliveries (log: {tmp_path})")
            receiver.delay = 0.3  # deliveries in flight (unacked tasks) when Redis dies
            redis_server.kill()
            done(first)
            receiver.delay = 0.0
            redis_server.start()  # same port, empty
            done(inject("b", 3))
            injected = time.monotonic()
            expected = receipts(polled + hooked)
            assert all(len(r) == 7 for r in expected.values()), expected

            def everything_arrived() -> bool:
                got = {p.receive: sorted(p.received) for p in pollers}
                polled_ok = all(got[p.receive] == expected[i.id] for p, i in zip(pollers, polled, strict=True))
                hooked_ok = all(
                    sorted({receipt_of(r) for r in receiver.ok() if r.webhook_id.startswith(f"{i.id}-")})
                    == expected[i.id]
                    for i in hooked
                )
                return polled_ok and hooked_ok

            try:
                wait_for(everything_arrived, timeout=45, interval=0.2, what="every notification after the restart")
            except AssertionError as exc:
                hooks = sorted(r.webhook_id for r in receiver.ok())
                polls = {p.receive.split("/")[3]: sorted(p.received) for p in pollers}
                raise AssertionError(f"{exc}: expected {expected}, long-polled {polls}, webhooks {hooks}") from None
            # Nobody waited out a receiveTimeout: waiters polled while Redis was away
            # and were woken when the subscription came back.
            # The worker lived through it (kombu used to crash it, and runstack with it,
            # when the broker vanished while it held unacked messages).
            assert worker.poll() is None, f"the worker died: see {tmp_path}/worker.log"
            took = time.monotonic() - injected
            print(f"everything arrived {took:.1f}s after the last commit")
            assert took < RECEIVE_TIMEOUT - 5, took
    finally:
        for poller in pollers:
            poller.stopping.set()
        receiver.stop()
    for poller, instance in zip(pollers, polled, strict=True):
        # Each receiptId handed out once, in order (deleted before the next receive).
        assert poller.received == expected[instance.id], (poller.received, poller.errors[-5:])
    for instance in hooked:
        got = [receipt_of(r) for r in receiver.ok() if r.webhook_id.startswith(f"{instance.id}-")]
        assert got == expected[instance.id]  # every one, in order, none twice
    assert not Notification.objects.filter(instance__in=hooked).exclude(state=NotificationState.DONE).exists()


def _answers(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    except httpx.HTTPError:
        return False
    return True

