"""setGroupAdmin (API.md §9.6)."""

from __future__ import annotations

from rest_framework.test import APIClient

from instances.models import Instance
from tests.groups.helpers import ALICE, BOB, call, create, foreign_group, members, wid, with_contacts


def promote(client: APIClient, instance: Instance, group_id: str, phone: str) -> object:
    r = call(client, instance, "setGroupAdmin", {"groupId": group_id, "participantChatId": wid(phone)})
    assert r.status_code == 200, r.content
    return r.json()


def test_an_admin_promotes_a_member(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE)
    assert promote(api_client, authorized_instance, group_id, ALICE) == {"setGroupAdmin": True}
    assert members(group_id)[ALICE] == (True, False)
    participants = call(api_client, authorized_instance, "getGroupData", {"groupId": group_id}).json()[
        "participants"
    ]
    assert {"id": wid(ALICE), "isAdmin": True, "isSuperAdmin": False} in participants
    # Promoting an admin again changes nothing and succeeds.
    assert promote(api_client, authorized_instance, group_id, ALICE) == {"setGroupAdmin": True}


def test_refusals_are_false(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    mine = create(api_client, authorized_instance, ALICE)
    theirs = foreign_group(ALICE, authorized_instance.phone, BOB)
    assert promote(api_client, authorized_instance, mine, BOB) == {"setGroupAdmin": False}  # not a member
    assert promote(api_client, authorized_instance, theirs, BOB) == {
        "setGroupAdmin": False
    }  # we are no admin
    assert members(theirs)[BOB] == (False, False)


def test_it_validates_the_body(api_client: APIClient, authorized_instance: Instance) -> None:
    r = call(api_client, authorized_instance, "setGroupAdmin", {"participantChatId": wid(ALICE)})
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'groupId' is required"
