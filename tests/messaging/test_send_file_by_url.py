from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from whatsapp_api_client_python import API

from engines.emulator.models import EmuMessage
from instances.models import Instance
from messaging import services
from messaging.models import MediaFile, MessageStatusChange, OutgoingMessage, OutgoingStatus
from tests.conftest import LiveServer, method_url
from tests.factories import make_instance
from tests.messaging.media_helpers import (
    CHAT_ID,
    MIB,
    FileServer,
    MediaDirs,
    pdf_bytes,
    png_bytes,
)


@pytest.fixture
def allow_loopback(settings: Any) -> None:
    settings.MEDIA_FETCH_ALLOW_PRIVATE = True


def send(client: APIClient, instance: Instance, body: Any, **headers: str) -> Any:
    return client.post(method_url(instance, "sendFileByUrl"), body, format="json", headers=headers)


def send_and_drain(client: APIClient, instance: Instance, body: Any, capture: Any) -> OutgoingMessage:
    with capture(execute=True):
        r = send(client, instance, body)
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"idMessage"}
    return OutgoingMessage.objects.get(id_message=r.json()["idMessage"])


def test_it_fetches_stores_and_delivers(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, django_capture_on_commit_callbacks: Any,
) -> None:
    body = png_bytes()
    url = file_server.add("/pics/cat.png", body, Content_Type="image/png")
    message = send_and_drain(
        api_client, authorized_instance, {"chatId": recipient, "urlFile": url, "fileName": "cat.png", "caption": "hi"},
        django_capture_on_commit_callbacks,
    )
    assert message.status == OutgoingStatus.SENT, message.description
    assert message.is_file
    assert message.type_message == "imageMessage"
    media_file = MediaFile.objects.get()
    assert (media_file.mime_type, media_file.size, media_file.source_url) == ("image/png", len(body), url)
    assert [p.read_bytes() for p in media_dirs.stored()] == [body]
    network = EmuMessage.objects.get(sender=authorized_instance.phone, id_message=message.id_message)
    assert network.type_message == "imageMessage"
    assert network.payload["storageName"] == media_file.storage_name
    assert network.payload["mimeType"] == "image/png"
    assert network.payload["fileName"] == "cat.png"
    assert network.payload["caption"] == "hi"
    assert network.payload["sourceUrl"] == url
    assert network.payload["urlFile"].startswith("http://media.relay.test/media/f/")
    assert file_server.hits == ["/pics/cat.png"]
    assert file_server.hosts == [f"127.0.0.1:{file_server.port}"]


def test_the_type_comes_from_the_content_not_the_name(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, django_capture_on_commit_callbacks: Any,
) -> None:
    url = file_server.add("/x", png_bytes(), Content_Type="application/pdf")
    message = send_and_drain(api_client, authorized_instance, {"chatId": recipient, "urlFile": url, "fileName": "x.pdf"}, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.SENT
    assert message.type_message == "imageMessage"
    assert MediaFile.objects.get().mime_type == "image/png"


def test_it_queues_at_once_and_fetches_only_when_sending(
    api_client: APIClient, instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, django_capture_on_commit_callbacks: Any,
) -> None:
    url = file_server.add("/doc.pdf", pdf_bytes())
    body = {"chatId": recipient, "urlFile": url, "fileName": "doc.pdf", "typingType": "recording", "archiveChat": True}
    message = send_and_drain(api_client, instance, body, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.QUEUED
    assert file_server.hits == []
    queue = api_client.get(method_url(instance, "showMessagesQueue")).json()
    assert queue == [
        {
            "messageID": message.id_message,
            "type": "sendFileByUrl",
            "body": {
                "chatId": recipient, "urlFile": url, "fileName": "doc.pdf", "caption": None,
                "quotedMessageId": None, "typingTime": None, "typingType": "recording",
            },
        }
    ]


def test_a_retry_does_not_fetch_again(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, django_capture_on_commit_callbacks: Any,
) -> None:
    from messaging import media

    url = file_server.add("/doc.pdf", pdf_bytes())
    r = send(api_client, authorized_instance, {"chatId": recipient, "urlFile": url, "fileName": "doc.pdf"})
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    first = media.prepare_payload(message)
    again = media.prepare_payload(OutgoingMessage.objects.get(pk=message.pk))
    assert first == again
    assert file_server.hits == ["/doc.pdf"]
    assert OutgoingMessage.objects.get(pk=message.pk).type_message == "documentMessage"


def test_our_own_link_is_read_from_storage(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # RELAY_MEDIA_URL (media.relay.test) does not resolve: any HTTP attempt would fail.
    link = api_client.generic(
        "POST", method_url(authorized_instance, "uploadFile"), pdf_bytes(), content_type="application/pdf"
    ).json()["urlFile"]
    message = send_and_drain(api_client, authorized_instance, {"chatId": recipient, "urlFile": link, "fileName": "a.pdf"}, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.SENT, message.description
    media_file = MediaFile.objects.get()
    assert message.payload["storageName"] == media_file.storage_name
    assert message.payload["fileName"] == "a.pdf"
    assert message.type_message == "documentMessage"


def test_an_expired_own_link_fails_the_message(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    django_capture_on_commit_callbacks: Any,
) -> None:
    link = api_client.generic("POST", method_url(authorized_instance, "uploadFile"), pdf_bytes()).json()["urlFile"]
    MediaFile.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    message = send_and_drain(api_client, authorized_instance, {"chatId": recipient, "urlFile": link, "fileName": "a.pdf"}, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.FAILED
    assert message.description.startswith("The file link has expired.")


def test_a_file_over_the_limit_fails_the_message_and_keeps_nothing(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, settings: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    settings.MEDIA_MAX_BYTES = MIB
    url = file_server.add("/big.bin", b"\0" * (2 * MIB))
    message = send_and_drain(api_client, authorized_instance, {"chatId": recipient, "urlFile": url, "fileName": "big.bin"}, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.FAILED
    assert message.description == f"File from url exceeded max upload size. Size: 2mb Limit: 1mb Url: {url}"
    assert list(MessageStatusChange.objects.filter(message=message).values_list("status", flat=True)) == ["failed"]
    assert not MediaFile.objects.exists()
    assert media_dirs.stored() == []
    assert media_dirs.temporary() == []


def test_a_stream_without_length_is_cut_at_the_limit(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, settings: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    settings.MEDIA_MAX_BYTES = MIB
    url = file_server.stream("/endless", 50 * MIB)
    message = send_and_drain(api_client, authorized_instance, {"chatId": recipient, "urlFile": url, "fileName": "x.bin"}, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.FAILED
    assert message.description.startswith("File from url exceeded max upload size. Size: 2mb Limit: 1mb Url: ")
    assert media_dirs.stored() == []
    assert media_dirs.temporary() == []


@pytest.mark.parametrize(("status", "reason"), [(404, "HTTP 404"), (500, "HTTP 500")])
def test_an_http_error_fails_the_message(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, django_capture_on_commit_callbacks: Any, status: int, reason: str,
) -> None:
    url = file_server.add("/gone", b"nope", status=status)
    message = send_and_drain(api_client, authorized_instance, {"chatId": recipient, "urlFile": url, "fileName": "x.pdf"}, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.FAILED
    assert message.description == f"File from url could not be downloaded: {reason}. Url: {url}"


def test_a_slow_server_times_out(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, settings: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    settings.MEDIA_FETCH_TIMEOUT_SECONDS = 0.3
    url = file_server.slow("/slow", 2.0)
    message = send_and_drain(api_client, authorized_instance, {"chatId": recipient, "urlFile": url, "fileName": "x.pdf"}, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.FAILED
    assert message.description.startswith("File from url could not be downloaded: ")
    assert "timed out" in message.description


def test_an_unreachable_server_fails_the_message(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, django_capture_on_commit_callbacks: Any,
) -> None:
    url = file_server.url("/x.pdf")
    file_server.stop()
    message = send_and_drain(api_client, authorized_instance, {"chatId": recipient, "urlFile": url, "fileName": "x.pdf"}, django_capture_on_commit_callbacks)
    assert message.status == OutgoingStatus.FAILED
    assert message.description.startswith("File from url could not be downloaded: ")


def test_a_failed_fetch_does_not_stall_the_queue(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, django_capture_on_commit_callbacks: Any,
) -> None:
    from messaging.models import SendCursor

    bad = send(api_client, authorized_instance, {"chatId": recipient, "urlFile": file_server.url("/missing"), "fileName": "x.pdf"}).json()
    good = api_client.post(method_url(authorized_instance, "sendMessage"), {"chatId": recipient, "message": "after"}, format="json").json()
    SendCursor.objects.filter(instance=authorized_instance).update(last_sent_at=None)
    services.drain_queue(authorized_instance.id, "test")
    assert OutgoingMessage.objects.get(id_message=bad["idMessage"]).status == OutgoingStatus.FAILED
    assert OutgoingMessage.objects.get(id_message=good["idMessage"]).status == OutgoingStatus.SENT


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"urlFile": "http://x.test/a.png", "fileName": "a.png"}, "'chatId' is required"),
        ({"chatId": CHAT_ID, "fileName": "a.png"}, "'urlFile' is required"),
        ({"chatId": CHAT_ID, "urlFile": "", "fileName": "a.png"}, "'urlFile' is not allowed to be empty"),
        ({"chatId": CHAT_ID, "urlFile": 5, "fileName": "a.png"}, "'urlFile' must be a string"),
        ({"chatId": CHAT_ID, "urlFile": "ftp://x.test/a.png", "fileName": "a.png"}, "'urlFile' must be a valid uri with a scheme matching the http|https pattern"),
        ({"chatId": CHAT_ID, "urlFile": "file:///etc/passwd", "fileName": "a.png"}, "'urlFile' must be a valid uri with a scheme matching the http|https pattern"),
        ({"chatId": CHAT_ID, "urlFile": "http:///a.png", "fileName": "a.png"}, "'urlFile' must be a valid uri with a scheme matching the http|https pattern"),
        ({"chatId": CHAT_ID, "urlFile": "a.png", "fileName": "a.png"}, "'urlFile' must be a valid uri with a scheme matching the http|https pattern"),
        ({"chatId": CHAT_ID, "urlFile": "http://x.test/a.png"}, "'fileName' is required"),
        ({"chatId": CHAT_ID, "urlFile": "http://x.test/a.png", "fileName": ""}, "'fileName' is not allowed to be empty"),
        ({"chatId": CHAT_ID, "urlFile": "http://x.test/a.png", "fileName": "a.png", "caption": "x" * 20_001}, "'caption' length must be less than or equal to 20000 characters long"),
        ({"chatId": CHAT_ID, "urlFile": "http://x.test/a.png", "fileName": "a.png", "typingTime": 999}, "'typingTime' must be larger than or equal to 1000"),
        ({"chatId": CHAT_ID, "urlFile": "http://x.test/a.png", "fileName": "a.png", "typingType": "x"}, "'typingType' must be one of [typing, recording]"),
        ({"chatId": CHAT_ID, "urlFile": "http://x.test/a.png", "fileName": "a.png", "archiveChat": "yes"}, "'archiveChat' must be a boolean"),
        ({"chatId": CHAT_ID, "urlFile": "http://x.test/a.png", "fileName": "a.png", "bogus": 1}, "'bogus' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = send(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.exists()


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(method_url(authorized_instance, "sendFileByUrl", token="f" * 50), {}, format="json")
    assert r.status_code == 401


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    assert api_client.post("/waInstance1234567890/sendFileByUrl/" + "a" * 50, {}, format="json").status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    assert api_client.get(method_url(authorized_instance, "sendFileByUrl")).status_code == 404


def test_the_official_sdk_sends_by_url(
    live_asgi: LiveServer, media_dirs: MediaDirs, recipient: str, file_server: FileServer, allow_loopback: None
) -> None:
    instance = make_instance(authorized=True)
    url = file_server.add("/files/report.pdf", pdf_bytes(), Content_Type="application/pdf")
    api = API.GreenAPI(str(instance.id), instance.api_token, host=live_asgi.url, media=live_asgi.url)
    response = api.sending.sendFileByUrl(recipient, url, "report.pdf", "monthly")
    assert response.code == 200, response.error
    message = OutgoingMessage.objects.get(id_message=response.data["idMessage"])
    assert message.status == OutgoingStatus.SENT, message.description
    assert message.type_message == "documentMessage"
    assert message.payload["caption"] == "monthly"
    assert MediaFile.objects.get().mime_type == "application/pdf"


def test_the_official_sdk_reuses_an_uploaded_file(
    live_asgi: LiveServer, media_dirs: MediaDirs, recipient: str, settings: Any, tmp_path: Any
) -> None:
    settings.RELAY_MEDIA_URL = live_asgi.url  # loopback: only storage can serve it
    instance = make_instance(authorized=True)
    path = tmp_path / "pic.png"
    path.write_bytes(png_bytes())
    api = API.GreenAPI(str(instance.id), instance.api_token, host=live_asgi.url, media=live_asgi.url)
    link = api.sending.uploadFile(str(path)).data["urlFile"]
    response = api.sending.sendFileByUrl(recipient, link, "pic.png")
    assert response.code == 200, response.error
    message = OutgoingMessage.objects.get(id_message=response.data["idMessage"])
    assert message.status == OutgoingStatus.SENT, message.description
    assert MediaFile.objects.count() == 1


def test_the_js_sdk_numeric_phone_number_sends_to_that_chat(
    api_client: APIClient, authorized_instance: Instance, recipient: str, media_dirs: MediaDirs,
    file_server: FileServer, allow_loopback: None, django_capture_on_commit_callbacks: Any,
) -> None:
    """The JS SDK sends ``phoneNumber`` (a number) instead of ``chatId``: the file
    reaches that number's phone on the emulated network."""
    url = file_server.add("/pics/cat.png", png_bytes(), Content_Type="image/png")
    phone = int(recipient.split("@", 1)[0])
    message = send_and_drain(
        api_client, authorized_instance, {"phoneNumber": phone, "urlFile": url, "fileName": "cat.png"},
        django_capture_on_commit_callbacks,
    )
    assert message.chat_id == recipient
    assert message.status == OutgoingStatus.SENT, message.description
    network = EmuMessage.objects.get(sender=authorized_instance.phone, id_message=message.id_message)
    assert network.recipient == str(phone)


@pytest.mark.parametrize("value", ["7900x", True, 1.5, None])
def test_a_phone_number_that_is_not_digits_is_refused(
    api_client: APIClient, authorized_instance: Instance, value: Any
) -> None:
    r = send(api_client, authorized_instance, {"phoneNumber": value, "urlFile": "https://example.com/a.png", "fileName": "a.png"})
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: Wrong format. 'phoneNumber' must contain only digits"
    assert not OutgoingMessage.objects.exists()
