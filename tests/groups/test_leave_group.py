"""leaveGroup (API.md §9.6)."""

from __future__ import annotations

from rest_framework.test import APIClient

from instances.models import Instance
from tests.groups.helpers import ALICE, BOB, call, create, foreign_group, members, with_contacts


def test_a_member_leaves(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = foreign_group(ALICE, authorized_instance.phone, BOB)
    r = call(api_client, authorized_instance, "leaveGroup", {"groupId": group_id})
    assert r.status_code == 200
    assert r.json() == {"leaveGroup": True}
    assert set(members(group_id)) == {ALICE, BOB}
    assert (
        call(api_client, authorized_instance, "getGroupData", {"groupId": group_id}).json()
        == "Error: forbidden"
    )


def test_the_last_admin_leaving_hands_admin_on(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE, BOB)
    assert call(api_client, authorized_instance, "leaveGroup", {"groupId": group_id}).json() == {
        "leaveGroup": True
    }
    assert members(group_id) == {ALICE: (True, False), BOB: (False, False)}


def test_leaving_a_group_we_are_not_in_is_false(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    theirs = foreign_group(ALICE, BOB)
    for group_id in (theirs, "120363000000000001@g.us"):
        assert call(api_client, authorized_instance, "leaveGroup", {"groupId": group_id}).json() == {
            "leaveGroup": False
        }


def test_it_validates_the_body(api_client: APIClient, authorized_instance: Instance) -> None:
    r = call(api_client, authorized_instance, "leaveGroup", {})
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'groupId' is required"
