"""setGroupPicture (API.md §9.6): multipart, the same safe image checks as
setProfilePicture."""

from __future__ import annotations

import io
from typing import Any

from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from instances.models import Instance
from tests.conftest import method_url
from tests.groups.helpers import ALICE, call, create, foreign_group, group, with_contacts
from tests.instances.test_set_profile_picture import jpeg


def upload(client: APIClient, instance: Instance, data: dict[str, Any]) -> Any:
    return client.post(method_url(instance, "setGroupPicture"), data, format="multipart")


def bomb() -> bytes:
    """A tiny PNG that claims a 20000 × 20000 canvas (400 Mpx)."""
    image = Image.new("1", (20_000, 20_000))
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def test_it_sets_the_picture(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE)
    r = upload(
        api_client,
        authorized_instance,
        {"groupId": group_id, "file": SimpleUploadedFile("g.jpg", jpeg(), "image/jpeg")},
    )
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["setGroupPicture", "urlAvatar", "reason"]
    assert body["setGroupPicture"] is True and body["reason"] == ""
    stored = group(group_id).picture
    assert default_storage.exists(stored)
    assert Image.open(default_storage.open(stored)).format == "JPEG"
    assert body["urlAvatar"].endswith(default_storage.url(stored).split("/")[-1])
    # getAvatar of the group chat shows it.
    avatar = call(api_client, authorized_instance, "getAvatar", {"chatId": group_id}).json()
    assert avatar["urlAvatar"] == body["urlAvatar"]


def test_a_non_member_is_refused(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    theirs = foreign_group(ALICE)
    r = upload(
        api_client,
        authorized_instance,
        {"groupId": theirs, "file": SimpleUploadedFile("g.jpg", jpeg(), "image/jpeg")},
    )
    assert r.status_code == 200
    assert r.json() == {"setGroupPicture": False, "urlAvatar": "", "reason": "FORBIDDEN"}
    assert group(theirs).picture == ""


def test_only_admins_edit_refuses_members(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    theirs = foreign_group(ALICE, authorized_instance.phone)
    g = group(theirs)
    g.only_admins_edit = True
    g.save(update_fields=["only_admins_edit"])
    r = upload(
        api_client,
        authorized_instance,
        {"groupId": theirs, "file": SimpleUploadedFile("g.jpg", jpeg(), "image/jpeg")},
    )
    assert r.json() == {"setGroupPicture": False, "urlAvatar": "", "reason": "NOT_ENOUGH_RIGHTS"}


def test_a_decompression_bomb_is_a_400(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE)
    data = bomb()
    assert len(data) < 200_000
    r = upload(
        api_client,
        authorized_instance,
        {"groupId": group_id, "file": SimpleUploadedFile("g.png", data, "image/png")},
    )
    assert r.status_code == 400
    assert "pixels" in r.json()["message"]
    assert group(group_id).picture == ""


def test_it_validates_the_form(api_client: APIClient, authorized_instance: Instance) -> None:
    picture = SimpleUploadedFile("g.jpg", jpeg(), "image/jpeg")
    r = upload(api_client, authorized_instance, {"file": picture})
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'groupId' is required"
    r = upload(api_client, authorized_instance, {"groupId": "120363000000000001@g.us"})
    assert r.json()["message"] == "Validation failed. Details: 'file' is required"
    not_image = SimpleUploadedFile("g.jpg", b"plain text", "image/jpeg")
    r = upload(api_client, authorized_instance, {"groupId": "120363000000000001@g.us", "file": not_image})
    assert r.json()["message"] == "Validation failed. Details: 'file' must be a JPEG image"
    r = upload(
        api_client, authorized_instance, {"groupId": "120363000000000001@g.us", "file": picture, "x": "1"}
    )
    assert r.json()["message"] == "Validation failed. Details: 'x' is not allowed"


def test_the_console_and_schema_offer_both_fields() -> None:
    from dashboard import console

    method = console.method_by_name("setGroupPicture")
    assert method is not None and method.body == "multipart"
    assert {f.name for f in method.fields} == {"groupId", "file"}
