import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from whatsapp_api_client_python import API

from engines.emulator.models import EmuMessage
from instances.models import Instance
from messaging.models import MediaFile, OutgoingMessage, OutgoingStatus
from tests.conftest import LiveServer, method_url
from tests.factories import make_instance
from tests.messaging.media_helpers import (
    CHAT_ID,
    MIB,
    MediaDirs,
    pdf_bytes,
    png_bytes,
)


def send(client: APIClient, instance: Instance, form: dict[str, Any], method: str = "sendFileByUpload", **headers: str) -> Any:
    return client.post(method_url(instance, method), form, format="multipart", headers=headers)


def a_file(body: bytes, name: str = "photo.png", content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, body, content_type=content_type)


def test_it_stores_queues_and_delivers(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs, django_capture_on_commit_callbacks: Any
) -> None:
    body = png_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        r = send(api_client, authorized_instance, {"chatId": recipient, "file": a_file(body), "caption": "look"})
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"idMessage", "urlFile"}
    assert re.fullmatch(r"[0-9A-F]{16}", r.json()["idMessage"])
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert message.is_file
    assert message.type_message == "imageMessage"
    assert message.status == OutgoingStatus.SENT
    media_file = MediaFile.objects.get()
    assert media_file.mime_type == "image/png"
    assert [p.read_bytes() for p in media_dirs.stored()] == [body]
    network = EmuMessage.objects.get(sender=authorized_instance.phone, id_message=message.id_message)
    assert network.type_message == "imageMessage"
    assert network.payload["storageName"] == media_file.storage_name
    assert network.payload["urlFile"] == r.json()["urlFile"]
    assert network.payload["fileName"] == "photo.png"
    assert network.payload["mimeType"] == "image/png"
    assert network.payload["caption"] == "look"
    assert message.request["urlFile"] == r.json()["urlFile"]


def test_the_link_serves_the_file(api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs) -> None:
    body = pdf_bytes()
    r = send(api_client, authorized_instance, {"chatId": recipient, "file": a_file(body, "report.pdf", "application/pdf")})
    path = r.json()["urlFile"].removeprefix("http://media.relay.test")
    download = api_client.get(path)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == body
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"] == 'attachment; filename="report.pdf"'


@pytest.mark.parametrize(
    ("body", "name", "mime", "type_message"),
    [
        (png_bytes(), "x.pdf", "image/png", "imageMessage"),  # the content decides, not the name
        (pdf_bytes(), "scan.png", "application/pdf", "documentMessage"),
        (b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\0" * 64, "voice.bin", "audio/mpeg", "audioMessage"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\0" * 64, "clip.dat", "video/mp4", "videoMessage"),
        (b"plain words", "notes.txt", "text/plain", "documentMessage"),
    ],
)
def test_the_message_type_follows_the_detected_type(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    body: bytes, name: str, mime: str, type_message: str,
) -> None:
    r = send(api_client, authorized_instance, {"chatId": recipient, "file": a_file(body, name, "application/octet-stream")})
    assert r.status_code == 200, r.content
    assert MediaFile.objects.get().mime_type == mime
    assert OutgoingMessage.objects.get().type_message == type_message


def test_file_name_field_overrides_the_part_name(api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs) -> None:
    r = send(api_client, authorized_instance, {"chatId": recipient, "file": a_file(png_bytes(), "tmp123"), "fileName": "../../etc/cat.png"})
    assert r.status_code == 200
    assert r.json()["urlFile"].endswith("/cat.png")
    message = OutgoingMessage.objects.get()
    assert message.payload["fileName"] == "cat.png"
    assert re.fullmatch(r"\d+/[0-9a-f]{32}\.png", message.payload["storageName"])


def test_it_shows_in_the_queue_until_sent(api_client: APIClient, instance: Instance, recipient: str, media_dirs: MediaDirs) -> None:
    r = send(api_client, instance, {"chatId": recipient, "file": a_file(png_bytes()), "typingTime": "2000"})
    assert r.status_code == 200
    queue = api_client.get(method_url(instance, "showMessagesQueue")).json()
    assert queue[0]["type"] == "sendFileByUpload"
    assert queue[0]["body"]["urlFile"] == r.json()["urlFile"]
    assert queue[0]["body"]["typingTime"] == 2000


def test_idempotency_key_returns_the_first_message_and_stores_once(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs
) -> None:
    a = send(api_client, authorized_instance, {"chatId": recipient, "file": a_file(png_bytes())}, **{"Idempotency-Key": "f-1"}).json()
    b = send(api_client, authorized_instance, {"chatId": recipient, "file": a_file(png_bytes())}, **{"Idempotency-Key": "f-1"}).json()
    assert a == b
    assert MediaFile.objects.count() == 1


def test_it_refuses_a_file_over_the_limit_and_keeps_nothing(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs, settings: Any
) -> None:
    settings.MEDIA_MAX_BYTES = MIB
    r = send(api_client, authorized_instance, {"chatId": recipient, "file": a_file(b"\0" * (MIB + 10), "big.bin")})
    assert r.status_code == 413
    assert re.fullmatch(r"File exceeded max upload size\. Size: \d+mb Limit: 1mb", r.json()["message"])
    assert not MediaFile.objects.exists()
    assert not OutgoingMessage.objects.exists()
    assert media_dirs.stored() == []
    assert media_dirs.temporary() == []


def test_a_declared_length_far_over_the_limit_is_refused_before_parsing(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs, settings: Any
) -> None:
    settings.MEDIA_MAX_BYTES = MIB
    r = send(api_client, authorized_instance, {"chatId": recipient, "file": a_file(b"\0" * (3 * MIB), "big.bin")})
    assert r.status_code == 413
    # The whole body's declared length (3 MB + form overhead, rounded up), not the
    # bytes seen by a parser.
    assert r.json()["message"] == "File exceeded max upload size. Size: 4mb Limit: 1mb"
    assert media_dirs.temporary() == []


@pytest.mark.parametrize(
    ("form", "detail"),
    [
        ({"file": True}, "'chatId' is required"),
        ({"chatId": "", "file": True}, "'chatId' is not allowed to be empty"),
        ({"chatId": "123@s.whatsapp.net", "file": True}, "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'"),
        ({"chatId": CHAT_ID}, "'file' is required"),
        ({"chatId": CHAT_ID, "file": "not a file"}, "'file' must be a file"),
        ({"chatId": CHAT_ID, "file": "empty"}, "'file' is not allowed to be empty"),
        ({"chatId": CHAT_ID, "file": True, "caption": "x" * 20_001}, "'caption' length must be less than or equal to 20000 characters long"),
        ({"chatId": CHAT_ID, "file": True, "typingTime": "999"}, "'typingTime' must be larger than or equal to 1000"),
        ({"chatId": CHAT_ID, "file": True, "typingTime": "20001"}, "'typingTime' must be less than or equal to 20000"),
        ({"chatId": CHAT_ID, "file": True, "typingTime": "soon"}, "'typingTime' must be a number"),
        ({"chatId": CHAT_ID, "file": True, "typingType": "dancing"}, "'typingType' must be one of [typing, recording]"),
        ({"chatId": CHAT_ID, "file": True, "bogus": "1"}, "'bogus' is not allowed"),
    ],
)
def test_it_validates(
    api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs, form: dict[str, Any], detail: str
) -> None:
    form = dict(form)
    if form.get("file") is True:
        form["file"] = a_file(png_bytes())
    elif form.get("file") == "empty":
        form["file"] = a_file(b"", "empty.png")
    r = send(api_client, authorized_instance, form)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.exists()
    assert media_dirs.stored() == []


def test_a_json_body_is_refused(api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs) -> None:
    r = api_client.post(method_url(authorized_instance, "sendFileByUpload"), {"chatId": CHAT_ID}, format="json")
    assert r.status_code == 400
    assert not OutgoingMessage.objects.exists()


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs) -> None:
    r = api_client.post(
        method_url(authorized_instance, "sendFileByUpload", token="f" * 50),
        {"chatId": CHAT_ID, "file": a_file(png_bytes())},
        format="multipart",
    )
    assert r.status_code == 401
    assert media_dirs.stored() == []


def test_it_rejects_unknown_instance(api_client: APIClient, db: None, media_dirs: MediaDirs) -> None:
    r = api_client.post("/waInstance1234567890/sendFileByUpload/" + "a" * 50, {"chatId": CHAT_ID, "file": a_file(png_bytes())}, format="multipart")
    assert r.status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    assert api_client.get(method_url(authorized_instance, "sendFileByUpload")).status_code == 404


def test_the_official_sdk_sends_a_file_on_the_media_and_api_hosts(
    live_asgi: LiveServer, media_dirs: MediaDirs, recipient: str, tmp_path: Path, settings: Any
) -> None:
    settings.RELAY_MEDIA_URL = live_asgi.url
    instance = make_instance(authorized=True)
    path = tmp_path / "holiday.png"
    path.write_bytes(png_bytes(16))
    # Uploads belong on the media host; clients also send them to the API host. Both
    # are this server.
    api = API.GreenAPI(str(instance.id), instance.api_token, host=live_asgi.url, media=live_asgi.url)
    response = api.sending.sendFileByUpload(recipient, str(path), "holiday.png", "Greetings")
    assert response.code == 200, response.error
    assert set(response.data) == {"idMessage", "urlFile"}
    message = OutgoingMessage.objects.get(id_message=response.data["idMessage"])
    assert message.status == OutgoingStatus.SENT
    assert message.payload["caption"] == "Greetings"
    assert httpx.get(response.data["urlFile"]).content == path.read_bytes()


def test_a_big_upload_over_http_is_spooled_to_disk_not_memory(
    live_asgi: LiveServer, media_dirs: MediaDirs, settings: Any
) -> None:
    settings.MEDIA_MAX_BYTES = 4 * MIB
    instance = make_instance(authorized=True)
    files = {"file": ("big.bin", io.BytesIO(b"\0" * (5 * MIB)), "application/octet-stream")}
    r = httpx.post(f"{live_asgi.url}{method_url(instance, 'sendFileByUpload')}", data={"chatId": CHAT_ID}, files=files, timeout=30)
    assert r.status_code == 413
    assert r.json()["message"].startswith("File exceeded max upload size.")
    assert media_dirs.stored() == []
    assert media_dirs.temporary() == []
