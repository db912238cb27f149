"""sendVoiceStatus: audio from urlFile, cut to one minute (API.md §9.7)."""

from __future__ import annotations

import io
import wave
from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuStatus
from instances.models import Instance
from messaging import media
from messaging.audio import cut_audio
from messaging.models import MediaFile, OutgoingStatus
from tests.conftest import method_url
from tests.messaging.media_helpers import FileServer, MediaDirs, png_bytes
from tests.statuses.helpers import post, posted, poster

pytestmark = pytest.mark.django_db

# MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 417-byte frames of 1152 samples.
MP3_HEADER = b"\xff\xfb\x90\x00"
MP3_FRAME = MP3_HEADER + b"\x00" * 413
MP3_FRAME_SECONDS = 1152 / 44100


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(1)
        target.setframerate(rate)
        target.writeframes(b"\x80" * int(rate * seconds))
    return out.getvalue()


def wav_seconds(content: bytes) -> float:
    with wave.open(io.BytesIO(content), "rb") as source:
        return source.getnframes() / source.getframerate()


def mp3_bytes(seconds: float) -> bytes:
    return b"ID3\x03\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10 + MP3_FRAME * int(seconds / MP3_FRAME_SECONDS + 1)


@pytest.fixture
def allow_loopback(settings: Any) -> None:
    settings.MEDIA_FETCH_ALLOW_PRIVATE = True


def test_a_long_voice_is_cut_to_one_minute(
    api_client: APIClient, media_dirs: MediaDirs, file_server: FileServer, allow_loopback: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    instance = poster()
    url = file_server.add("/v/long.wav", wav_bytes(75), Content_Type="audio/wav")
    r = post(
        api_client, instance, "sendVoiceStatus", {"urlFile": url, "fileName": "long.wav", "backgroundColor": "#112233"},
        django_capture_on_commit_callbacks,
    )
    assert r.status_code == 200, r.content
    message = posted(instance, r.json()["idMessage"])
    assert message.status == OutgoingStatus.SENT, message.description
    assert message.type_message == "audioMessage"
    sent = MediaFile.objects.get(storage_name=message.payload["storageName"])
    with media.open_file(sent) as stored:
        assert wav_seconds(stored.read()) == 60.0
    status = EmuStatus.objects.get(id_message=message.id_message)
    assert status.message_data["typeMessage"] == "audioMessage"
    assert message.request["backgroundColor"] == "#112233"


def test_a_short_voice_is_posted_as_it_is(
    api_client: APIClient, media_dirs: MediaDirs, file_server: FileServer, allow_loopback: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    instance = poster()
    body = wav_bytes(5)
    url = file_server.add("/v/short.wav", body, Content_Type="audio/wav")
    r = post(api_client, instance, "sendVoiceStatus", {"urlFile": url, "fileName": "short.wav"}, django_capture_on_commit_callbacks)
    message = posted(instance, r.json()["idMessage"])
    assert message.status == OutgoingStatus.SENT
    assert MediaFile.objects.get().size == len(body)
    assert message.request["backgroundColor"] == "#FFFFFF"  # the voice default


def test_a_picture_is_not_a_voice(
    api_client: APIClient, media_dirs: MediaDirs, file_server: FileServer, allow_loopback: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    instance = poster()
    url = file_server.add("/v/a.png", png_bytes(), Content_Type="image/png")
    r = post(api_client, instance, "sendVoiceStatus", {"urlFile": url, "fileName": "a.mp3"}, django_capture_on_commit_callbacks)
    message = posted(instance, r.json()["idMessage"])
    assert message.status == OutgoingStatus.FAILED
    assert message.description == "A voice status must be an audio file, not image/png"


def test_mp3_is_cut_at_a_frame() -> None:
    cut = cut_audio(mp3_bytes(70), 60)
    assert cut is not None
    frames = (len(cut) - 20) / len(MP3_FRAME)
    assert frames == int(60 / MP3_FRAME_SECONDS)
    assert cut_audio(mp3_bytes(30), 60) is None
    assert cut_audio(b"OggS" + b"\x00" * 100, 60) is None  # not measurable: left as it is


def test_it_rejects_invalid_input(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(
        method_url(authorized_instance, "sendVoiceStatus"), {"urlFile": "https://example.com/v.mp3"}, format="json"
    )
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'fileName' is required"
