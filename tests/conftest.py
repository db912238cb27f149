"""Shared fixtures: accounts, instances, wire URLs and a live ASGI server.

The live server is uvicorn running ``config.asgi.application`` in a thread of the
test process, so HTTP and WebSocket tests go through the real ASGI stack (Channels
routing, middleware, async consumers) while sharing the test database.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from django.conf import settings
from rest_framework.test import APIClient

from instances import ratelimit
from instances.models import Account, Instance
from tests.factories import AccountFactory, make_instance


@pytest.fixture(autouse=True, scope="session")
def _own_live_spool() -> Iterator[None]:
    """config.test_settings gives each test process its own live spool directory
    (instances.spool_layer); remove it when the process is done."""
    yield
    spool = Path(settings.LIVE_SPOOL_DIR)
    if spool.name.startswith("test-live-"):
        shutil.rmtree(spool, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> Iterator[None]:
    """Rate limits are exercised by their own tests; elsewhere they would make tests
    depend on timing. Redis counters are keyed by instance id, so no clean-up needed."""
    settings.RATE_LIMITS_ENABLED = False
    settings.AUTH_FAILURE_LIMIT = 0  # tests of wrong tokens run from one address
    ratelimit.reset()
    yield
    ratelimit.reset()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def account(db: None) -> Account:
    return AccountFactory()


@pytest.fixture
def instance(account: Account) -> Instance:
    """A fresh, unpaired emulator instance."""
    return make_instance(account)


@pytest.fixture
def authorized_instance(account: Account) -> Instance:
    """An emulator instance paired with a phone and authorized."""
    return make_instance(account, authorized=True)


def method_url(instance: Instance, method: str, token: str | None = None, extra: str = "") -> str:
    url = f"/waInstance{instance.id}/{method}/{token if token is not None else instance.api_token}"
    return url + (f"/{extra}" if extra else "")


def partner_url(method: str, token: str) -> str:
    return f"/partner/{method}/{token}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.ws_url = url.replace("http://", "ws://")


@pytest.fixture(scope="session")
def _live_asgi_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveServer]:
    port = _free_port()
    config = uvicorn.Config(
        "config.asgi:application", host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    with django_db_blocker.unblock():
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.time() + 20
        while not server.started:
            if time.time() > deadline:
                raise RuntimeError("live ASGI server did not start")
            time.sleep(0.05)
        live = LiveServer(f"http://127.0.0.1:{port}")
        old = settings.RELAY_API_URL
        yield live
        settings.RELAY_API_URL = old
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_asgi(_live_asgi_server: LiveServer, transactional_db: None) -> Iterator[LiveServer]:
    """A real ASGI server (HTTP + WebSocket) on a free loopback port."""
    yield _live_asgi_server
    # With eager Celery, the sendMessage fast lane's wake-up thread drains queues in
    # this process; let it finish before the test database is flushed under it.
    from config.asgi import application

    assert application.application_mapping["http"].publisher.wait_idle(30)
