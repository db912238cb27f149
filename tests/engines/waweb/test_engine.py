"""The waweb engine from the product's side: its registry entry, what web and worker
processes import (never neonize), the restart backoff, and where keys live."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from engines import registry
from engines.waweb import store, supervisor
from engines.waweb.models import WawebSession
from tests.conftest import method_url
from tests.factories import make_instance
from tests.processes import ROOT, process_env


def test_web_worker_and_runner_code_never_import_neonize() -> None:
    code = (
        "import django, sys; django.setup();"
        "import config.urls, config.asgi, engines.waweb.transport, engines.waweb.supervisor, engines.waweb.admin;"
        "from engines import registry; registry.session_steps();"
        "assert 'neonize' not in sys.modules, 'neonize was imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=process_env(), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_the_backoff_grows_from_a_second_to_five_minutes_with_jitter() -> None:
    first = [supervisor.backoff_seconds(1) for _ in range(50)]
    assert all(1.0 <= d <= 1.25 for d in first)
    assert len(set(first)) > 1  # jitter: accounts failing together do not retry together
    assert all(2.0 <= supervisor.backoff_seconds(2) <= 2.5 for _ in range(20))
    assert all(supervisor.backoff_seconds(n) <= 300 for n in range(1, 40))
    assert supervisor.backoff_seconds(30) >= 240


def test_the_spec_is_honest_about_what_it_cannot_do() -> None:
    pytest.importorskip("neonize")
    assert registry.refusal("waweb", "sendMessage") is None
    why = registry.refusal("waweb", "archiveChat")
    assert why is not None and "waweb" in why and "app-state" in why
    assert registry.refusal("waweb", "getSettings") is None


@pytest.mark.django_db
def test_unsupported_methods_answer_400_naming_the_engine(api_client: APIClient) -> None:
    pytest.importorskip("neonize")
    instance = make_instance(engine="waweb")
    r = api_client.post(method_url(instance, "archiveChat"), {"chatId": "79001234567@c.us"}, format="json")
    assert r.status_code == 400
    assert r.json()["message"].startswith("archiveChat is not supported by the waweb engine")


@pytest.mark.django_db
def test_without_a_session_commands_answer_503_at_once(api_client: APIClient) -> None:
    pytest.importorskip("neonize")
    instance = make_instance(engine="waweb")
    r = api_client.post(
        method_url(instance, "getAuthorizationCode"), {"phoneNumber": 79001234567}, format="json"
    )
    assert r.status_code == 503
    assert "not running" in r.json()["message"]


@pytest.mark.django_db
def test_logout_without_a_session_erases_the_linked_device(
    api_client: APIClient, settings: object, tmp_path: Path
) -> None:
    pytest.importorskip("neonize")
    settings.VAR_DIR = tmp_path  # type: ignore[attr-defined]
    settings.WAWEB_STORE_URL = ""  # type: ignore[attr-defined]
    instance = make_instance(engine="waweb")
    WawebSession.objects.create(instance_id=instance.pk, device_jid="79001234567:3@s.whatsapp.net")
    path = store.sqlite_path(instance.pk)
    if store.store_name(instance.pk).startswith("postgres"):
        pytest.skip("the PostgreSQL store is erased by a DELETE of the device row")
    path.write_bytes(b"keys")

    r = api_client.get(method_url(instance, "logout"))

    assert r.json() == {"isLogout": True}
    assert not path.exists()
    assert WawebSession.objects.get(instance_id=instance.pk).device_jid == ""
