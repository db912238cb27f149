import hashlib
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient
from whatsapp_api_client_python import API

from instances.models import Instance
from messaging.models import MediaFile
from tests.conftest import LiveServer, method_url
from tests.factories import make_instance
from tests.messaging.media_helpers import MIB, MediaDirs, pdf_bytes, png_bytes


def upload(client: APIClient, instance: Instance, body: bytes, content_type: str = "application/octet-stream", **headers: str) -> Any:
    return client.generic("POST", method_url(instance, "uploadFile"), body, content_type=content_type, headers=headers)


def test_it_stores_the_file_and_answers_a_link(api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs) -> None:
    body = png_bytes()
    r = upload(api_client, authorized_instance, body, "image/png", **{"GA-Filename": "cat.png"})
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"urlFile"}
    url = r.json()["urlFile"]
    assert url.startswith("http://media.relay.test/media/f/")
    assert url.endswith("/cat.png")
    media_file = MediaFile.objects.get()
    assert media_file.instance_id == authorized_instance.id
    assert (media_file.mime_type, media_file.size, media_file.file_name) == ("image/png", len(body), "cat.png")
    assert media_file.sha256 == hashlib.sha256(body).hexdigest()
    [stored] = media_dirs.stored()
    assert stored.read_bytes() == body
    assert stored.suffix == ".png"
    assert media_dirs.temporary() == []


def test_the_type_comes_from_the_content(api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs) -> None:
    r = upload(api_client, authorized_instance, png_bytes(), "application/pdf", **{"GA-Filename": "x.pdf"})
    assert r.status_code == 200
    media_file = MediaFile.objects.get()
    assert media_file.mime_type == "image/png"
    assert media_file.storage_name.endswith(".png")


def test_unknown_content_falls_back_to_the_declared_type(api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs) -> None:
    assert upload(api_client, authorized_instance, b"hello, world\n", "text/plain").status_code == 200
    assert MediaFile.objects.get().mime_type == "text/plain"


def test_then_to_the_file_name(api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs) -> None:
    r = upload(api_client, authorized_instance, b"a,b\n1,2\n", "application/octet-stream", **{"GA-Filename": "t.csv"})
    assert r.status_code == 200
    assert MediaFile.objects.get().mime_type == "text/csv"


def test_unknown_type_is_stored_as_bin(api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs) -> None:
    r = upload(api_client, authorized_instance, b"\x00\x01\x02 opaque", "application/octet-stream")
    assert r.status_code == 200
    media_file = MediaFile.objects.get()
    assert media_file.mime_type == "application/octet-stream"
    assert media_file.storage_name.endswith(".bin")
    assert r.json()["urlFile"].endswith(".bin")


def test_it_refuses_a_file_over_the_limit_and_keeps_nothing(
    api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs, settings: Any
) -> None:
    settings.MEDIA_MAX_BYTES = MIB
    r = upload(api_client, authorized_instance, b"\0" * (MIB + 1), "application/octet-stream")
    assert r.status_code == 413
    assert r.json()["message"] == "File exceeded max upload size. Size: 2mb Limit: 1mb"
    assert r.json()["statusCode"] == 413
    assert not MediaFile.objects.exists()
    assert media_dirs.stored() == []
    assert media_dirs.temporary() == []


def test_a_file_of_exactly_the_limit_is_accepted(
    api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs, settings: Any
) -> None:
    settings.MEDIA_MAX_BYTES = MIB
    assert upload(api_client, authorized_instance, b"\0" * MIB).status_code == 200


def test_an_empty_body_is_refused(api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs) -> None:
    r = upload(api_client, authorized_instance, b"")
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'file' is not allowed to be empty"
    assert media_dirs.stored() == []


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs) -> None:
    r = api_client.generic("POST", method_url(authorized_instance, "uploadFile", token="f" * 50), b"x")
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert media_dirs.stored() == []


def test_it_rejects_unknown_instance(api_client: APIClient, db: None, media_dirs: MediaDirs) -> None:
    assert api_client.generic("POST", "/waInstance1234567890/uploadFile/" + "a" * 50, b"x").status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    assert api_client.get(method_url(authorized_instance, "uploadFile")).status_code == 404


def test_the_method_name_is_case_insensitive(api_client: APIClient, authorized_instance: Instance, media_dirs: MediaDirs) -> None:
    r = api_client.generic("POST", method_url(authorized_instance, "UploadFile"), pdf_bytes(), content_type="application/pdf")
    assert r.status_code == 200
    assert MediaFile.objects.get().mime_type == "application/pdf"


def test_works_for_an_unauthorized_instance(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    assert upload(api_client, instance, pdf_bytes()).status_code == 200


# --- Over real HTTP -------------------------------------------------------------------------


def test_the_official_sdk_uploads(live_asgi: LiveServer, media_dirs: MediaDirs, tmp_path: Path, settings: Any) -> None:
    settings.RELAY_MEDIA_URL = live_asgi.url
    instance = make_instance(authorized=True)
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(32))
    api = API.GreenAPI(str(instance.id), instance.api_token, host=live_asgi.url, media=live_asgi.url)
    response = api.sending.uploadFile(str(path))
    assert response.code == 200, response.error
    url = response.data["urlFile"]
    assert url.endswith("/photo.png")
    downloaded = httpx.get(url)
    assert downloaded.status_code == 200
    assert downloaded.content == path.read_bytes()
    assert downloaded.headers["content-type"] == "image/png"


def _zeros(total: int, chunk: int = MIB) -> Iterator[bytes]:
    block = b"\0" * chunk
    sent = 0
    while sent < total:
        yield block
        sent += chunk


def test_101_mb_streamed_over_http_is_refused_with_small_memory(
    live_asgi: LiveServer, media_dirs: MediaDirs, settings: Any
) -> None:
    """The real limit (100 MB) over a real server, body sent chunked from a generator:
    refused with 413, nothing kept, and the process never holds the file in memory."""
    assert settings.MEDIA_MAX_BYTES == 100 * MIB
    instance = make_instance(authorized=True)
    url = f"{live_asgi.url}{method_url(instance, 'uploadFile')}"
    tracemalloc.start()
    try:
        r = httpx.post(url, content=_zeros(101 * MIB), headers={"Content-Type": "application/octet-stream"}, timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 413, r.text
    assert r.json()["message"].startswith("File exceeded max upload size. Size: 101mb Limit: 100mb")
    assert peak < 30 * MIB, f"peak traced memory {peak / MIB:.1f} MB"
    assert not MediaFile.objects.exists()
    assert media_dirs.stored() == []
    assert media_dirs.temporary() == []


def test_a_declared_length_over_the_limit_is_refused_at_once(
    live_asgi: LiveServer, media_dirs: MediaDirs, settings: Any
) -> None:
    settings.MEDIA_MAX_BYTES = MIB
    instance = make_instance(authorized=True)
    body = b"\0" * (3 * MIB)
    r = httpx.post(f"{live_asgi.url}{method_url(instance, 'uploadFile')}", content=body, timeout=30)
    assert r.status_code == 413
    assert r.json()["message"] == "File exceeded max upload size. Size: 3mb Limit: 1mb"
    assert media_dirs.stored() == []


def test_a_stored_file_downloads_in_chunks_over_asgi(live_asgi: LiveServer, media_dirs: MediaDirs, settings: Any) -> None:
    """Serving a big file must not buffer it (Django would, for a sync iterator)."""
    settings.RELAY_MEDIA_URL = live_asgi.url
    instance = make_instance(authorized=True)
    size = 40 * MIB
    r = httpx.post(f"{live_asgi.url}{method_url(instance, 'uploadFile')}", content=_zeros(size), timeout=60)
    assert r.status_code == 200, r.text
    received = 0
    tracemalloc.start()
    try:
        with httpx.stream("GET", r.json()["urlFile"], timeout=60) as download:
            assert download.status_code == 200
            assert download.headers["content-length"] == str(size)
            for chunk in download.iter_raw():
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert peak < 15 * MIB, f"peak traced memory {peak / MIB:.1f} MB"


@pytest.mark.parametrize("threads", [2])
def test_concurrent_uploads_get_distinct_files(live_asgi: LiveServer, media_dirs: MediaDirs, threads: int) -> None:
    instance = make_instance(authorized=True)
    url = f"{live_asgi.url}{method_url(instance, 'uploadFile')}"
    results: list[str] = []

    def post(n: int) -> None:
        results.append(httpx.post(url, content=png_bytes(8 + n), headers={"Content-Type": "image/png"}).json()["urlFile"])

    workers = [threading.Thread(target=post, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(set(results)) == threads
    assert MediaFile.objects.count() == threads


def test_a_declared_body_over_the_cap_is_refused_before_django_spools_it(live_asgi: Any) -> None:
    """The ASGI edge answers 413 from the Content-Length alone: nothing is read."""
    import socket

    from django.conf import settings as django_settings

    from tests.conftest import method_url as url_of
    from tests.factories import make_instance

    instance = make_instance(authorized=True)
    host, port = live_asgi.url.removeprefix("http://").split(":")
    declared = django_settings.MEDIA_MAX_BYTES + 5 * 1024 * 1024
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {url_of(instance, 'uploadFile')} HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
        )
        sock.sendall(b"\0" * 65536)  # a first chunk; the rest never comes
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert "exceeded max upload size" in answer


def test_a_chunked_body_past_the_cap_gets_a_clean_413(live_asgi: Any, settings: Any) -> None:
    """No Content-Length: the edge counts the stream and answers once it passes the cap."""
    from tests.conftest import method_url as url_of
    from tests.factories import make_instance

    settings.MEDIA_MAX_BYTES = 1024 * 1024
    instance = make_instance(authorized=True)
    r = httpx.post(
        f"{live_asgi.url}{url_of(instance, 'uploadFile')}",
        content=_zeros(4 * MIB),
        headers={"Content-Type": "application/octet-stream"},
        timeout=60,
    )
    assert r.status_code == 413
    assert "exceeded max upload size" in r.json()["message"]
