"""Signed, expiring urlFile links served by us (``/media/f/<signed>/<name>``)."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from instances.models import Instance
from messaging import media
from messaging.models import MediaFile
from tests.conftest import method_url
from tests.messaging.media_helpers import MediaDirs, pdf_bytes, png_bytes


def upload(client: APIClient, instance: Instance, body: bytes, name: str = "", content_type: str = "application/octet-stream") -> str:
    headers = {"GA-Filename": name} if name else {}
    r = client.generic("POST", method_url(instance, "uploadFile"), body, content_type=content_type, headers=headers)
    assert r.status_code == 200, r.content
    return str(r.json()["urlFile"])


def path_of(url: str) -> str:
    return urlsplit(url).path


def download(client: Client, url: str) -> Any:
    return client.get(path_of(url))


def test_a_signed_link_serves_the_file(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    body = png_bytes()
    url = upload(api_client, instance, body, "Фото 1.png")
    assert url.startswith("http://media.relay.test/media/f/")
    r = download(Client(), url)
    assert r.status_code == 200
    assert b"".join(r.streaming_content) == body
    assert r["Content-Type"] == "image/png"
    assert r["Content-Length"] == str(len(body))
    assert r["Content-Disposition"] == "attachment; filename*=utf-8''%D0%A4%D0%BE%D1%82%D0%BE%201.png"
    assert r["X-Content-Type-Options"] == "nosniff"


def test_the_link_follows_relay_media_url(api_client: APIClient, instance: Instance, media_dirs: MediaDirs, settings: Any) -> None:
    settings.RELAY_MEDIA_URL = "https://files.example.org/"
    assert upload(api_client, instance, pdf_bytes()).startswith("https://files.example.org/media/f/")


def test_head_answers_the_headers(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    url = upload(api_client, instance, pdf_bytes(), "a.pdf")
    r = Client().head(path_of(url))
    assert r.status_code == 200
    assert r["Content-Length"] == str(len(pdf_bytes()))
    assert r["Content-Type"] == "application/pdf"


def test_user_html_is_never_rendered_on_our_origin(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    url = upload(api_client, instance, b"<script>alert(1)</script>", "x.html", "text/html")
    r = download(Client(), url)
    assert r["Content-Type"] == "text/html"
    assert r["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in r["Content-Security-Policy"]


def test_the_name_segment_does_not_matter(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    url = upload(api_client, instance, pdf_bytes(), "a.pdf")
    other = url.rsplit("/", 1)[0] + "/renamed.pdf"
    assert download(Client(), other).status_code == 200


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature
        lambda token: ("0" if token[0] != "0" else "1") + token[1:],  # key
        lambda token: token.split(":", 1)[0],  # unsigned key
        lambda token: "garbage",
    ],
)
def test_a_tampered_link_is_404(api_client: APIClient, instance: Instance, media_dirs: MediaDirs, tamper: Any) -> None:
    url = upload(api_client, instance, pdf_bytes(), "a.pdf")
    prefix, token, name = url.rsplit("/", 2)
    r = download(Client(), f"{prefix}/{tamper(token)}/{name}")
    assert r.status_code == 404


def test_a_link_signed_for_another_file_does_not_open_this_one(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    first = upload(api_client, instance, b"first file")
    second = upload(api_client, instance, b"second file")
    assert path_of(first).split("/")[3] != path_of(second).split("/")[3]
    assert b"".join(download(Client(), second).streaming_content) == b"second file"


def test_a_link_past_its_lifetime_is_gone(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    url = upload(api_client, instance, pdf_bytes())
    assert download(Client(), url).status_code == 200
    later = time.time() + timedelta(days=15, minutes=1).total_seconds()
    with mock.patch("django.core.signing.time.time", return_value=later):
        r = download(Client(), url)
    assert r.status_code == 410


def test_a_file_past_its_expiry_is_gone(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    url = upload(api_client, instance, pdf_bytes())
    media_file = MediaFile.objects.get()
    assert media_file.expires_at - media_file.created_at == timedelta(days=15)
    MediaFile.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert download(Client(), url).status_code == 410


def test_a_deleted_file_is_404(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    url = upload(api_client, instance, pdf_bytes())
    for path in media_dirs.stored():
        path.unlink()
    assert download(Client(), url).status_code == 404
    MediaFile.objects.all().delete()
    assert download(Client(), url).status_code == 404


def test_only_get_and_head(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    url = upload(api_client, instance, pdf_bytes())
    assert Client().post(path_of(url)).status_code == 405


def test_housekeeping_deletes_expired_files(api_client: APIClient, instance: Instance, media_dirs: MediaDirs) -> None:
    upload(api_client, instance, b"old")
    upload(api_client, instance, b"new")
    old = MediaFile.objects.get(size=3, sha256__startswith=media.hashlib.sha256(b"old").hexdigest()[:8])
    MediaFile.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert media.delete_expired_files() == 1
    assert list(MediaFile.objects.values_list("size", flat=True)) == [3]
    assert MediaFile.objects.get().pk != old.pk
    assert len(media_dirs.stored()) == 1


def test_the_configured_storage_is_outside_the_public_media_root(settings: Any) -> None:
    """MEDIA_ROOT is served without checks at /media/<path>; files must not be there."""
    location = Path(settings.STORAGES["files"]["OPTIONS"]["location"]).resolve()
    assert not location.is_relative_to(Path(settings.MEDIA_ROOT).resolve())


def _settings_with(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    code = "import config.settings as s; print(s.STORAGES['files']['BACKEND'], s.STORAGES['files']['OPTIONS'].get('bucket_name'))"
    environment = {**os.environ, "RELAY_VAR_DIR": str(tmp_path), **env}
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60)


def test_s3_storage_is_configured_from_the_environment(tmp_path: Path) -> None:
    done = _settings_with(tmp_path, MEDIA_STORAGE="s3", AWS_STORAGE_BUCKET_NAME="relay-files")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["storages.backends.s3.S3Storage", "relay-files"]


@pytest.mark.parametrize(
    "env",
    [{"MEDIA_STORAGE": "ftp"}, {"MEDIA_FETCH_ALLOWED_NETWORKS": "10.0.0.0/40"}],
)
def test_bad_media_settings_stop_start_up(tmp_path: Path, env: dict[str, str]) -> None:
    done = _settings_with(tmp_path, **env)
    assert done.returncode != 0
