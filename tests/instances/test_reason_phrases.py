"""The status line the product's web server (daphne, as ``runstack`` starts it)
writes for a rate-limited request: GREEN-API's ``429 Too Many Requests``."""

from __future__ import annotations

import http.client
from pathlib import Path

from tests.conftest import _free_port
from tests.factories import make_instance
from tests.processes import running, wait_for


def _get(port: int, path: str) -> tuple[int, str] | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, response.reason
    except OSError:
        return None
    finally:
        conn.close()


def test_daphne_says_too_many_requests(transactional_db: None, tmp_path: Path) -> None:
    instance = make_instance()
    port = _free_port()
    url = f"/waInstance{instance.id}/getSettings/{instance.api_token}"
    args = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    with running(args, tmp_path / "daphne.log", RATE_LIMITS_ENABLED="true"):
        wait_for(lambda: _get(port, "/healthz"), timeout=60, what="daphne to answer")
        answers = [_get(port, url) for _ in range(5)]  # getSettings allows 1 a second
    assert (429, "Too Many Requests") in answers, answers
