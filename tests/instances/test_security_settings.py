"""Production security settings: /metrics can be protected (token or networks),
HSTS is sent on HTTPS when configured, and HTML pages carry the configured
Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_metrics_are_open_by_default() -> None:
    assert Client().get("/metrics").status_code == 200


def test_metrics_with_a_token_need_it(settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret-scrape"
    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    ok = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape")
    assert ok.status_code == 200
    assert b"relay_" in ok.content or b"# HELP" in ok.content


def test_metrics_from_allowed_networks_only(settings: Any) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.9.0.0/16"]
    assert Client(REMOTE_ADDR="10.9.1.2").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.8.1.2").get("/metrics").status_code == 404


def test_metrics_networks_see_through_a_trusted_proxy_only(settings: Any) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.9.0.0/16"]
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    proxied = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.9.0.5")
    assert proxied.get("/metrics").status_code == 200
    stranger = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert stranger.get("/metrics").status_code == 404
    forged = Client(REMOTE_ADDR="6.6.6.6", HTTP_X_FORWARDED_FOR="10.9.0.5")
    assert forged.get("/metrics").status_code == 404


def test_hsts_is_sent_on_https_when_configured(settings: Any) -> None:
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    r = Client().get("/dashboard/login/", secure=True)
    assert r["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in Client().get("/dashboard/login/")


def test_no_hsts_by_default() -> None:
    assert "Strict-Transport-Security" not in Client().get("/dashboard/login/", secure=True)


POLICY = "default-src 'self'; script-src 'self'; frame-ancestors 'none'"


def test_html_pages_carry_the_configured_csp(settings: Any) -> None:
    settings.CONTENT_SECURITY_POLICY = POLICY
    assert Client().get("/dashboard/login/")["Content-Security-Policy"] == POLICY
    assert "Content-Security-Policy" not in Client().get("/healthz")


def test_csp_report_only(settings: Any) -> None:
    settings.CONTENT_SECURITY_POLICY = POLICY
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = True
    r = Client().get("/dashboard/login/")
    assert r["Content-Security-Policy-Report-Only"] == POLICY
    assert "Content-Security-Policy" not in r


def test_no_csp_by_default() -> None:
    assert "Content-Security-Policy" not in Client().get("/dashboard/login/")
