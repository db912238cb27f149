"""WebSocket ``/waInstance{id}/callsRtc/{token}`` (API.md §9.13).

Server -> client frames: ``{"type": "state", "state": <callsState object>}`` on
connect and whenever the call state changes; ``{"type": "answer", "answer": <SDP>}``
and ``{"type": "ice-candidate", "candidate": ...}`` from the other side;
``{"type": "error", "message": ...}`` for a frame that cannot be handled.
Client -> server: ``offer``, ``ice-candidate``, ``stop``.

Between two instances on this server the frames are relayed: an ``offer`` reaches
the other instance's sockets as ``{"type": "offer", "offer": ...}`` and that
client's ``{"type": "answer", "answer": ...}`` comes back (both Relay additions:
GREEN-API's own peer is WhatsApp). With a simulated contact the emulator answers
the offer itself. No media flows through Relay. Authentication and close codes are
those of scanqrcode (4401, 4403); the consumer never writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from engines import registry as engine_registry
from engines.contract import CallStatus
from instances import events
from instances.http import WireError, authenticate_instance
from instances.models import Instance
from messaging import calls

POLL_SECONDS = 1.0

log = logging.getLogger(__name__)


@database_sync_to_async
def _authenticate(id_instance: int, token: str) -> Instance:
    return authenticate_instance(id_instance, token)


@database_sync_to_async
def _status(instance_id: int) -> tuple[Instance, CallStatus]:
    instance = Instance.objects.get(pk=instance_id)
    return instance, calls.calls_state(instance)


@database_sync_to_async
def _peers(instance: Instance, status: CallStatus) -> list[int]:
    return calls.peer_instance_ids(instance, status)


@database_sync_to_async
def _answer(instance: Instance, offer: dict[str, Any]) -> dict[str, str] | None:
    return calls.answer_offer(instance, offer)


class CallsRtcConsumer(AsyncJsonWebsocketConsumer):
    instance_id: int = 0
    _wake: asyncio.Event
    _task: asyncio.Task[None] | None = None
    _id_call: str = ""

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            instance = await _authenticate(int(kwargs["id_instance"]), kwargs["token"])
        except WireError as exc:
            await self.close(code=4000 + exc.status)
            return
        try:
            refused = engine_registry.refusal(instance.engine, "callsRtc")
            if refused is not None:
                raise calls.CallsUnsupported(instance.engine, refused)
            await _status(instance.id)
        except (calls.CallRefused, calls.CallsUnsupported) as exc:
            # Refused for good (4xxx): the SDK stops reconnecting and reports this.
            await self.accept()
            await self.send_json({"type": "error", "message": str(exc)})
            await self.close(code=4400)
            return
        self.instance_id = instance.id
        self._wake = asyncio.Event()
        await self.channel_layer.group_add(events.calls_group(instance.id), self.channel_name)
        await self.accept()
        self._task = asyncio.create_task(self._run())

    async def disconnect(self, code: int) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.instance_id:
            await self.channel_layer.group_discard(events.calls_group(self.instance_id), self.channel_name)

    async def calls_changed(self, event: dict[str, Any]) -> None:
        self._wake.set()

    async def call_frame(self, event: dict[str, Any]) -> None:
        """A signalling frame the other instance's client sent for our current call."""
        if event.get("id_call") and event["id_call"] == self._id_call:
            await self.send_json(event["frame"])

    async def _run(self) -> None:
        """Send a state frame now and after every change (woken by pushes, and
        re-reading every second in case a push was lost)."""
        last: dict[str, Any] | None = None
        try:
            while True:
                self._wake.clear()
                try:
                    _, status = await _status(self.instance_id)
                except (calls.CallRefused, calls.CallsUnsupported) as exc:
                    await self.send_json({"type": "error", "message": str(exc)})
                    await self.close(code=4400)
                    return
                self._id_call = status.id_call
                body = calls.state_body(status)
                if body != last:
                    last = body
                    await self.send_json({"type": "state", "state": body})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=POLL_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - reported to the client, logged here
            log.exception("callsRtc stream of instance %s failed", self.instance_id)
            with contextlib.suppress(Exception):
                await self.send_json({"type": "error", "message": "Internal Server Error"})
                await self.close()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind not in ("offer", "answer", "ice-candidate", "stop"):
            await self._error("frame type must be offer, answer, ice-candidate or stop")
            return
        if kind == "stop":
            return  # the client closed its media bridge; the call goes on until callsHangUp
        key = "candidate" if kind == "ice-candidate" else kind
        payload = content.get(key)
        if not isinstance(payload, dict):
            await self._error(f"'{key}' must be an object")
            return
        try:
            instance, status = await _status(self.instance_id)
            if status.state == "idle":
                await self._error("there is no call to negotiate")
                return
            if kind == "offer":
                answer = await _answer(instance, payload)
                if answer is not None:  # the emulator plays the other side
                    await self.send_json({"type": "answer", "answer": answer})
                    return
            peers = await _peers(instance, status)
        except (calls.CallRefused, calls.CallsUnsupported) as exc:
            await self._error(str(exc))
            return
        for peer in peers:
            await events.relay_call_frame(peer, status.id_call, {"type": kind, key: payload})

    async def _error(self, message: str) -> None:
        await self.send_json({"type": "error", "message": message})
