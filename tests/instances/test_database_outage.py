"""The database out of reach (down, restarting): every wire route answers
GREEN-API's JSON 503 with Retry-After, never an HTML 500 page, and /healthz names
what is down without the driver's message. The outage here is real: this thread's
connection is pointed at a port nothing listens on (PostgreSQL) or a file that
cannot be opened (SQLite), so the driver itself fails to connect."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client

from instances.models import Instance
from tests.conftest import _free_port, method_url
from tests.factories import make_instance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database_down(tmp_path: object) -> Iterator[str]:
    """This thread's connection cannot reach its database until the test ends.
    Returns a string the driver's error would contain (it must not be echoed)."""
    with unreachable_database(str(tmp_path)) as leak:
        yield leak


@contextlib.contextmanager
def unreachable_database(tmp_path: str) -> Iterator[str]:
    """Point this thread's connection at a database it cannot reach, until exit."""
    connection.close()
    saved = dict(connection.settings_dict)
    if connection.vendor == "postgresql":
        port = str(_free_port())
        connection.settings_dict["PORT"] = port
        leak = port
    else:
        connection.settings_dict["NAME"] = f"{tmp_path}/missing/dir/db.sqlite3"
        leak = "missing"
    try:
        yield leak
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture
def instance() -> Instance:
    return make_instance(authorized=True)


@pytest.mark.parametrize(
    ("verb", "method", "body"),
    [
        ("get", "getSettings", None),
        ("get", "getStateInstance", None),
        ("post", "sendMessage", {"chatId": "79001112233@c.us", "message": "hi"}),
        ("get", "lastOutgoingMessages", None),
        ("delete", "deleteNotification", None),
    ],
)
def test_wire_routes_answer_a_json_503_with_retry_after(
    instance: Instance, database_down: str, verb: str, method: str, body: dict[str, str] | None
) -> None:
    url = method_url(instance, method, extra="1" if method == "deleteNotification" else "")
    client = Client(raise_request_exception=False)
    r = getattr(client, verb)(url, body, content_type="application/json") if body else getattr(client, verb)(url)
    assert r.status_code == 503, r.content[:300]
    assert r["Content-Type"] == "application/json"
    assert r["Retry-After"] == "5"
    payload = r.json()
    assert payload["statusCode"] == 503
    assert payload["path"] == url
    assert "database" in payload["message"]
    assert database_down not in r.content.decode()


def test_healthz_says_the_database_is_down_without_the_driver_message(database_down: str) -> None:
    r = Client().get("/healthz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"]["status"] == "error: unreachable"
    assert database_down not in r.content.decode()
