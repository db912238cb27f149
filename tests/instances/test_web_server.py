"""The shipped web server command (config/processes.py: granian) as a real process:
lifespan, HTTP through Django and through the sendMessage fast lane, WebSockets, and
HTTP/2 cleartext (h2c) on the same port."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from h2 import events as h2_events
from h2.config import H2Configuration
from h2.connection import H2Connection

from config import processes
from journals.models import Notification
from messaging.models import OutgoingMessage
from tests.factories import make_instance
from tests.instances.test_runstack import free_port, healthy
from tests.journals.chat_helpers import receive, text_data
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


class _H2Client:
    """A minimal blocking HTTP/2 client over cleartext with prior knowledge (h2c): no
    Upgrade, the connection preface first, as ``curl --http2-prior-knowledge``, gRPC
    and bench/longpoll.py --http2 speak it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.status: dict[int, int] = {}
        self.body: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.settings_received = False

    def get(self, path: str) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, [(b":method", b"GET"), (b":scheme", b"http"),
                                           (b":authority", f"127.0.0.1:{self.port}".encode()),
                                           (b":path", path.encode())], end_stream=True)
        self.body[stream_id] = bytearray()
        self.sock.sendall(self.conn.data_to_send())
        return stream_id

    def read_until(self, done: Callable[[], bool]) -> None:
        while not done():
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            for event in self.conn.receive_data(data):
                if isinstance(event, h2_events.RemoteSettingsChanged):
                    self.settings_received = True
                elif isinstance(event, h2_events.ResponseReceived):
                    self.status[event.stream_id or 0] = int(dict(event.headers or [])[b":status"])
                elif isinstance(event, h2_events.DataReceived):
                    self.body[event.stream_id or 0].extend(event.data or b"")
                    self.conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id or 0)
                elif isinstance(event, h2_events.StreamEnded):
                    self.ended.add(event.stream_id or 0)
            self.sock.sendall(self.conn.data_to_send())

    def close(self) -> None:
        self.sock.close()


def test_the_shipped_web_command_serves_http2_cleartext_with_prior_knowledge(tmp_path: Path) -> None:
    """granian's default (``--http auto``) serves HTTP/1.1 and h2c on the one port: a
    client may carry many long polls on one connection (bench/longpoll.py --http2
    holds 25,000 waiters in 125 sockets), and a long poll on one stream is woken while
    other requests are answered on the same connection."""
    instance = make_instance(authorized=True)
    instance.settings.update({"incomingWebhook": True})
    instance.save(update_fields=["settings"])
    # Whatever creating the instance queued: the long poll below must wait for the
    # message this test sends.
    Notification.objects.filter(instance=instance).delete()
    port = free_port()
    argv = processes.web(host="127.0.0.1", port=str(port), workers="1")
    base = f"/waInstance{instance.id}"
    with running(argv[1:], tmp_path / "web.log"):
        wait_for(lambda: healthy(port), 90, 0.2, "the web server to answer /healthz")
        client = _H2Client(port)
        try:
            poll = client.get(f"{base}/receiveNotification/{instance.api_token}?receiveTimeout=60")
            state = client.get(f"{base}/getStateInstance/{instance.api_token}")
            client.read_until(lambda: state in client.ended)
            assert client.status[state] == 200
            assert json.loads(client.body[state]) == {"stateInstance": "authorized"}
            assert poll not in client.ended  # still waiting: the queue is empty
            # 200 streams at once per connection (granian's default): the bench's
            # --streams-per-connection relies on it.
            assert client.settings_received
            assert client.conn.remote_settings.max_concurrent_streams >= 200

            receive(instance, text_data("over h2c"), id_message="H2C1")
            client.read_until(lambda: poll in client.ended)
            assert client.status[poll] == 200
            notification = json.loads(client.body[poll])
            assert notification["body"]["typeWebhook"] == "incomingMessageReceived"
            assert notification["body"]["messageData"]["textMessageData"]["textMessage"] == "over h2c"
        finally:
            client.close()
