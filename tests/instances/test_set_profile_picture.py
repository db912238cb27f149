import io
import random
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from engines.emulator.models import EmuPhone
from instances.api import MAX_PICTURE_BYTES
from instances.models import Instance
from tests.conftest import method_url


def jpeg(size: int = 64, noisy: bool = False) -> bytes:
    image = Image.new("RGB", (size, size), (200, 40, 40))
    if noisy:  # random pixels do not compress: a big file from a small image
        rnd = random.Random(1)
        image.putdata(
            [(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(size * size)]
        )
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def upload(client: APIClient, instance: Instance, data: dict[str, Any], token: str | None = None) -> Any:
    return client.post(method_url(instance, "setProfilePicture", token=token), data, format="multipart")


def row(instance: Instance) -> dict[str, Any]:
    return Instance.objects.values().get(pk=instance.pk)


def test_it_sets_the_picture(api_client: APIClient, authorized_instance: Instance) -> None:
    r = upload(api_client, authorized_instance, {"file": SimpleUploadedFile("me.jpg", jpeg(), "image/jpeg")})
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["setProfilePicture", "urlAvatar", "reason"]
    assert body["setProfilePicture"] is True
    assert body["reason"] == ""
    assert body["urlAvatar"].startswith(settings.RELAY_MEDIA_URL.rstrip("/") + "/")
    authorized_instance.refresh_from_db()
    assert authorized_instance.avatar_url == body["urlAvatar"]
    stored = EmuPhone.objects.get(phone=authorized_instance.phone).avatar
    assert default_storage.exists(stored)
    assert Image.open(default_storage.open(stored)).format == "JPEG"


def test_getwasettings_shows_the_new_picture(api_client: APIClient, authorized_instance: Instance) -> None:
    url = upload(
        api_client, authorized_instance, {"file": SimpleUploadedFile("me.jpg", jpeg(), "image/jpeg")}
    ).json()["urlAvatar"]
    assert api_client.get(method_url(authorized_instance, "getWaSettings")).json()["avatar"] == url


def test_a_picture_over_the_json_cap_is_accepted(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    data = jpeg(400, noisy=True)
    assert len(data) > settings.MAX_JSON_BODY_BYTES  # uploads are not capped at 100 KB
    r = upload(api_client, authorized_instance, {"file": SimpleUploadedFile("big.jpg", data, "image/jpeg")})
    assert r.status_code == 200
    assert r.json()["setProfilePicture"] is True


def test_unlinked_instance_reports_false(api_client: APIClient, instance: Instance) -> None:
    before = row(instance)
    r = upload(api_client, instance, {"file": SimpleUploadedFile("me.jpg", jpeg(), "image/jpeg")})
    assert r.status_code == 200
    assert r.json() == {
        "setProfilePicture": False,
        "urlAvatar": "",
        "reason": "instance account not authorized",
    }
    assert row(instance) == before


def assert_rejected(r: Any, detail: str) -> None:
    assert r.status_code == 400
    payload = r.json()
    assert set(payload) == {"statusCode", "timestamp", "path", "message"}
    assert payload["message"] == f"Validation failed. Details: {detail}"


def test_it_requires_a_file(api_client: APIClient, authorized_instance: Instance) -> None:
    before = row(authorized_instance)
    assert_rejected(upload(api_client, authorized_instance, {}), "'file' is required")
    assert row(authorized_instance) == before


def test_it_rejects_a_file_that_is_not_an_image(api_client: APIClient, authorized_instance: Instance) -> None:
    before = row(authorized_instance)
    r = upload(
        api_client,
        authorized_instance,
        {"file": SimpleUploadedFile("me.jpg", b"\xff\xd8 not a jpeg", "image/jpeg")},
    )
    assert_rejected(r, "'file' must be a JPEG image")
    assert row(authorized_instance) == before
    assert EmuPhone.objects.get(phone=authorized_instance.phone).avatar == ""


def test_it_rejects_a_file_over_ten_megabytes(api_client: APIClient, authorized_instance: Instance) -> None:
    data = jpeg() + b"\0" * (MAX_PICTURE_BYTES)
    r = upload(api_client, authorized_instance, {"file": SimpleUploadedFile("huge.jpg", data, "image/jpeg")})
    assert_rejected(r, f"'file' must be less than or equal to {MAX_PICTURE_BYTES} bytes")


def test_it_rejects_unknown_fields(api_client: APIClient, authorized_instance: Instance) -> None:
    r = upload(
        api_client,
        authorized_instance,
        {"file": SimpleUploadedFile("me.jpg", jpeg(), "image/jpeg"), "caption": "hello"},
    )
    assert_rejected(r, "'caption' is not allowed")
    authorized_instance.refresh_from_db()
    assert authorized_instance.avatar_url == ""


def test_a_json_body_is_a_400(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(method_url(authorized_instance, "setProfilePicture"), {"file": "x"}, format="json")
    assert r.status_code == 400
    assert r.json()["statusCode"] == 400


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = upload(
        api_client,
        authorized_instance,
        {"file": SimpleUploadedFile("me.jpg", jpeg(), "image/jpeg")},
        token="0" * 50,
    )
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    authorized_instance.refresh_from_db()
    assert authorized_instance.avatar_url == ""


def test_it_rejects_unknown_instance(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(
        f"/waInstance1{authorized_instance.id}/setProfilePicture/{authorized_instance.api_token}",
        {"file": SimpleUploadedFile("me.jpg", jpeg(), "image/jpeg")},
        format="multipart",
    )
    assert r.status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    assert api_client.get(method_url(authorized_instance, "setProfilePicture")).status_code == 404


def test_a_decompression_bomb_is_a_400(api_client: APIClient, authorized_instance: Instance) -> None:
    # A tiny PNG claiming 20000 × 20000 pixels: refused from its header, nothing decoded.
    image = Image.new("1", (20_000, 20_000))
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    r = upload(api_client, authorized_instance, {"file": SimpleUploadedFile("bomb.png", buf.getvalue(), "image/png")})
    assert r.status_code == 400
    assert "pixels" in r.json()["message"]
    assert EmuPhone.objects.get(phone=authorized_instance.phone).avatar == ""
