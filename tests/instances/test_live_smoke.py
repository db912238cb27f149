import json

import pytest
import websockets
from whatsapp_api_client_python import API

from instances.models import Instance
from tests.conftest import LiveServer
from tests.factories import make_instance


def test_sdk_reads_state(live_asgi: LiveServer) -> None:
    instance: Instance = make_instance(authorized=True)
    client = API.GreenAPI(str(instance.id), instance.api_token, host=live_asgi.url, media=live_asgi.url)
    r = client.account.getStateInstance()
    assert r.code == 200
    assert r.data == {"stateInstance": "authorized"}


@pytest.mark.asyncio
async def test_ws_qr_first_frame(live_asgi: LiveServer) -> None:
    from asgiref.sync import sync_to_async

    instance = await sync_to_async(make_instance)()
    async with websockets.connect(f"{live_asgi.ws_url}/waInstance{instance.id}/scanqrcode/{instance.api_token}") as ws:
        frame = json.loads(await ws.recv())
    assert frame["type"] == "qrCode"
    assert len(frame["message"]) > 100
