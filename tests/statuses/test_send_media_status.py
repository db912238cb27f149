"""sendMediaStatus: the picture or video comes from urlFile through the SSRF-guarded
fetch of sendFileByUrl; anything else fails the status with a reason."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuStatus
from instances.models import Instance
from messaging.models import MediaFile, OutgoingStatus
from tests.conftest import method_url
from tests.messaging.media_helpers import FileServer, MediaDirs, pdf_bytes, png_bytes
from tests.statuses.helpers import FRIEND, post, posted, poster

pytestmark = pytest.mark.django_db


@pytest.fixture
def allow_loopback(settings: Any) -> None:
    settings.MEDIA_FETCH_ALLOW_PRIVATE = True


def test_it_fetches_the_picture_and_posts_it(
    api_client: APIClient, media_dirs: MediaDirs, file_server: FileServer, allow_loopback: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    instance = poster()
    body = png_bytes()
    url = file_server.add("/s/sunset.png", body, Content_Type="image/png")
    r = post(
        api_client, instance, "sendMediaStatus",
        {"urlFile": url, "fileName": "sunset.png", "caption": "Sunset", "participants": [f"{FRIEND}@c.us"]},
        django_capture_on_commit_callbacks,
    )
    assert r.status_code == 200, r.content
    message = posted(instance, r.json()["idMessage"])
    assert message.status == OutgoingStatus.SENT, message.description
    assert message.type_message == "imageMessage"
    stored = MediaFile.objects.get()
    assert (stored.source_url, stored.size, stored.mime_type) == (url, len(body), "image/png")
    status = EmuStatus.objects.get(id_message=message.id_message)
    data = status.message_data["fileMessageData"]
    assert (data["caption"], data["fileName"], data["mimeType"]) == ("Sunset", "sunset.png", "image/png")
    assert list(status.views.values_list("viewer", flat=True)) == [FRIEND]
    [item] = api_client.get(method_url(instance, "getOutgoingStatuses")).json()
    assert item["downloadUrl"] == data["downloadUrl"] and item["participants"] == [f"{FRIEND}@c.us"]


def test_a_private_address_is_refused_by_the_ssrf_guard(
    api_client: APIClient, media_dirs: MediaDirs, file_server: FileServer, django_capture_on_commit_callbacks: Any
) -> None:
    instance = poster()
    url = file_server.add("/s/a.png", png_bytes(), Content_Type="image/png")
    r = post(api_client, instance, "sendMediaStatus", {"urlFile": url, "fileName": "a.png"}, django_capture_on_commit_callbacks)
    message = posted(instance, r.json()["idMessage"])
    assert message.status == OutgoingStatus.FAILED
    assert "refused" in message.description
    assert file_server.hits == []
    assert not EmuStatus.objects.exists()


def test_a_document_cannot_be_a_status(
    api_client: APIClient, media_dirs: MediaDirs, file_server: FileServer, allow_loopback: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    instance = poster()
    url = file_server.add("/s/doc.pdf", pdf_bytes(), Content_Type="application/pdf")
    r = post(api_client, instance, "sendMediaStatus", {"urlFile": url, "fileName": "doc.pdf"}, django_capture_on_commit_callbacks)
    message = posted(instance, r.json()["idMessage"])
    assert message.status == OutgoingStatus.FAILED
    assert message.description == "A media status must be a picture or a video, not application/pdf"
    assert not EmuStatus.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"fileName": "a.png"}, "'urlFile' is required"),
        ({"urlFile": "ftp://x/a.png", "fileName": "a.png"}, "'urlFile' must be a valid uri with a scheme matching the http|https pattern"),
        ({"urlFile": "https://example.com/a.png"}, "'fileName' is required"),
        ({"urlFile": "https://example.com/a.png", "fileName": "a.png", "caption": 5}, "'caption' must be a string"),
    ],
)
def test_it_rejects_invalid_input(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = api_client.post(method_url(authorized_instance, "sendMediaStatus"), body, format="json")
    assert r.status_code == 400
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
