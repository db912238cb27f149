"""Static assets are served locally (works offline) and mail/cookie settings follow the env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def test_vendored_htmx_css_and_js_are_served(client: Client, db: None) -> None:
    for path, needle in (
        ("/static/vendor/htmx.min.js", b"htmx"),
        ("/static/css/relay.css", b"--brand"),
        ("/static/js/relay.js", b"data-copy"),
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert needle in b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_no_page_loads_anything_from_a_cdn(client: Client, db: None) -> None:
    body = client.get("/").content.decode()
    assert "https://" not in body.split("<body")[0]


def _settings_value(env: dict[str, str], expression: str) -> str:
    code = f"import django, os; django.setup(); from django.conf import settings as s; print({expression})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_mail_goes_to_the_console_unless_smtp_is_configured() -> None:
    assert _settings_value({}, "s.EMAIL_BACKEND").endswith("console.EmailBackend")
    smtp = {"EMAIL_HOST": "smtp.example.com", "EMAIL_PORT": "2525", "EMAIL_HOST_USER": "relay"}
    assert _settings_value(smtp, "(s.EMAIL_BACKEND, s.EMAIL_PORT, s.EMAIL_USE_TLS)") == (
        "('django.core.mail.backends.smtp.EmailBackend', 2525, True)"
    )


def test_secure_cookies_are_switched_on_by_the_environment() -> None:
    assert _settings_value({}, "(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)") == "(False, False)"
    assert _settings_value({"SESSION_COOKIE_SECURE": "true"}, "(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)") == (
        "(True, True)"
    )
