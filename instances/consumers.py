"""WebSocket ``/waInstance{id}/scanqrcode/{token}`` (API.md §11.2).

Pushes ``{"type": "qrCode", "message": <base64 PNG>}`` whenever the code rotates,
``accountData`` once the instance pairs, ``alreadyLogged`` when it already is,
``timeoutExpired`` after the 100 s window, and ``error`` for other states. The
consumer re-reads the instance every second and is also woken by state pushes from
``instances.events``; it never writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from engines import registry as engine_registry
from engines.contract import TransportError
from engines.registry import get_transport
from instances import events, ratelimit, registry
from instances.http import WireError, authenticate_instance
from instances.models import Instance, State

POLL_SECONDS = 1.0

log = logging.getLogger(__name__)


@database_sync_to_async
def _authenticate(id_instance: int, token: str) -> Instance:
    return authenticate_instance(id_instance, token)


@database_sync_to_async
def _reload(instance_id: int) -> Instance | None:
    return Instance.objects.filter(pk=instance_id, is_deleted=False).first()


def _qr(instance: Instance) -> tuple[int, str] | str:
    """The current code (rotation window, PNG), or why there is none yet (an engine
    whose codes come from a live session that has not reached WhatsApp)."""
    try:
        code = get_transport(instance).current_qr()
    except TransportError as exc:
        return str(exc)
    return code.window, code.png_base64


class ScanQrCodeConsumer(AsyncJsonWebsocketConsumer):
    instance_id: int = 0
    _wake: asyncio.Event
    _task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        if kwargs["method"].lower() != "scanqrcode":
            await self.close(code=4404)
            return
        try:
            instance = await _authenticate(int(kwargs["id_instance"]), kwargs["token"])
        except WireError as exc:
            await self.close(code=4000 + exc.status)
            return
        # allow() may talk to Redis: keep that blocking call off the event loop.
        allowed = await sync_to_async(ratelimit.allow, thread_sensitive=False)(
            instance.id, registry.BY_NAME["scanqrcode"]
        )
        if not allowed:
            await self.close(code=4429)
            return
        refused = engine_registry.refusal(instance.engine, "scanqrcode")
        if refused is not None:
            # Refused for good (4400): say why in an error frame, as for a failure.
            await self.accept()
            await self.send_json({"type": "error", "message": refused})
            await self.close(code=4400)
            return
        self.instance_id = instance.id
        self._wake = asyncio.Event()
        await self.channel_layer.group_add(events.instance_group(instance.id), self.channel_name)
        await self.accept()
        self._task = asyncio.create_task(self._run(instance))

    async def disconnect(self, code: int) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.instance_id:
            await self.channel_layer.group_discard(events.instance_group(self.instance_id), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        return None  # the protocol needs no client messages

    async def state_changed(self, event: dict[str, Any]) -> None:
        self._wake.set()

    async def _run(self, instance: Instance) -> None:
        """``_stream``, but a failure (database down) ends the socket with an error
        frame instead of leaving it open and silent until the client gives up."""
        try:
            await self._stream(instance)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - reported to the client, logged here
            log.exception("scanqrcode stream of instance %s failed", self.instance_id)
            with contextlib.suppress(Exception):
                await self._finish({"type": "error", "message": "Internal Server Error"})

    async def _stream(self, instance: Instance) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.QR_WEBSOCKET_WINDOW_SECONDS
        if instance.state == State.AUTHORIZED:
            await self._finish({"type": "alreadyLogged", "message": "instance account already authorized"})
            return
        last_window = None
        told_why = False
        while True:
            if instance.state == State.AUTHORIZED:
                await self._finish(
                    {
                        "type": "accountData",
                        "message": {
                            "wid": instance.wid,
                            "pushname": instance.profile_name,
                            "webhookUrl": instance.setting("webhookUrl"),
                        },
                    }
                )
                return
            if instance.state == State.NOT_AUTHORIZED:
                frame = await database_sync_to_async(_qr)(instance)
                if isinstance(frame, str):
                    # No code yet: say why once, and keep waiting for the session's codes.
                    if not told_why:
                        told_why = True
                        await self.send_json({"type": "error", "message": frame})
                    window, png = last_window, ""
                else:
                    window, png = frame
                if window != last_window:
                    last_window = window
                    await self.send_json({"type": "qrCode", "message": png})
            elif instance.state != State.STARTING:
                await self._finish({"type": "error", "message": "Instance has auth. You need to make log out"})
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                await self._finish({"type": "timeoutExpired", "message": "timeoutExpired"})
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(POLL_SECONDS, remaining))
            # Clear before re-reading: a push that arrives during the read wakes the
            # next wait at once instead of being lost until the next poll.
            self._wake.clear()
            fresh = await _reload(self.instance_id)
            if fresh is None:
                await self._finish({"type": "error", "message": "Instance is deleted"})
                return
            instance = fresh

    async def _finish(self, frame: dict[str, Any]) -> None:
        await self.send_json(frame)
        await self.close()
