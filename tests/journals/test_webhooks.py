"""Webhook delivery (journals.webhooks), driven directly against a real HTTP receiver
on 127.0.0.1. Integration with real Celery workers: test_webhooks_integration.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from engines.events import MessageEvent
from instances import coalesce
from instances.models import Instance
from journals import services, tasks, webhooks
from journals.models import Notification, NotificationState, WebhookAttempt
from journals.services import ingest_event
from tests.factories import make_instance
from tests.processes import private_broker_queue

LOOPBACK = ["127.0.0.1/32"]


# --- A real receiver --------------------------------------------------------------------


class Received:
    def __init__(self, path: str, headers: dict[str, str], body: bytes, status: int) -> None:
        self.path = path
        self.headers = headers
        self.body = body
        self.status = status

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["X-Webhook-Id"]


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout tests) is expected


class Receiver:
    """A threaded HTTP server on loopback that records every request.

    ``status`` is what it answers (settable while running); ``delay`` makes it slow;
    ``stop()``/``start()`` take it off the network and back on the same port."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.delay = 0.0
        self.body = b'{"ok":true}'
        self.location = ""
        self._lock = threading.Lock()
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.status
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body, status))
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def ok(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(autouse=True)
def _loopback_allowed(settings: Any) -> None:
    """The receiver lives on loopback: open exactly that, as an operator would."""
    settings.WEBHOOK_ALLOW_PRIVATE = False
    settings.WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    settings.WEBHOOK_RETRY_JITTER = 0.2
    settings.WEBHOOK_RETRY_SCHEDULE = [5.0, 15.0, 60.0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Helpers ---------------------------------------------------------------------------


def incoming(text: str, id_message: str) -> MessageEvent:
    return MessageEvent(
        direction="incoming",
        chat_id="79001234567@c.us",
        id_message=id_message,
        sender="79001234567@c.us",
        sender_name="Иван",
        chat_name="Иван",
        sender_contact_name="Иван Петров",
        message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": text}},
        timestamp=timezone.now(),
    )


def webhook_instance(url: str, token: str = "") -> Instance:
    instance = make_instance(authorized=True)
    instance.settings.update({"incomingWebhook": True, "webhookUrl": url, "webhookUrlToken": token})
    instance.save(update_fields=["settings"])
    return instance


def ingest(instance: Instance, count: int, prefix: str = "m") -> list[Notification]:
    out = []
    for n in range(count):
        notification = ingest_event(instance, incoming(f"{prefix}{n} привет", f"{prefix.upper()}{n:04d}"))
        assert notification is not None
        out.append(notification)
    return out


def make_due(instance: Instance) -> None:
    Notification.objects.filter(instance=instance, state=NotificationState.QUEUED).exclude(
        next_attempt_at=None
    ).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def states(instance: Instance) -> list[str]:
    return list(
        Notification.objects.filter(instance=instance).order_by("receipt_id").values_list("state", flat=True)
    )


def receipt_of(r: Received) -> int:
    return int(r.webhook_id.rsplit("-", 1)[1])


# --- Bodies and headers -------------------------------------------------------------------


def test_body_and_headers_as_the_receiver_gets_them(db: None, receiver: Receiver) -> None:
    instance = webhook_instance(receiver.url, token="s3cret-token")
    notifications = ingest(instance, 2)
    before = int(time.time())
    assert webhooks.deliver(instance.id) is None
    got = receiver.ok()
    assert len(got) == 2
    for received, notification in zip(got, notifications, strict=True):
        assert received.path == "/hook"
        assert received.json == notification.body  # exactly the stored body
        assert "привет" in received.body.decode("utf-8")  # UTF-8, not \\u escapes
        assert received.headers["Content-Type"] == "application/json; charset=utf-8"
        assert received.headers["Authorization"] == "Bearer s3cret-token"
        assert received.headers["X-Webhook-Id"] == f"{instance.id}-{notification.receipt_id}"
        timestamp = int(received.headers["X-Webhook-Timestamp"])
        assert before - 1 <= timestamp <= int(time.time()) + 1
        expected = hmac.new(
            instance.webhook_secret.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(received.headers["X-Webhook-Signature"], f"sha256={expected}")
        assert received.headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert states(instance) == ["done", "done"]
    attempts = list(WebhookAttempt.objects.filter(instance=instance).order_by("id"))
    assert [(a.receipt_id, a.attempt, a.ok, a.status_code) for a in attempts] == [
        (notifications[0].receipt_id, 1, True, 200),
        (notifications[1].receipt_id, 1, True, 200),
    ]
    assert attempts[0].url == receiver.url
    assert attempts[0].response_excerpt == '{"ok":true}'
    assert attempts[0].error == ""


def test_a_delivery_run_costs_a_fixed_number_of_queries(db: None, receiver: Receiver) -> None:
    """The target, the rows with their bodies, the head's claim, then one commit that
    moves the batch and logs its attempts: five statements whether the run posts one
    notification or many (bodies used to be a second read after the claim)."""
    instance = webhook_instance(receiver.url)
    counts = []
    for size in (1, 8):
        ingest(instance, size, prefix=f"q{size}")
        with CaptureQueriesContext(connection) as captured:
            assert webhooks.deliver(instance.id) is None
        counts.append(len([q for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]))
    assert len(receiver.ok()) == 9
    assert counts[0] == counts[1] <= 5, counts


def test_a_tampered_body_does_not_verify(db: None, receiver: Receiver) -> None:
    instance = webhook_instance(receiver.url)
    ingest(instance, 1)
    webhooks.deliver(instance.id)
    [received] = receiver.ok()
    timestamp = received.headers["X-Webhook-Timestamp"]
    forged = hmac.new(
        instance.webhook_secret.encode(), f"{timestamp}.".encode() + received.body + b" ", hashlib.sha256
    )
    assert received.headers["X-Webhook-Signature"] != f"sha256={forged.hexdigest()}"
    assert "Authorization" not in received.headers  # no webhookUrlToken, no header


def test_raw_authorization_scheme(db: None, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_AUTH_SCHEME = "raw"
    instance = webhook_instance(receiver.url, token="Basic dXNlcjpwdw==")
    ingest(instance, 1)
    webhooks.deliver(instance.id)
    assert receiver.ok()[0].headers["Authorization"] == "Basic dXNlcjpwdw=="


# --- Failures, order, retries -------------------------------------------------------------


def test_receiver_down_then_back_delivers_every_notification_in_order_once(
    db: None, receiver: Receiver
) -> None:
    instance = webhook_instance(receiver.url)
    notifications = ingest(instance, 5)
    receipts = [n.receipt_id for n in notifications]

    receiver.status = 503
    started = timezone.now()
    wait = webhooks.deliver(instance.id)
    assert wait is not None and 4.0 <= wait <= 6.0  # first retry: 5 s ± 20 %
    assert [receipt_of(r) for r in receiver.all()] == [receipts[0]]  # head-of-line: only the head
    head = Notification.objects.get(pk=notifications[0].pk)
    assert head.state == "queued" and head.attempts == 1
    assert head.next_attempt_at is not None
    assert started + timedelta(seconds=4) <= head.next_attempt_at <= timezone.now() + timedelta(seconds=6)

    # Not due yet: a wake-up now sends nothing.
    assert webhooks.deliver(instance.id) is None
    assert len(receiver.all()) == 1

    make_due(instance)
    wait = webhooks.deliver(instance.id)
    assert wait is not None and 12.0 <= wait <= 18.0  # second retry: 15 s ± 20 %

    receiver.stop()  # off the network: connection refused
    make_due(instance)
    assert webhooks.deliver(instance.id) is not None
    refused = WebhookAttempt.objects.filter(instance=instance).order_by("-id").first()
    assert refused is not None and refused.status_code is None and refused.error and not refused.ok
    assert refused.attempt == 3

    receiver.status = 200
    receiver.start()
    make_due(instance)
    assert webhooks.deliver(instance.id) is None
    assert [receipt_of(r) for r in receiver.ok()] == receipts  # in order, none twice
    assert states(instance) == ["done"] * 5
    log = list(
        WebhookAttempt.objects.filter(instance=instance)
        .order_by("id")
        .values_list("receipt_id", "attempt", "status_code")
    )
    assert log == [
        (receipts[0], 1, 503),
        (receipts[0], 2, 503),
        (receipts[0], 3, None),
        (receipts[0], 4, 200),
        *[(r, 1, 200) for r in receipts[1:]],
    ]


def test_retry_delay_follows_the_schedule_with_jitter(settings: Any) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = [5.0, 15.0, 60.0]
    settings.WEBHOOK_RETRY_JITTER = 0.2
    for attempt, base in [(1, 5), (2, 15), (3, 60), (4, 60), (50, 60)]:
        delays = [webhooks.retry_delay(attempt) for _ in range(200)]
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
        assert max(delays) - min(delays) > base * 0.1  # jitter is there
    settings.WEBHOOK_RETRY_JITTER = 0
    assert webhooks.retry_delay(2) == 15.0


def test_server_error_body_excerpt_is_capped_at_1_kb(db: None, receiver: Receiver) -> None:
    receiver.status = 500
    receiver.body = b"x" * 5000
    instance = webhook_instance(receiver.url)
    ingest(instance, 1)
    webhooks.deliver(instance.id)
    attempt = WebhookAttempt.objects.get(instance=instance)
    assert attempt.status_code == 500 and not attempt.ok and attempt.error == "HTTP 500"
    assert attempt.response_excerpt == "x" * 1024


def test_redirect_is_a_failure_and_is_not_followed(db: None, receiver: Receiver) -> None:
    receiver.status = 302
    receiver.location = "/elsewhere"
    instance = webhook_instance(receiver.url)
    ingest(instance, 2)
    assert webhooks.deliver(instance.id) is not None
    assert [r.path for r in receiver.all()] == ["/hook"]  # /elsewhere never requested
    attempt = WebhookAttempt.objects.get(instance=instance)
    assert attempt.status_code == 302 and not attempt.ok
    assert "redirect" in attempt.error and "/elsewhere" in attempt.error
    assert states(instance) == ["queued", "queued"]


def test_a_slow_endpoint_times_out_and_is_retried(db: None, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.delay = 2.0
    instance = webhook_instance(receiver.url)
    ingest(instance, 1)
    started = time.monotonic()
    assert webhooks.deliver(instance.id) is not None
    assert time.monotonic() - started < 1.8
    attempt = WebhookAttempt.objects.get(instance=instance)
    assert attempt.status_code is None and attempt.error.startswith("timeout")
    assert states(instance) == ["queued"]


# --- SSRF ---------------------------------------------------------------------------------


def test_private_target_is_refused_without_the_setting(db: None, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    settings.WEBHOOK_ALLOW_PRIVATE = False
    instance = webhook_instance(receiver.url)
    ingest(instance, 1)
    assert webhooks.deliver(instance.id) is not None
    assert receiver.all() == []  # never connected
    attempt = WebhookAttempt.objects.get(instance=instance)
    assert attempt.error.startswith("refused:") and "loopback" in attempt.error
    assert states(instance) == ["queued"]

    settings.WEBHOOK_ALLOW_PRIVATE = True  # the operator opens private targets
    make_due(instance)
    assert webhooks.deliver(instance.id) is None
    assert len(receiver.ok()) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata: refused even with allow-private
        "http://[::ffff:127.0.0.1]:9/x",  # loopback hidden in an IPv4-mapped address
        "http://10.0.0.1/hook",
        "ftp://example.com/hook",
    ],
)
def test_refused_targets(db: None, settings: Any, url: str) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    settings.WEBHOOK_ALLOW_PRIVATE = "10.0.0.1" not in url and "::ffff" not in url
    instance = webhook_instance(url)
    ingest(instance, 1)
    webhooks.deliver(instance.id)
    attempt = WebhookAttempt.objects.get(instance=instance)
    assert attempt.error.startswith("refused:"), attempt.error
    assert attempt.status_code is None


# --- Give-up window -----------------------------------------------------------------------


def test_gives_up_when_the_next_attempt_would_fall_outside_the_window(
    db: None, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_GIVE_UP_SECONDS = 30
    receiver.status = 500
    instance = webhook_instance(receiver.url)
    ingest(instance, 2)
    assert webhooks.deliver(instance.id) is not None  # 5 s retry is inside the window
    make_due(instance)
    assert webhooks.deliver(instance.id) is not None  # 15 s: still inside
    make_due(instance)
    # Third failure: the next retry (60 s) would end past the 30 s window, so the head
    # is dropped and the next notification is tried at once (and so on).
    Notification.objects.filter(instance=instance).update(created_at=timezone.now() - timedelta(seconds=10))
    webhooks.deliver(instance.id)
    head, second = Notification.objects.filter(instance=instance).order_by("receipt_id")
    assert head.state == "expired" and head.done_at is not None
    assert WebhookAttempt.objects.filter(notification=head).count() == 3
    assert second.state == "queued"  # its first failure schedules a 5 s retry, inside the window


def test_backlog_older_than_the_window_is_dropped_without_attempts(db: None, receiver: Receiver) -> None:
    instance = webhook_instance(receiver.url)
    old = ingest(instance, 3, "old")
    Notification.objects.filter(pk__in=[n.pk for n in old]).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    fresh = ingest(instance, 1, "new")
    assert webhooks.deliver(instance.id) is None
    assert states(instance) == ["expired", "expired", "expired", "done"]
    assert [receipt_of(r) for r in receiver.ok()] == [fresh[0].receipt_id]
    assert not WebhookAttempt.objects.filter(notification_id__in=[n.pk for n in old]).exists()


def test_redelivered_old_notification_gets_a_fresh_window(db: None, receiver: Receiver) -> None:
    instance = webhook_instance(receiver.url)
    [n] = ingest(instance, 1)
    webhooks.deliver(instance.id)
    Notification.objects.filter(pk=n.pk).update(created_at=timezone.now() - timedelta(days=3))
    assert webhooks.redeliver(instance, n.receipt_id, n.receipt_id, requested_by="test") == 1
    assert webhooks.deliver(instance.id) is None
    assert [receipt_of(r) for r in receiver.ok()] == [n.receipt_id, n.receipt_id]
    assert WebhookAttempt.objects.filter(notification_id=n.pk).order_by("id").last().attempt == 1  # type: ignore[union-attr]


# --- Isolation, concurrency, recovery -----------------------------------------------------


def test_dead_endpoint_of_one_instance_does_not_delay_another(
    transactional_db: None, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_TIMEOUT_SECONDS = 4.0
    hanging = Receiver()
    hanging.delay = 6.0
    try:
        dead = make_instance(authorized=True)
        healthy = make_instance(authorized=True)
        for instance in (dead, healthy):
            instance.settings["incomingWebhook"] = True
            instance.save(update_fields=["settings"])
        ingest(dead, 3, "a")
        ingest(healthy, 5, "b")
        # webhookUrl set after ingesting, so nothing ran on commit: this test drives.
        for instance, url in ((dead, hanging.url), (healthy, receiver.url)):
            instance.settings["webhookUrl"] = url
            instance.save(update_fields=["settings"])
        results: dict[str, Any] = {}

        def run_dead() -> None:
            from django.db import connection

            try:
                results["dead"] = webhooks.deliver(dead.id)
            finally:
                connection.close()

        thread = threading.Thread(target=run_dead)
        thread.start()
        time.sleep(0.3)  # the dead instance's head is in flight
        started = time.monotonic()
        assert webhooks.deliver(dead.id) is None  # a second wake-up for it: turned away at once
        assert webhooks.deliver(healthy.id) is None
        took = time.monotonic() - started
        assert took < 2.0, took
        assert len(receiver.ok()) == 5
        assert states(healthy) == ["done"] * 5
        assert thread.is_alive()  # the dead one is still waiting for its answer
        thread.join(timeout=15)
        assert results["dead"] is not None
        assert states(dead) == ["queued"] * 3
    finally:
        hanging.stop()


def test_concurrent_wakeups_deliver_each_notification_once_in_order(
    transactional_db: None, receiver: Receiver
) -> None:
    receiver.delay = 0.02
    instance = make_instance(authorized=True)
    instance.settings["incomingWebhook"] = True
    instance.save(update_fields=["settings"])
    notifications = ingest(instance, 20)
    instance.settings["webhookUrl"] = receiver.url
    instance.save(update_fields=["settings"])

    def run() -> None:
        from django.db import connection

        try:
            for _ in range(50):
                webhooks.deliver(instance.id)
                if not Notification.objects.filter(instance=instance, state="queued").exists():
                    return
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [receipt_of(r) for r in receiver.ok()] == [n.receipt_id for n in notifications]
    assert states(instance) == ["done"] * 20


def test_lease_left_by_a_dead_worker_is_retried_after_it_ends(db: None, receiver: Receiver) -> None:
    instance = webhook_instance(receiver.url)
    [n] = ingest(instance, 1)
    # A worker claimed the head and died before recording anything.
    Notification.objects.filter(pk=n.pk).update(
        attempts=1, next_attempt_at=timezone.now() + timedelta(seconds=webhooks.lease_seconds())
    )
    assert webhooks.deliver(instance.id) is None
    assert receiver.all() == []
    assert instance.id not in webhooks.due_instance_ids()
    make_due(instance)  # the lease ran out
    assert instance.id in webhooks.due_instance_ids()
    assert webhooks.deliver(instance.id) is None
    assert len(receiver.ok()) == 1
    assert WebhookAttempt.objects.get(notification_id=n.pk).attempt == 2


def test_a_run_is_bounded_and_asks_to_continue(db: None, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_BATCH_SIZE = 3
    instance = webhook_instance(receiver.url)
    ingest(instance, 5)
    assert webhooks.deliver(instance.id) == 0.0
    assert len(receiver.ok()) == 3
    assert webhooks.deliver(instance.id) is None
    assert len(receiver.ok()) == 5


def test_due_instances_are_only_webhook_instances_with_a_due_head(db: None, receiver: Receiver) -> None:
    polling = make_instance(authorized=True)
    polling.settings["incomingWebhook"] = True
    polling.save(update_fields=["settings"])
    ingest(polling, 1, "p")
    waiting = webhook_instance(receiver.url)
    ingest(waiting, 2, "w")
    Notification.objects.filter(instance=waiting).order_by("receipt_id").filter(
        receipt_id=Notification.objects.filter(instance=waiting).order_by("receipt_id")[0].receipt_id
    ).update(next_attempt_at=timezone.now() + timedelta(seconds=30))
    due = webhook_instance(receiver.url)
    ingest(due, 1, "d")
    empty = webhook_instance(receiver.url)
    ids = webhooks.due_instance_ids()
    assert due.id in ids
    assert polling.id not in ids and waiting.id not in ids and empty.id not in ids


def test_cleared_webhook_url_makes_undelivered_notifications_pollable(db: None, receiver: Receiver) -> None:
    receiver.status = 500
    instance = webhook_instance(receiver.url)
    notifications = ingest(instance, 2)
    webhooks.deliver(instance.id)
    instance.settings["webhookUrl"] = ""
    instance.save(update_fields=["settings"])
    make_due(instance)
    assert webhooks.deliver(instance.id) is None
    assert len(receiver.all()) == 1  # nothing more was posted
    head = services.head_notification(instance.id)
    assert head is not None and head.receipt_id == notifications[0].receipt_id
    assert services.delete_notification(instance.id, head.receipt_id)
    assert services.notifications_count(instance.id) == 1


def test_broker_down_keeps_notifications_queued_and_beat_delivers_them(
    transactional_db: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = webhook_instance(receiver.url)

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.deliver_webhooks_task, "apply_async", broker_down)
        notifications = ingest(instance, 4)  # committed; every on-commit wake-up fails
        assert tasks.wake_due_webhooks_task() == {"woken": 1, "pruned": 0}  # beat cannot enqueue either
    assert receiver.all() == []
    assert states(instance) == ["queued"] * 4
    # The broker is back: the next beat run wakes the instance (inline in eager mode).
    assert tasks.wake_due_webhooks_task() == {"woken": 1, "pruned": 0}
    assert [receipt_of(r) for r in receiver.ok()] == [n.receipt_id for n in notifications]
    assert states(instance) == ["done"] * 4
    assert tasks.wake_due_webhooks_task() == {"woken": 0, "pruned": 0}


def test_on_commit_wakeup_delivers_inline_in_eager_mode(transactional_db: None, receiver: Receiver) -> None:
    instance = webhook_instance(receiver.url)
    ingest(instance, 3)
    assert len(receiver.ok()) == 3
    assert states(instance) == ["done"] * 3


def test_attempt_log_is_pruned_after_the_retention(db: None, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_ATTEMPT_RETENTION_DAYS = 7
    instance = webhook_instance(receiver.url)
    ingest(instance, 3)
    webhooks.deliver(instance.id)
    old = WebhookAttempt.objects.filter(instance=instance).order_by("id")[:2]
    WebhookAttempt.objects.filter(pk__in=[a.pk for a in old]).update(started_at=timezone.now() - timedelta(days=8))
    assert webhooks.prune_attempts() == 2
    assert WebhookAttempt.objects.filter(instance=instance).count() == 1
    settings.WEBHOOK_ATTEMPT_RETENTION_DAYS = 0
    WebhookAttempt.objects.update(started_at=timezone.now() - timedelta(days=80))
    assert webhooks.prune_attempts() == 0


def test_wake_ups_are_coalesced_while_one_is_waiting(db: None, settings: Any) -> None:
    if not settings.REDIS_URL:
        pytest.skip("coalescing needs Redis (REDIS_URL)")
    task = tasks.deliver_webhooks_task
    with private_broker_queue(settings) as queue:
        try:
            assert task.apply_async((42,), queue=queue) is not None
            assert task.apply_async((42,), queue=queue) is None  # one is already waiting
            assert task.apply_async((43,), queue=queue) is not None  # per instance
            assert task.apply_async((42,), queue=queue, countdown=5) is not None  # retries always go
            webhooks.clear_wake_pending(42)  # what a starting run does first
            assert task.apply_async((42,), queue=queue) is not None
            webhooks.wake_due()  # beat clears a stale mark before waking (nothing due here)
        finally:
            webhooks.clear_wake_pending(42)
            webhooks.clear_wake_pending(43)
            coalesce._redis().delete(queue)
