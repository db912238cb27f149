"""removeAdmin (API.md §9.6)."""

from __future__ import annotations

from rest_framework.test import APIClient

from instances.models import Instance
from tests.groups.helpers import ALICE, BOB, call, create, foreign_group, members, promote, wid, with_contacts


def demote(client: APIClient, instance: Instance, group_id: str, phone: str) -> object:
    r = call(client, instance, "removeAdmin", {"groupId": group_id, "participantChatId": wid(phone)})
    assert r.status_code == 200, r.content
    return r.json()


def test_an_admin_demotes_an_admin(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE)
    promote(group_id, ALICE)
    assert demote(api_client, authorized_instance, group_id, ALICE) == {"removeAdmin": True}
    assert members(group_id)[ALICE] == (False, False)


def test_the_creator_cannot_be_demoted(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    theirs = foreign_group(ALICE, authorized_instance.phone)
    promote(theirs, authorized_instance.phone)
    assert demote(api_client, authorized_instance, theirs, ALICE) == {"removeAdmin": False}
    assert members(theirs)[ALICE] == (True, True)


def test_refusals_are_false(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    theirs = foreign_group(ALICE, authorized_instance.phone, BOB)
    promote(theirs, BOB)
    assert demote(api_client, authorized_instance, theirs, BOB) == {"removeAdmin": False}  # we are no admin
    assert demote(api_client, authorized_instance, "120363000000000001@g.us", BOB) == {"removeAdmin": False}
    assert members(theirs)[BOB] == (True, False)


def test_the_path_is_remove_admin(api_client: APIClient, authorized_instance: Instance) -> None:
    body = {"groupId": "120363000000000001@g.us", "participantChatId": wid(ALICE)}
    assert call(api_client, authorized_instance, "removeGroupAdmin", body).status_code == 404
    assert call(api_client, authorized_instance, "removeadmin", body).status_code == 200
