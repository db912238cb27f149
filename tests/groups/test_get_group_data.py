"""getGroupData (API.md §9.6)."""

from __future__ import annotations

from rest_framework.test import APIClient

from instances.models import Instance
from tests.groups.helpers import ALICE, BOB, call, create, foreign_group, wid, with_contacts


def test_it_returns_the_documented_shape(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE, BOB, name="Green API Group")
    r = call(api_client, authorized_instance, "getGroupData", {"groupId": group_id})
    assert r.status_code == 200
    body = r.json()
    assert list(body) == [
        "groupId",
        "owner",
        "subject",
        "creation",
        "participants",
        "subjectTime",
        "subjectOwner",
        "groupInviteLink",
    ]
    me = authorized_instance.wid
    assert body["groupId"] == group_id and body["owner"] == me and body["subjectOwner"] == me
    assert body["subject"] == "Green API Group"
    assert isinstance(body["creation"], int) and body["subjectTime"] >= body["creation"]
    assert body["participants"] == [
        {"id": me, "isAdmin": True, "isSuperAdmin": True},
        {"id": wid(ALICE), "isAdmin": False, "isSuperAdmin": False},
        {"id": wid(BOB), "isAdmin": False, "isSuperAdmin": False},
    ]
    assert body["groupInviteLink"].startswith("https://chat.whatsapp.com/")


def test_unknown_group_is_item_not_found(api_client: APIClient, authorized_instance: Instance) -> None:
    r = call(api_client, authorized_instance, "getGroupData", {"groupId": "120363000000000001@g.us"})
    assert r.status_code == 200
    assert r.json() == "Error: item-not-found"


def test_a_group_we_are_not_in_is_forbidden(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = foreign_group(ALICE, BOB)
    r = call(api_client, authorized_instance, "getGroupData", {"groupId": group_id})
    assert r.status_code == 200
    assert r.json() == "Error: forbidden"


def test_old_style_group_ids_are_accepted(api_client: APIClient, authorized_instance: Instance) -> None:
    r = call(api_client, authorized_instance, "getGroupData", {"groupId": "11001234567-1587570015@g.us"})
    assert r.json() == "Error: item-not-found"


def test_it_validates_the_body(api_client: APIClient, authorized_instance: Instance) -> None:
    for body, message in [
        ({}, "'groupId' is required"),
        ({"groupId": "79001234567@c.us"}, "'groupId' must be in the format 'group_id@g.us'"),
        ({"groupId": 5}, "'groupId' must be a string"),
        ({"groupId": "120363000000000001@g.us", "x": 1}, "'x' is not allowed"),
    ]:
        r = call(api_client, authorized_instance, "getGroupData", body)
        assert r.status_code == 400, body
        assert r.json()["message"] == f"Validation failed. Details: {message}", r.json()


def test_unauthorized_instance_is_refused(api_client: APIClient, instance: Instance) -> None:
    r = call(api_client, instance, "getGroupData", {"groupId": "120363000000000001@g.us"})
    assert r.status_code == 400


def test_another_instances_token_is_refused(api_client: APIClient, authorized_instance: Instance) -> None:
    from tests.factories import make_instance

    other = make_instance(authorized=True)
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE)
    r = call(api_client, authorized_instance, "getGroupData", {"groupId": group_id}, token=other.api_token)
    assert r.status_code == 401
    # And the other instance itself is not in the group.
    assert call(api_client, other, "getGroupData", {"groupId": group_id}).json() == "Error: forbidden"
