"""WebSocket ``/waInstance{id}/callsRtc/{token}`` through the live ASGI server: state
frames on both sides of a call, offer/answer/ICE relayed between two instances, the
emulator answering for a simulated contact, and refusals."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async

from instances.models import Instance
from tests.conftest import LiveServer, method_url
from tests.factories import make_instance
from tests.messaging.calls_helpers import CONTACT_WID, pair, with_contact

TIMEOUT = 10.0
OFFER_SDP = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=ice-ufrag:abcd\r\n"
    "a=ice-pwd:0123456789abcdef012345\r\na=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\na=sendrecv\r\n"
)
OFFER = {"type": "offer", "sdp": OFFER_SDP}
CANDIDATE = {"candidate": "candidate:1 1 UDP 2122252543 127.0.0.1 40000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


def rtc_url(live: LiveServer, instance: Instance, method: str = "callsRtc", token: str | None = None) -> str:
    return f"{live.ws_url}/waInstance{instance.id}/{method}/{token or instance.api_token}"


async def api(live: LiveServer, instance: Instance, method: str, body: Any = None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        url = f"{live.url}{method_url(instance, method)}"
        if method == "callsState":
            return await client.get(url)
        return await client.post(url, json=body) if body is not None else await client.post(url)


async def frame(ws: Any, wanted: str | None = None) -> dict[str, Any]:
    """The next frame (of type ``wanted``, skipping others), within TIMEOUT."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"no {wanted} frame in time"
        got: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=remaining))
        if wanted is None or got["type"] == wanted:
            return got


async def state_frame(ws: Any, state: str) -> dict[str, Any]:
    """Skip state frames until one in ``state`` arrives."""
    while True:
        got = await frame(ws, "state")
        if got["state"]["state"] == state:
            return got


@pytest.fixture(autouse=True)
def _contacts_answer_at_once(settings: Any) -> None:
    settings.EMULATOR_CALL_ANSWER_AFTER_SECONDS = 0


async def test_both_sides_see_the_state_machine(live_asgi: LiveServer) -> None:
    a, b = await sync_to_async(pair)()
    async with websockets.connect(rtc_url(live_asgi, a)) as wa, websockets.connect(rtc_url(live_asgi, b)) as wb:
        assert await frame(wa) == {"type": "state", "state": {"state": "idle", "info": None, "reason": None}}
        await state_frame(wb, "idle")
        assert (await api(live_asgi, a, "callsDial", {"chatId": b.wid})).status_code == 200
        out = await state_frame(wa, "out-call")
        inc = await state_frame(wb, "inc-call")
        assert out["state"]["info"]["wid"] == b.wid
        assert inc["state"]["info"]["wid"] == a.wid
        assert inc["state"]["info"]["id"] == out["state"]["info"]["id"]
        assert (await api(live_asgi, b, "callsAccept")).status_code == 200
        await state_frame(wa, "on-call")
        await state_frame(wb, "on-call")
        assert (await api(live_asgi, a, "callsHangUp")).status_code == 200
        ended = await state_frame(wb, "idle")
        assert ended["state"] == {"state": "idle", "info": None, "reason": "hangup"}
        assert (await state_frame(wa, "idle"))["state"]["reason"] == "hangup"


async def test_signalling_is_relayed_between_instances(live_asgi: LiveServer) -> None:
    a, b = await sync_to_async(pair)(a_phone="79330000501", b_phone="79330000502")
    async with websockets.connect(rtc_url(live_asgi, a)) as wa, websockets.connect(rtc_url(live_asgi, b)) as wb:
        await api(live_asgi, a, "callsDial", {"chatId": b.wid})
        await api(live_asgi, b, "callsAccept")
        await state_frame(wa, "on-call")
        await state_frame(wb, "on-call")
        await wa.send(json.dumps({"type": "offer", "offer": OFFER}))
        assert await frame(wb, "offer") == {"type": "offer", "offer": OFFER}
        answer = {"type": "answer", "sdp": "v=0\r\n"}
        await wb.send(json.dumps({"type": "answer", "answer": answer}))
        assert await frame(wa, "answer") == {"type": "answer", "answer": answer}
        await wb.send(json.dumps({"type": "ice-candidate", "candidate": CANDIDATE}))
        assert await frame(wa, "ice-candidate") == {"type": "ice-candidate", "candidate": CANDIDATE}


async def test_the_emulator_answers_for_a_simulated_contact(live_asgi: LiveServer) -> None:
    a = await sync_to_async(make_instance)(authorized=True, phone="79330000511")
    await sync_to_async(with_contact)(a, rule="silent")
    async with websockets.connect(rtc_url(live_asgi, a, method="CallsRTC")) as wa:  # any case
        await state_frame(wa, "idle")
        await api(live_asgi, a, "callsDial", {"chatId": CONTACT_WID})
        await state_frame(wa, "out-call")
        await wa.send(json.dumps({"type": "offer", "offer": OFFER}))
        got = await frame(wa, "answer")
        sdp = got["answer"]["sdp"]
        assert got["answer"]["type"] == "answer"
        assert "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" in sdp
        assert "a=mid:0\r\n" in sdp and "a=group:BUNDLE 0\r\n" in sdp
        assert "a=inactive\r\n" in sdp  # no media flows in the emulator
        await wa.send(json.dumps({"type": "offer", "offer": {"type": "answer"}}))
        assert "offer must be" in (await frame(wa, "error"))["message"]
        await wa.send(json.dumps({"type": "stop"}))  # closing the media bridge keeps the call
        assert (await api(live_asgi, a, "callsState")).json()["state"] == "out-call"


async def test_bad_frames_get_error_frames(live_asgi: LiveServer) -> None:
    a = await sync_to_async(make_instance)(authorized=True)
    async with websockets.connect(rtc_url(live_asgi, a)) as wa:
        await state_frame(wa, "idle")
        await wa.send(json.dumps({"type": "dance"}))
        assert (await frame(wa, "error"))["message"] == "frame type must be offer, answer, ice-candidate or stop"
        await wa.send(json.dumps({"type": "offer", "offer": "sdp"}))
        assert (await frame(wa, "error"))["message"] == "'offer' must be an object"
        await wa.send(json.dumps({"type": "offer", "offer": OFFER}))
        assert (await frame(wa, "error"))["message"] == "there is no call to negotiate"


@pytest.mark.parametrize("kind", ["token", "instance"])
async def test_refusals_are_those_of_scanqrcode(live_asgi: LiveServer, kind: str) -> None:
    a = await sync_to_async(make_instance)(authorized=True)
    url = rtc_url(live_asgi, a, token="0" * 50) if kind == "token" else rtc_url(live_asgi, a).replace(
        f"waInstance{a.id}", "waInstance9999999999"
    )
    # Closed before the handshake completes: the server answers the upgrade with 403.
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, open_timeout=TIMEOUT):
            pass
    assert refused.value.response.status_code == 403


async def test_an_unauthorized_instance_is_told_and_refused(live_asgi: LiveServer) -> None:
    idle = await sync_to_async(make_instance)()
    async with websockets.connect(rtc_url(live_asgi, idle)) as ws:
        assert await frame(ws) == {"type": "error", "message": "instance is starting or not authorized"}
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=TIMEOUT)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
