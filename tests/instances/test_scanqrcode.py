"""WebSocket ``/waInstance{id}/scanqrcode/{token}``: QR frames, rotation, pairing,
already-logged, timeout and refusals. Each flow runs in-process with Channels'
``WebsocketCommunicator`` and, where it matters, through a real server with the
``websockets`` client."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from engines.emulator import pairing
from engines.emulator.transport import EmulatorTransport
from instances import services
from instances.models import Instance, State
from instances.runner import Runner
from tests.conftest import LiveServer
from tests.factories import make_instance

pytestmark = pytest.mark.django_db(transaction=True)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIMEOUT = 10.0  # generous: CI machines run several suites at once


def ws_path(instance: Instance, token: str | None = None, method: str = "scanqrcode") -> str:
    return f"/waInstance{instance.id}/{method}/{token if token is not None else instance.api_token}"


def assert_qr_frame(frame: dict[str, Any]) -> str:
    assert frame["type"] == "qrCode", frame
    assert base64.b64decode(frame["message"]).startswith(PNG_MAGIC)
    return str(frame["message"])


@sync_to_async
def new_instance(**kwargs: Any) -> Instance:
    return make_instance(**kwargs)


@sync_to_async
def scan_and_tick(instance: Instance, phone: str, name: str) -> None:
    """The phone scans (pairing.link_phone) and a session runner finishes the connect."""
    pairing.link_phone(Instance.objects.get(pk=instance.pk), phone=phone, name=name)
    runner = Runner(runner_id="test-runner", ttl=30)
    runner.tick()
    runner.shutdown()


@sync_to_async
def set_webhook(instance: Instance, url: str) -> None:
    services.update_settings(instance, {"webhookUrl": url})


async def receive_until(communicator: WebsocketCommunicator, wanted: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Skip qrCode frames until a frame of type ``wanted`` arrives (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, f"no {wanted} frame within {timeout}s"
        frame: dict[str, Any] = await communicator.receive_json_from(timeout=remaining)
        if frame["type"] == wanted:
            return frame
        assert frame["type"] == "qrCode", frame


async def assert_closed(communicator: WebsocketCommunicator) -> None:
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output["type"] == "websocket.close", output


# --- In-process (WebsocketCommunicator) --------------------------------------------------


async def test_first_frame_is_a_qr_png() -> None:
    instance = await new_instance()
    communicator = WebsocketCommunicator(application, ws_path(instance))
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert_qr_frame(await communicator.receive_json_from(timeout=TIMEOUT))
    await communicator.disconnect()


async def test_method_segment_is_case_insensitive() -> None:
    instance = await new_instance()
    communicator = WebsocketCommunicator(application, ws_path(instance, method="ScanQrCode"))
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    assert_qr_frame(await communicator.receive_json_from(timeout=TIMEOUT))
    await communicator.disconnect()


async def test_a_new_qr_frame_follows_rotation(settings: Any) -> None:
    settings.EMULATOR_QR_ROTATE_SECONDS = 1
    instance = await new_instance()
    communicator = WebsocketCommunicator(application, ws_path(instance))
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    first = assert_qr_frame(await communicator.receive_json_from(timeout=TIMEOUT))
    second = assert_qr_frame(await communicator.receive_json_from(timeout=TIMEOUT))
    assert second != first
    await communicator.disconnect()


async def test_no_new_frame_without_rotation(settings: Any) -> None:
    settings.EMULATOR_QR_ROTATE_SECONDS = 3600
    instance = await new_instance()
    communicator = WebsocketCommunicator(application, ws_path(instance))
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    assert_qr_frame(await communicator.receive_json_from(timeout=TIMEOUT))
    # The consumer polls every second; an unchanged code must not be re-sent.
    assert await communicator.receive_nothing(timeout=2.5)
    await communicator.disconnect()


async def test_scan_sends_account_data_then_closes() -> None:
    instance = await new_instance()
    await set_webhook(instance, "https://example.com/hook")
    communicator = WebsocketCommunicator(application, ws_path(instance))
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    assert_qr_frame(await communicator.receive_json_from(timeout=TIMEOUT))

    await scan_and_tick(instance, "79001234567", "Alice")

    frame = await receive_until(communicator, "accountData")
    assert frame["message"] == {
        "wid": "79001234567@c.us",
        "pushname": "Alice",
        "webhookUrl": "https://example.com/hook",
    }
    await assert_closed(communicator)


async def test_authorized_instance_gets_already_logged_then_close() -> None:
    instance = await new_instance(authorized=True)
    communicator = WebsocketCommunicator(application, ws_path(instance))
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame == {"type": "alreadyLogged", "message": "instance account already authorized"}
    await assert_closed(communicator)


async def test_window_elapses_with_timeout_expired(settings: Any) -> None:
    settings.QR_WEBSOCKET_WINDOW_SECONDS = 2
    settings.EMULATOR_QR_ROTATE_SECONDS = 3600
    instance = await new_instance()
    communicator = WebsocketCommunicator(application, ws_path(instance))
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    assert_qr_frame(await communicator.receive_json_from(timeout=TIMEOUT))
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame == {"type": "timeoutExpired", "message": "timeoutExpired"}
    await assert_closed(communicator)


async def test_blocked_instance_gets_error_then_close() -> None:
    instance = await new_instance(authorized=True)
    await sync_to_async(pairing.set_state_for_testing)(instance, State.BLOCKED)
    communicator = WebsocketCommunicator(application, ws_path(instance))
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "error"
    await assert_closed(communicator)


async def test_deleted_while_streaming_gets_error() -> None:
    instance = await new_instance()
    communicator = WebsocketCommunicator(application, ws_path(instance))
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    assert_qr_frame(await communicator.receive_json_from(timeout=TIMEOUT))
    await sync_to_async(services.delete_instance)(instance)
    frame = await receive_until(communicator, "error")
    assert frame["message"] == "Instance is deleted"
    await assert_closed(communicator)


@pytest.mark.parametrize("case", ["bad-token", "unknown-instance", "unknown-method", "suspended"])
async def test_refused_connections(case: str) -> None:
    instance = await new_instance()
    path = ws_path(instance)
    if case == "bad-token":
        path = ws_path(instance, token="0" * 50)
    elif case == "unknown-instance":
        path = f"/waInstance1{instance.id}/scanqrcode/{instance.api_token}"
    elif case == "unknown-method":
        path = ws_path(instance, method="scanqrcodes")
    else:
        await sync_to_async(services.set_suspended)(instance, True)
    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert not connected
    await communicator.disconnect()


# --- Real server (uvicorn) + websockets client --------------------------------------------


async def ws_json(ws: websockets.ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout=timeout))
    return frame


async def assert_ws_closed(ws: websockets.ClientConnection) -> None:
    with pytest.raises(websockets.ConnectionClosedOK):
        await asyncio.wait_for(ws.recv(), timeout=TIMEOUT)


async def test_live_qr_rotation_and_case_insensitive_method(live_asgi: LiveServer, settings: Any) -> None:
    settings.EMULATOR_QR_ROTATE_SECONDS = 1
    instance = await new_instance()
    async with websockets.connect(live_asgi.ws_url + ws_path(instance, method="ScanQrCode")) as ws:
        first = assert_qr_frame(await ws_json(ws))
        second = assert_qr_frame(await ws_json(ws))
    assert first != second


async def test_live_scan_via_control_api_sends_account_data(live_asgi: LiveServer, settings: Any) -> None:
    settings.EMULATOR_QR_ROTATE_SECONDS = 3600
    instance = await new_instance()
    qr_text = EmulatorTransport(instance).current_qr().text
    async with websockets.connect(live_asgi.ws_url + ws_path(instance)) as ws:
        assert_qr_frame(await ws_json(ws))
        async with httpx.AsyncClient(base_url=live_asgi.url, timeout=TIMEOUT) as http:
            r = await http.post(
                f"/api/v1/emulator/instances/{instance.id}/scan-qr",
                json={"phoneNumber": "79007654321", "name": "Bob", "qr": qr_text},
                headers={"Authorization": f"Bearer {instance.api_token}"},
            )
        assert r.status_code == 200, r.text
        assert r.json() == {"result": True, "stateInstance": "starting"}
        await sync_to_async(lambda: Runner(runner_id="live-runner", ttl=30).tick())()
        frame = await ws_json(ws)
        assert frame["type"] == "accountData", frame
        assert frame["message"]["wid"] == "79007654321@c.us"
        assert frame["message"]["pushname"] == "Bob"
        assert "webhookUrl" in frame["message"]
        await assert_ws_closed(ws)


async def test_live_already_logged(live_asgi: LiveServer) -> None:
    instance = await new_instance(authorized=True)
    async with websockets.connect(live_asgi.ws_url + ws_path(instance)) as ws:
        assert (await ws_json(ws))["type"] == "alreadyLogged"
        await assert_ws_closed(ws)


async def test_live_timeout_expired(live_asgi: LiveServer, settings: Any) -> None:
    settings.QR_WEBSOCKET_WINDOW_SECONDS = 2
    settings.EMULATOR_QR_ROTATE_SECONDS = 3600
    instance = await new_instance()
    async with websockets.connect(live_asgi.ws_url + ws_path(instance)) as ws:
        assert_qr_frame(await ws_json(ws))
        assert await ws_json(ws) == {"type": "timeoutExpired", "message": "timeoutExpired"}
        await assert_ws_closed(ws)


@pytest.mark.parametrize("case", ["bad-token", "unknown-instance"])
async def test_live_refused(live_asgi: LiveServer, case: str) -> None:
    instance = await new_instance()
    if case == "bad-token":
        path = ws_path(instance, token="f" * 50)
    else:
        path = f"/waInstance9{instance.id}/scanqrcode/{instance.api_token}"
    with pytest.raises(websockets.InvalidStatus) as excinfo:
        async with websockets.connect(live_asgi.ws_url + path, open_timeout=TIMEOUT):
            pass
    assert excinfo.value.response.status_code == 403


async def test_stream_failure_ends_with_an_error_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    instance = await new_instance()

    async def broken_reload(instance_id: int) -> Instance | None:
        raise RuntimeError("database unavailable")

    monkeypatch.setattr("instances.consumers._reload", broken_reload)
    communicator = WebsocketCommunicator(application, ws_path(instance))
    assert (await communicator.connect(timeout=TIMEOUT))[0]
    assert_qr_frame(await communicator.receive_json_from(timeout=TIMEOUT))
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert frame == {"type": "error", "message": "Internal Server Error"}
    await assert_closed(communicator)
