"""Live pages on the embedded default (no Redis): a hint sent by another process
(the worker, the runner) reaches the web process's pages through the spool
channel layer, not on the pages' 15 s fallback re-read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from instances.spool_layer import SpoolChannelLayer
from tests.conftest import LiveServer
from tests.dashboard.test_consumers import TIMEOUT, frames_until, open_socket, session_cookie
from tests.factories import AccountFactory, make_instance

ROOT = Path(settings.BASE_DIR)
SUBPROCESS_SECONDS = 60


def run_elsewhere(code: str, spool_dir: Path) -> None:
    """Run ``code`` in a fresh Python process (Django set up on the test settings,
    sharing ``spool_dir``), as the worker or runner would."""
    env = {**os.environ, "RELAY_LIVE_SPOOL_DIR": str(spool_dir), "DJANGO_SETTINGS_MODULE": "config.test_settings"}
    env.pop("REDIS_URL", None)
    prelude = "import django; django.setup()\n"
    subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", prelude + code], cwd=ROOT, env=env, check=True, timeout=SUBPROCESS_SECONDS
    )


def test_a_group_message_crosses_processes(tmp_path: Path) -> None:
    layer = SpoolChannelLayer(spool_dir=str(tmp_path), poll_seconds=0.05)

    async def scenario() -> dict[str, object]:
        channel = await layer.new_channel()
        await layer.group_add("instance.7", channel)
        run_elsewhere(
            "from asgiref.sync import async_to_sync\n"
            "from instances.spool_layer import SpoolChannelLayer\n"
            f"layer = SpoolChannelLayer(spool_dir={str(tmp_path)!r})\n"
            "async_to_sync(layer.group_send)('instance.7', {'type': 'journal.changed', 'topic': 'chat'})\n"
            "async_to_sync(layer.group_send)('instance.8', {'type': 'journal.changed', 'topic': 'chat'})\n",
            tmp_path,
        )
        import asyncio

        return await asyncio.wait_for(layer.receive(channel), timeout=TIMEOUT)

    message = async_to_sync(scenario)()
    assert message == {"type": "journal.changed", "topic": "chat"}


def test_own_messages_are_not_delivered_twice_and_old_files_are_pruned(tmp_path: Path) -> None:
    layer = SpoolChannelLayer(spool_dir=str(tmp_path), poll_seconds=0.02, retention_seconds=0.0)

    async def scenario() -> list[dict[str, object]]:
        import asyncio

        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.group_send("g", {"type": "x.y", "n": 1})
        got = [await asyncio.wait_for(layer.receive(channel), timeout=TIMEOUT)]
        deadline = time.monotonic() + TIMEOUT
        while list(tmp_path.glob("*.json")) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        try:
            got.append(await asyncio.wait_for(layer.receive(channel), timeout=0.3))
        except TimeoutError:
            pass
        return got

    assert async_to_sync(scenario)() == [{"type": "x.y", "n": 1}]
    assert not list(tmp_path.glob("*.json"))  # the reader removed it after the retention


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(bool(settings.REDIS_URL), reason="the embedded default's path (no Redis)")
def test_a_worker_side_hint_reaches_an_open_chat_page(live_asgi: LiveServer) -> None:
    """The page's socket marks the instance watched (a file), a separate process
    sends the hint the worker sends after a status change, and the socket forwards
    it to the page at once."""
    account = AccountFactory()
    instance = make_instance(account)
    with open_socket(live_asgi, f"/ws/dashboard/instances/{instance.id}/", session_cookie(account)) as ws:
        frames_until(ws, lambda f: f["type"] == "state")
        watch_file = Path(settings.LIVE_SPOOL_DIR) / "watch" / str(instance.id)
        deadline = time.monotonic() + TIMEOUT
        while not watch_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watch_file.exists()
        run_elsewhere(
            "from instances import events\n"
            f"events.journal_changed({instance.id}, 'chat', '79005550303@c.us')\n",
            Path(settings.LIVE_SPOOL_DIR),
        )
        frame = frames_until(ws, lambda f: f["type"] == "journal")
        assert frame == {"type": "journal", "topic": "chat", "chat_id": "79005550303@c.us"}


def test_spool_files_are_small(tmp_path: Path) -> None:
    layer = SpoolChannelLayer(spool_dir=str(tmp_path))
    path = layer.spool("instance.1", {"type": "journal.changed", "instance_id": 1, "topic": "chat", "chat_id": "x@c.us"})
    assert json.loads(path.read_bytes())["group"] == "instance.1"
    assert path.stat().st_size < 300
