"""The official GREEN-API Python SDK drives the seven status methods of a live
server, with its sync and its async calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from whatsapp_api_client_python import API

from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from messaging import services as messaging_services
from messaging.models import PENDING_STATUSES, OutgoingMessage
from tests.conftest import LiveServer
from tests.factories import make_instance
from tests.journals.emulated import set_flags, tick, wait_for
from tests.messaging.media_helpers import FileServer, MediaDirs, png_bytes
from tests.statuses.test_send_voice_status import wav_bytes


def sdk(live: LiveServer, instance: Instance) -> API.GreenAPI:
    return API.GreenAPI(str(instance.id), instance.api_token, host=live.url, media=live.url)


def ok(response: Any) -> Any:
    assert response.code == 200, response.error
    return response.data


def left_queue(instance: Instance, answer: Any) -> str:
    id_message = str(answer["idMessage"])
    rows = OutgoingMessage.objects.filter(instance=instance, id_message=id_message)
    wait_for(lambda: not rows.filter(status__in=PENDING_STATUSES).exists())
    return id_message


@pytest.fixture
def pair(live_asgi: LiveServer, settings: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Instance, Instance]:
    # Queue pacing is tested elsewhere; here each status leaves the queue at once
    # (inline drains have no clock to come back after the 5 s file interval).
    monkeypatch.setattr(messaging_services, "FILE_MIN_INTERVAL_MS", 0)
    settings.EMULATOR_STATUS_DELIVERED_AFTER_SECONDS = 3600
    settings.MEDIA_FETCH_ALLOW_PRIVATE = True
    a = set_flags(make_instance(authorized=True, phone="79250000001"), delaySendMessagesMilliseconds=0)
    b = set_flags(make_instance(authorized=True, phone="79250000002"), markIncomingMessagesReaded=True)
    add_simulated_contact(owner_phone=a.phone, phone=b.phone, name="Bee")
    return a, b


def test_sync_status_calls(
    live_asgi: LiveServer, pair: tuple[Instance, Instance], media_dirs: MediaDirs, file_server: FileServer
) -> None:
    a, b = pair
    poster, viewer = sdk(live_asgi, a).statuses, sdk(live_asgi, b).statuses
    text = left_queue(a, ok(poster.sendTextStatus("From the SDK", "#228B22", "SERIF")))
    picture = file_server.add("/p.png", png_bytes(), Content_Type="image/png")
    media = left_queue(a, ok(poster.sendMediaStatus(picture, "p.png", "caption", [b.wid])))
    voice_url = file_server.add("/v.wav", wav_bytes(3), Content_Type="audio/wav")
    voice = left_queue(a, ok(poster.sendVoiceStatus(voice_url, "v.wav", "#FFFFFF", [b.wid])))
    tick()
    got = ok(viewer.getIncomingStatuses())
    assert [s["idMessage"] for s in got] == [voice, media, text]
    assert got[2]["extendedTextMessage"] == {"text": "From the SDK", "backgroundColor": "#228B22", "font": "SERIF"}
    assert got[1]["typeMessage"] == "imageMessage" and got[1]["caption"] == "caption"
    assert [s["idMessage"] for s in ok(viewer.getIncomingStatuses(60))] == [voice, media, text]
    assert ok(poster.getStatusStatistic(text)) == [
        {"timestamp": ok(poster.getStatusStatistic(text))[0]["timestamp"], "participant": b.wid, "status": "read"}
    ]
    outgoing = ok(poster.getOutgoingStatuses())
    assert [(s["idMessage"], s["typeMessage"]) for s in outgoing] == [
        (voice, "audioMessage"),
        (media, "imageMessage"),
        (text, "extendedTextMessage"),
    ]
    assert ok(poster.getOutgoingStatuses(30))[0]["participants"] == [b.wid]
    response = poster.deleteStatus(text)
    assert response.code == 200
    tick()
    assert [s["idMessage"] for s in ok(viewer.getIncomingStatuses())] == [voice, media]


def test_async_status_calls(live_asgi: LiveServer, pair: tuple[Instance, Instance]) -> None:
    a, b = pair
    poster, viewer = sdk(live_asgi, a).statuses, sdk(live_asgi, b).statuses

    async def post() -> Any:
        return await poster.sendTextStatusAsync("async", "#000000", "BRYNDAN_WRITE", [b.wid])

    text = left_queue(a, ok(asyncio.run(post())))
    tick()
    assert [s["idMessage"] for s in ok(asyncio.run(viewer.getIncomingStatusesAsync()))] == [text]
    assert [s["idMessage"] for s in ok(asyncio.run(viewer.getIncomingStatusesAsync(90)))] == [text]
    assert [s["idMessage"] for s in ok(asyncio.run(poster.getOutgoingStatusesAsync(90)))] == [text]
    # getStatusStatisticAsync is not called: SDK 0.0.55 builds its URL with an
    # f-string, so "{{host}}" becomes "{host}" and the request never leaves the client.
    assert asyncio.run(poster.deleteStatusAsync(text)).code == 200
    assert ok(asyncio.run(poster.getOutgoingStatusesAsync()))[0]["isDeleted"] is True
    for call in (
        poster.sendMediaStatusAsync("ftp://nowhere/x.png", "x.png"),
        poster.sendVoiceStatusAsync("ftp://nowhere/x.wav", "x.wav"),
    ):
        assert asyncio.run(call).code == 400
