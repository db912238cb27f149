"""journals.webhook_client: kept-alive connections, stale ones, long answers, the
SSRF resolution cache. Delivery as a whole is tested in test_webhooks.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from instances import ssrf
from journals import webhook_client

LOOPBACK = ssrf.Policy.build(allow_private=False, allowed_networks=["127.0.0.1/32"])


class KeepAliveServer:
    """HTTP/1.1 with keep-alive; counts connections. ``body`` is what it answers,
    ``close_after`` closes each connection after that many requests."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.body = b"{}"
        self.close_after = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.connections += 1
                self.served = 0

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests += 1
                self.served += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(server.body)))
                if server.close_after and self.served >= server.close_after:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.endpoint = webhook_client.parse(f"http://127.0.0.1:{self.httpd.server_address[1]}/hook?x=1")

    def post(self) -> webhook_client.Answer:
        return webhook_client.post(
            self.endpoint, {"X-Webhook-Id": "1-1"}, b"{}", policy=LOOPBACK, timeout=5, connect_timeout=5
        )

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    webhook_client.close_idle()
    s = KeepAliveServer()
    yield s
    webhook_client.close_idle()
    s.stop()


def test_deliveries_share_one_kept_alive_connection(server: KeepAliveServer) -> None:
    for _ in range(5):
        assert server.post().status == 200
    assert server.requests == 5 and server.connections == 1


def test_a_connection_the_server_closed_is_not_reused(server: KeepAliveServer) -> None:
    server.close_after = 2  # "Connection: close" on every second answer
    for _ in range(6):
        assert server.post().status == 200  # never a failed attempt on a dead connection
    assert server.connections == 3


def test_an_idle_connection_dropped_by_the_server_is_replaced(server: KeepAliveServer) -> None:
    assert server.post().status == 200
    server.httpd.shutdown()  # stop serving; then drop the idle connection from its side
    for conn, _ in webhook_client._pool.idle.values():
        conn.sock.shutdown(2)  # what the server's close looks like from here: readable EOF
    threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
    assert server.post().status == 200
    assert server.connections == 2


def test_a_long_answer_is_cut_to_the_excerpt_and_its_connection_closed(server: KeepAliveServer) -> None:
    server.body = b"y" * 200_000
    answer = server.post()
    assert answer.status == 200 and answer.excerpt == "y" * 1024
    assert webhook_client._pool.idle == {}  # not drained past 64 KB: not reusable
    server.body = b"{}"
    assert server.post().status == 200


def test_url_parts() -> None:
    endpoint = webhook_client.parse("https://user:p%40ss@Example.COM:8443/a/b?c=d#frag")
    assert (endpoint.scheme, endpoint.host, endpoint.port) == ("https", "example.com", 8443)
    assert endpoint.target == "/a/b?c=d" and endpoint.host_header == "example.com:8443"
    assert endpoint.basic_auth == "Basic dXNlcjpwQHNz"  # user:p@ss
    assert webhook_client.parse("http://[::1]/").host_header == "[::1]"
    assert webhook_client.parse("http://пример.рф/").host == "xn--e1afmkfd.xn--p1ai"
    with pytest.raises(ssrf.Refused):
        webhook_client.parse("ftp://example.com/")
    with pytest.raises(webhook_client.InvalidURL):
        webhook_client.parse("http://example.com:99999/")


def test_resolution_is_cached_per_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    webhook_client.forget_addresses()
    calls: list[str] = []
    real = ssrf.resolve

    def counting(host: str, port: int, policy: ssrf.Policy) -> ssrf.IPAddress:
        calls.append(host)
        return real(host, port, policy)

    monkeypatch.setattr(ssrf, "resolve", counting)
    for _ in range(3):
        assert str(webhook_client.vetted_address("127.0.0.1", 80, LOOPBACK)) == "127.0.0.1"
    assert calls == ["127.0.0.1"]
    with pytest.raises(ssrf.Refused):  # another policy is another key: vetted again
        webhook_client.vetted_address("127.0.0.1", 80, ssrf.Policy())
    webhook_client.forget_addresses()
