"""Decompression bombs: every path that opens an untrusted picture checks the
declared canvas before decoding (instances.images), so a small file claiming a
huge canvas answers 400 (or, for event thumbnails, gets no thumbnail), never a 500
and never a decode."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from engines.emulator.models import EmuPhone
from engines.emulator.triggers import _thumbnail
from instances import images
from instances.models import Instance
from tests.conftest import method_url

pytestmark = pytest.mark.django_db


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int, height: int) -> bytes:
    """A valid bilevel PNG header declaring ``width`` × ``height`` with a tiny
    compressed body: a few hundred bytes that would decode to hundreds of MB."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = zlib.compress(b"\0" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [20_000, 12_000, 6_001])
def test_check_image_refuses_a_bomb_from_its_header(side: int) -> None:
    with pytest.raises(images.UnsafeImage) as caught:
        images.check_image(bomb_png(side, side))
    assert caught.value.too_big


def test_check_image_passes_a_normal_picture() -> None:
    assert images.check_image(bomb_png(640, 480)) == (640, 480)


@pytest.mark.parametrize("side", [20_000, 12_000])
def test_set_profile_picture_refuses_a_bomb_with_400(
    api_client: APIClient, authorized_instance: Instance, side: int
) -> None:
    before = EmuPhone.objects.get(phone=authorized_instance.phone).avatar
    r = api_client.post(
        method_url(authorized_instance, "setProfilePicture"),
        {"file": SimpleUploadedFile("bomb.png", bomb_png(side, side), "image/png")},
        format="multipart",
    )
    assert r.status_code == 400
    assert "pixels" in r.json()["message"]
    assert EmuPhone.objects.get(phone=authorized_instance.phone).avatar == before


@pytest.mark.parametrize("side", [20_000, 12_000])
def test_an_event_image_that_is_a_bomb_gets_no_thumbnail_and_no_decode(monkeypatch: Any, side: int) -> None:
    from PIL import ImageFile

    decoded: list[object] = []
    real_load = ImageFile.ImageFile.load

    def spy(self: Any) -> Any:
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    assert _thumbnail(bomb_png(side, side)) == ""
    assert decoded == []  # 12000 × 12000 used to decode (Pillow only warns there)


def test_an_incoming_image_event_with_a_bomb_is_stored_without_decoding(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    r = api_client.post(
        f"/api/v1/emulator/instances/{authorized_instance.id}/incoming/imageMessage",
        {"phoneNumber": "79001110500", "file": base64.b64encode(bomb_png(20_000, 20_000)).decode()},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {authorized_instance.api_token}",
    )
    assert r.status_code == 200, r.content
    body: Any = r.json()
    assert body["typeMessage"] == "imageMessage"
