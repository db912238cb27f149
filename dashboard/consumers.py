"""Live cabinet: ``ws/dashboard/`` pushes the signed-in user's instance states (list
badges); ``ws/dashboard/instances/<id>/`` pushes one instance's state and, while it
is unpaired, its rotating QR code, plus "journal" hints (a message, a status, a
notification or a webhook attempt was committed) that make chat, queue and log pages
re-read themselves.

Session-authenticated (the cabinet's cookie) and same-origin only: a foreign page
must not read a user's QR codes through their cookies. Consumers re-read the
database when ``instances.events`` wakes them and every ``POLL_SECONDS`` anyway, and
never write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from dashboard.templatetags.relay import state_badge_parts
from engines.contract import TransportError
from engines.registry import get_transport
from instances import events
from instances.models import Account, Instance, State

POLL_SECONDS = 2.0
QR_POLL_SECONDS = 1.0

log = logging.getLogger(__name__)


def same_origin(scope: dict[str, Any]) -> bool:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    origin = headers.get("origin", "")
    host = headers.get("host", "")
    if not origin or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


@database_sync_to_async
def _account_id(user_id: int) -> int | None:
    return Account.objects.filter(user_id=user_id).values_list("id", flat=True).first()


@database_sync_to_async
def _states(account_id: int) -> dict[str, str]:
    rows = Instance.objects.filter(account_id=account_id, is_deleted=False).values_list("id", "state")
    return {str(pk): state for pk, state in rows}


@database_sync_to_async
def _instance(account_id: int, instance_id: int) -> Instance | None:
    return Instance.objects.filter(pk=instance_id, account_id=account_id, is_deleted=False).first()


def _qr(instance: Instance) -> tuple[int, str] | None:
    try:
        code = get_transport(instance).current_qr()
    except TransportError:
        return None  # no code yet (a live session is still reaching WhatsApp)
    return code.window, code.png_base64


def state_frame(instance_id: int, state: str, wid: str = "") -> dict[str, Any]:
    tone, label = state_badge_parts(state)
    return {"type": "state", "id": instance_id, "state": state, "label": label, "tone": tone, "wid": wid}


def journal_frame(event: dict[str, Any]) -> dict[str, Any]:
    return {"type": "journal", "topic": str(event.get("topic", "")), "chat_id": str(event.get("chat_id", ""))}


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    account_id: int = 0
    instance_id: int = 0
    groups_joined: list[str]
    _wake: asyncio.Event
    _task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not same_origin(self.scope):
            await self._refuse(4403)
            return
        account_id = await _account_id(user.pk)
        if account_id is None:
            await self._refuse(4404)
            return
        self.account_id = account_id
        self.instance_id = int(self.scope["url_route"]["kwargs"].get("instance_id") or 0)
        if self.instance_id and await _instance(account_id, self.instance_id) is None:
            await self._refuse(4404)  # not yours or gone: same answer
            return
        self._wake = asyncio.Event()
        if self.instance_id:
            ids = [self.instance_id]
        else:
            ids = [int(pk) for pk in await _states(account_id)]
            await self._join(events.account_group(account_id))
        for pk in ids:
            await self._join(events.instance_group(pk))
        await self.accept()
        self._task = asyncio.create_task(self._run())

    async def _refuse(self, code: int) -> None:
        """Accept only to close with a reason the page can read (4403 signed out or
        foreign origin, 4404 no such instance): it then stops reconnecting. Nothing
        is sent before the close."""
        await self.accept()
        await self.close(code=code)

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.append(group)

    async def disconnect(self, code: int) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        return None

    async def state_changed(self, event: dict[str, Any]) -> None:
        self._wake.set()

    async def account_changed(self, event: dict[str, Any]) -> None:
        self._wake.set()

    async def journal_changed(self, event: dict[str, Any]) -> None:
        """Forward the hint to an instance page, which re-reads the part it shows
        (chat, notification queue, webhook log). The list socket joins instance
        groups too, for states; journal hints mean nothing there."""
        if self.instance_id and event.get("instance_id") == self.instance_id:
            await self.send_json(journal_frame(event))

    async def _run(self) -> None:
        try:
            if self.instance_id:
                await self._stream_instance()
            else:
                await self._stream_list()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the page falls back to reloading
            log.exception("dashboard stream failed")
            with contextlib.suppress(Exception):
                await self.close(code=1011)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _stream_list(self) -> None:
        last: dict[str, str] | None = None
        while True:
            states = await _states(self.account_id)
            if last is not None and set(states) != set(last):
                # Instances were added or removed: follow their groups too.
                for pk in set(states) - set(last):
                    await self._join(events.instance_group(int(pk)))
                await self.send_json({"type": "list_changed"})
            for pk, state in states.items():
                if last is None or last.get(pk) != state:
                    await self.send_json(state_frame(int(pk), state))
            last = states
            await self._sleep(POLL_SECONDS)

    async def _stream_instance(self) -> None:
        last_state = ""
        last_window: int | None = None
        watched_at = 0.0
        while True:
            if time.monotonic() - watched_at > events.WATCH_SECONDS / 3:
                # Writers send journal hints only for watched instances (instances.events).
                await asyncio.to_thread(events.watch, self.instance_id)
                watched_at = time.monotonic()
            instance = await _instance(self.account_id, self.instance_id)
            if instance is None:
                await self.send_json({"type": "deleted", "id": self.instance_id})
                await self.close()
                return
            if instance.state != last_state:
                last_state = instance.state
                last_window = None
                await self.send_json(state_frame(instance.id, instance.state, instance.wid))
            if instance.state == State.NOT_AUTHORIZED:
                frame = await database_sync_to_async(_qr)(instance)
                if frame is not None and frame[0] != last_window:
                    last_window, png = frame
                    await self.send_json({"type": "qr", "id": instance.id, "png": png})
            await self._sleep(QR_POLL_SECONDS if instance.state != State.AUTHORIZED else POLL_SECONDS)
