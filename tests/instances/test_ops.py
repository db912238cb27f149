"""/healthz and /metrics."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from instances import ops
from instances.models import Instance, State
from tests.conftest import method_url
from tests.factories import make_instance


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def requests_total(samples: dict[Any, float], method: str, status: str) -> float:
    return samples.get(("relay_api_requests_total", (("method", method), ("status", status))), 0.0)


# --- /healthz -------------------------------------------------------------------------


def test_healthz_reports_ok(db: None) -> None:
    r = Client().get("/healthz")
    assert r.status_code == 200
    assert r["Content-Type"] == "application/json"
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"]["status"] == "ok"
    assert isinstance(body["checks"]["database"]["ms"], float | int)


class BrokenConnection:
    def cursor(self) -> Any:
        raise OperationalError("connection refused")


def test_healthz_is_503_when_the_database_fails(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "connection", BrokenConnection())
    r = Client().get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "error"
    # What is down, never the driver's words (they can name hosts, users, paths).
    assert body["checks"]["database"]["status"] == "error: unreachable"
    assert "connection refused" not in r.content.decode()
    assert r["Retry-After"] == "5"
    assert body["checks"]["broker"]["status"] == "ok"


def test_healthz_is_503_when_the_broker_fails(db: None, monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Any) -> None:
    if settings.REDIS_URL:
        settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    else:
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "missing")}
    r = Client().get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"]["status"].startswith("error: ")


def test_healthz_needs_no_login_and_no_trailing_slash(db: None) -> None:
    assert Client().get("/healthz").status_code == 200


# --- /metrics -------------------------------------------------------------------------


def test_metrics_counts_wire_requests(instance: Instance) -> None:
    web = Client()
    before = scrape(web)
    api = APIClient()
    api.get(method_url(instance, "getStateInstance"))
    api.get(method_url(instance, "getStateInstance"))
    api.get(method_url(instance, "getStateInstance", token="0" * 50))
    after = scrape(web)
    assert requests_total(after, "getStateInstance", "200") - requests_total(before, "getStateInstance", "200") == 2
    assert requests_total(after, "getStateInstance", "401") - requests_total(before, "getStateInstance", "401") == 1


def test_metrics_counts_by_canonical_name(instance: Instance) -> None:
    web = Client()
    before = scrape(web)
    APIClient().get(method_url(instance, "GETSTATEINSTANCE"))
    after = scrape(web)
    assert requests_total(after, "getStateInstance", "200") - requests_total(before, "getStateInstance", "200") == 1


def test_metrics_records_latency(instance: Instance) -> None:
    APIClient().get(method_url(instance, "getSettings"))
    text = Client().get("/metrics").content.decode()
    assert re.search(r'^relay_api_request_seconds_count\{method="getSettings"\} [1-9]', text, re.M)


def test_metrics_gauges_instances_by_state(account: Any) -> None:
    make_instance(account)
    make_instance(account)
    make_instance(account, authorized=True)
    deleted = make_instance(account, authorized=True)
    Instance.objects.filter(pk=deleted.pk).update(is_deleted=True)
    samples = scrape(Client())
    assert samples[("relay_instances", (("state", "notAuthorized"),))] == 2
    assert samples[("relay_instances", (("state", "authorized"),))] == 1  # deleted ones do not count
    # Every state is exported, so a series never vanishes when its count drops to zero.
    for state in State.values:
        assert ("relay_instances", (("state", state),)) in samples
    assert samples[("relay_instances", (("state", "blocked"),))] == 0


def test_metrics_gauges_live_leases(authorized_instance: Instance) -> None:
    from instances.runner import Runner

    assert scrape(Client())[("relay_session_leases_live", ())] == 0
    Runner(runner_id="runner-m").acquire()
    assert scrape(Client())[("relay_session_leases_live", ())] == 1


def test_metrics_report_queue_depths(api_client: Any, authorized_instance: Any) -> None:
    from messaging.services import send

    for n in range(3):
        send(
            instance=authorized_instance, method="sendMessage", chat_id="79000000001@c.us",
            type_message="textMessage", request={}, payload={"message": str(n)},
        )
    body = api_client.get("/metrics").content.decode()
    depth = [line for line in body.splitlines() if line.startswith("relay_send_queue_depth ")]
    assert depth and float(depth[0].split()[1]) >= 3
    assert "relay_notification_queue_depth" in body
