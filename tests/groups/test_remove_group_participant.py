"""removeGroupParticipant (API.md §9.6)."""

from __future__ import annotations

from rest_framework.test import APIClient

from instances.models import Instance
from tests.groups.helpers import ALICE, BOB, call, create, foreign_group, members, wid, with_contacts


def remove(client: APIClient, instance: Instance, group_id: str, phone: str) -> object:
    r = call(
        client, instance, "removeGroupParticipant", {"groupId": group_id, "participantChatId": wid(phone)}
    )
    assert r.status_code == 200, r.content
    return r.json()


def test_an_admin_removes_a_member(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE, BOB)
    assert remove(api_client, authorized_instance, group_id, ALICE) == {"removeParticipant": True}
    assert set(members(group_id)) == {authorized_instance.phone, BOB}


def test_refusals_are_false(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    mine = create(api_client, authorized_instance, ALICE)
    theirs = foreign_group(ALICE, authorized_instance.phone, BOB)
    assert remove(api_client, authorized_instance, mine, BOB) == {"removeParticipant": False}  # not a member
    assert remove(api_client, authorized_instance, theirs, BOB) == {
        "removeParticipant": False
    }  # not an admin
    assert remove(api_client, authorized_instance, "120363000000000001@g.us", BOB) == {
        "removeParticipant": False
    }
    assert BOB in members(theirs)


def test_the_creator_cannot_be_removed(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    theirs = foreign_group(ALICE, authorized_instance.phone)
    from tests.groups.helpers import promote

    promote(theirs, authorized_instance.phone)
    assert remove(api_client, authorized_instance, theirs, ALICE) == {"removeParticipant": False}
    assert members(theirs)[ALICE] == (True, True)


def test_it_validates_the_body(api_client: APIClient, authorized_instance: Instance) -> None:
    r = call(
        api_client, authorized_instance, "removeGroupParticipant", {"groupId": "120363000000000001@g.us"}
    )
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'participantChatId' is required"
