"""The official Python SDK's VoIP client (``whatsapp_api_client_python`` 0.0.55,
``GreenAPI.voip``: async REST methods and the ``CallsConnection`` over callsRtc)
against the live server. Only the SDK's WebRTC media engine (aiortc, not installed)
is replaced, through the SDK's own ``bridge_factory`` hook: signalling, state
handling and the socket are the SDK's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from whatsapp_api_client_python import API
from whatsapp_api_client_python.tools.voip import CallAudio, CallInfo, CallsConnection, CallState

from engines.emulator import triggers as emulator_events
from instances.models import Instance
from instances.runner import Runner
from tests.conftest import LiveServer
from tests.journals.emulated import ticking_runner
from tests.messaging.calls_helpers import CONTACT, CONTACT_WID, journal, pair, with_contact

__all__ = ["ticking_runner"]

TIMEOUT = 15.0
OFFER_SDP = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\n"
    "a=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\na=sendrecv\r\n"
)


def client(live: LiveServer, instance: Instance) -> API.GreenAPI:
    return API.GreenAPI(str(instance.id), instance.api_token, host=live.url, media=live.url)


async def until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what} did not happen in time"
        await asyncio.sleep(0.1)


class FakeBridge:
    """Stands in for the SDK's AiortcBridge: offers a fixed SDP, records the answer."""

    def __init__(self, ice_servers: list[dict[str, Any]]) -> None:
        self.ice_servers = ice_servers
        self.remote: dict[str, Any] | None = None
        self.closed = False

    def add_track(self, track: Any) -> None:
        return None

    def on_track(self, callback: Any) -> None:
        return None

    async def create_offer(self) -> dict[str, str]:
        return {"type": "offer", "sdp": OFFER_SDP}

    async def set_local_description(self, offer: dict[str, str]) -> None:
        return None

    @property
    def local_description(self) -> dict[str, str]:
        return {"type": "offer", "sdp": OFFER_SDP}

    def local_candidates(self) -> list[dict[str, Any]]:
        return []

    async def set_remote_description(self, answer: dict[str, Any]) -> None:
        self.remote = answer

    async def add_ice_candidate(self, candidate: dict[str, Any]) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


async def silent_audio() -> CallAudio:
    async def nothing(*_: Any) -> None:
        return None

    return CallAudio(local_track=object(), on_remote_track=nothing, close=nothing)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _contacts_answer_at_once(settings: Any) -> None:
    settings.EMULATOR_CALL_ANSWER_AFTER_SECONDS = 0


async def test_the_rest_methods_between_two_instances(live_asgi: LiveServer) -> None:
    a, b = await sync_to_async(pair)()
    va, vb = client(live_asgi, a).voip, client(live_asgi, b).voip
    assert await va.getIceServersAsync() == []
    assert await va.getStateAsync() == CallState(state="idle")
    await va.dialAsync(b.phone)  # the SDK adds @c.us
    ringing = await vb.getStateAsync()
    assert ringing.state == "inc-call"
    assert ringing.info == CallInfo(id=ringing.info.id, wid=a.wid, name="Test Phone")  # type: ignore[union-attr]
    await vb.acceptAsync()
    assert (await va.getStateAsync()).state == "on-call"
    await va.hangUpAsync()
    assert await vb.getStateAsync() == CallState(state="idle", reason="hangup")
    await va.dialAsync(b.wid)
    await vb.rejectAsync()
    assert await va.getStateAsync() == CallState(state="idle", reason="rejected")
    with pytest.raises(RuntimeError, match="there is no call to hang up"):
        await va.hangUpAsync()


async def test_a_calls_connection_completes_with_a_simulated_contact(
    live_asgi: LiveServer, ticking_runner: Runner
) -> None:
    a = (await sync_to_async(pair)(a_phone="79330000601", b_phone="79330000602"))[0]
    await sync_to_async(with_contact)(a, rule="answer")
    voip = client(live_asgi, a).voip
    bridges: list[FakeBridge] = []

    def bridge(ice_servers: list[dict[str, Any]]) -> FakeBridge:
        bridges.append(FakeBridge(ice_servers))
        return bridges[-1]

    connection = CallsConnection(voip, audio_factory=silent_audio, bridge_factory=bridge)
    states: list[str] = []
    ended: list[dict[str, Any]] = []
    connection.on("state", lambda s: states.append(s.state))
    connection.on("end_call", ended.append)
    await connection.openAsync(timeout=TIMEOUT)
    try:
        await voip.dialAsync(CONTACT_WID)
        await until(lambda: _true(connection.state is not None and connection.state.state == "on-call"), "answer")
        await asyncio.wait_for(connection.startAudioAsync(), timeout=TIMEOUT)  # offer -> emulator's answer
        assert bridges[0].remote is not None and bridges[0].remote["type"] == "answer"
        assert "a=inactive" in bridges[0].remote["sdp"]
        assert connection.has_audio_bridge
        await voip.hangUpAsync()
        await until(lambda: _true(bool(ended)), "end_call")
        assert ended == [{"reason": "call-ended", "cause": "hangup"}]
        assert bridges[0].closed
        # out-call may be skipped: the contact answers within the same second.
        assert states[0] == "idle" and states[-2:] == ["on-call", "idle"]
    finally:
        await connection.closeAsync()
    await until(lambda: sync_to_async(lambda: journal(a) == [("outgoing", CONTACT_WID, "pickUp", 0)])(), "journal")


async def test_an_incoming_call_reaches_the_sdk(live_asgi: LiveServer, ticking_runner: Runner) -> None:
    a = (await sync_to_async(pair)(a_phone="79330000611", b_phone="79330000612"))[0]
    voip = client(live_asgi, a).voip
    connection = CallsConnection(voip, audio_factory=silent_audio, bridge_factory=FakeBridge)
    incoming: list[CallInfo] = []
    connection.on("incoming_call", incoming.append)
    await connection.openAsync(timeout=TIMEOUT)
    try:
        id_call = await sync_to_async(emulator_events.contact_calls)(a, phone=CONTACT, name="Carol")
        await until(lambda: _true(bool(incoming)), "incoming_call")
        assert incoming == [CallInfo(id=id_call, wid=CONTACT_WID, name="Carol")]
        await voip.acceptAsync()
        await until(lambda: _true(connection.state is not None and connection.state.state == "on-call"), "on-call")
    finally:
        await connection.closeAsync()


async def _true(value: bool) -> bool:
    return value
