"""The shipped web server command (config/processes.py: granian) as a real process:
lifespan, HTTP through Django and through the sendMessage fast lane, and WebSockets."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from config import processes
from messaging.models import OutgoingMessage
from tests.factories import make_instance
from tests.instances.test_runstack import free_port, healthy
from tests.processes import running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("transactional_db")]


def test_the_shipped_web_command_serves_http_and_websockets(tmp_path: Path) -> None:
    instance = make_instance(authorized=True)
    port = free_port()
    argv = processes.web(host="127.0.0.1", port=str(port), workers="1")
    log = tmp_path / "web.log"
    with running(argv[1:], log):
        wait_for(lambda: healthy(port), 90, 0.2, "the web server to answer /healthz")
        base = f"http://127.0.0.1:{port}/waInstance{instance.id}"

        with urllib.request.urlopen(f"{base}/getStateInstance/{instance.api_token}", timeout=10) as answer:  # noqa: S310
            assert json.loads(answer.read()) == {"stateInstance": "authorized"}

        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{base}/sendMessage/{instance.api_token}", method="POST",
            data=json.dumps({"chatId": "79001234567@c.us", "message": "hi"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            id_message = json.loads(answer.read())["idMessage"]
        assert OutgoingMessage.objects.filter(instance=instance, id_message=id_message).exists()

        from websockets.sync.client import connect

        url = f"ws://127.0.0.1:{port}/waInstance{instance.id}/scanqrcode/{instance.api_token}"
        with connect(url, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "alreadyLogged"
    text = log.read_text(errors="replace")
    # Lifespan is on by default in granian's ASGI interface: config.asgi answers it.
    assert "lifespan" not in text.lower() and "Traceback" not in text, text
