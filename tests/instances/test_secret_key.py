"""The public built-in SECRET_KEY: only the embedded development default may start
with it; a deployment (DATABASE_URL set) refuses to, and `check --deploy` reports
it. Each case starts a real Python process with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BUILT_IN = "relay-insecure-dev-key-change-me-in-production-0123456789"
REAL_KEY = "x7Hq2nV9cLw4sKz8eRf5yUa1pGd6Jm3Tb0Nh8Qv2Xc5Rt7Yw1Ez"


def run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")}
    base["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120,
        check=False,
    )


SETUP = ["-c", "import django; django.setup(); from django.conf import settings as s; print(s.SECRET_KEY)"]
DEPLOYED = "postgres://relay@127.0.0.1:1/relay"  # never connected to: settings alone decide


def test_the_embedded_default_starts_with_the_built_in_key() -> None:
    result = run(SETUP)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(BUILT_IN)


def test_a_deployment_refuses_to_start_with_the_built_in_key() -> None:
    result = run(SETUP, DATABASE_URL=DEPLOYED)
    assert result.returncode != 0
    assert "SECRET_KEY is the built-in development key" in result.stderr
    placeholder = run(SETUP, DATABASE_URL=DEPLOYED, SECRET_KEY="change-me-to-50-random-characters")
    assert placeholder.returncode != 0 and "SECRET_KEY" in placeholder.stderr


def test_a_deployment_starts_with_its_own_key_or_in_debug() -> None:
    own = run(SETUP, DATABASE_URL=DEPLOYED, SECRET_KEY=REAL_KEY)
    assert own.returncode == 0, own.stderr
    assert own.stdout.strip().endswith(REAL_KEY)
    debug = run(SETUP, DATABASE_URL=DEPLOYED, DEBUG="true")
    assert debug.returncode == 0, debug.stderr


def test_check_deploy_reports_the_built_in_key() -> None:
    result = run(["manage.py", "check", "--deploy"])
    assert "relay.E001" in result.stderr + result.stdout
    assert result.returncode != 0
    clean = run(["manage.py", "check", "--deploy"], SECRET_KEY=REAL_KEY)
    assert "relay.E001" not in clean.stderr + clean.stdout
