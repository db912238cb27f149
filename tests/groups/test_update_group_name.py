"""updateGroupName (API.md §9.6)."""

from __future__ import annotations

from rest_framework.test import APIClient

from instances.models import Instance
from journals.models import ChatState
from tests.groups.helpers import ALICE, call, create, foreign_group, group, with_contacts


def test_it_renames_the_group(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE, name="Old")
    r = call(api_client, authorized_instance, "updateGroupName", {"groupId": group_id, "groupName": "New"})
    assert r.status_code == 200
    assert r.json() == {"updateGroupName": True}
    assert group(group_id).subject == "New"
    assert group(group_id).subject_owner == authorized_instance.phone
    assert ChatState.objects.get(instance_id=authorized_instance.pk, chat_id=group_id).name == "New"
    data = call(api_client, authorized_instance, "getGroupData", {"groupId": group_id}).json()
    assert data["subject"] == "New"


def test_a_member_renames_unless_only_admins_edit(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    with_contacts(authorized_instance)
    group_id = foreign_group(ALICE, authorized_instance.phone)
    assert call(
        api_client, authorized_instance, "updateGroupName", {"groupId": group_id, "groupName": "Mine"}
    ).json() == {"updateGroupName": True}
    g = group(group_id)
    g.only_admins_edit = True
    g.save(update_fields=["only_admins_edit"])
    assert call(
        api_client, authorized_instance, "updateGroupName", {"groupId": group_id, "groupName": "No"}
    ).json() == {"updateGroupName": False}
    assert group(group_id).subject == "Mine"


def test_unknown_or_foreign_group_is_false(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    theirs = foreign_group(ALICE)
    for group_id in ("120363000000000001@g.us", theirs):
        r = call(api_client, authorized_instance, "updateGroupName", {"groupId": group_id, "groupName": "X"})
        assert r.status_code == 200
        assert r.json() == {"updateGroupName": False}
    assert group(theirs).subject == "Theirs"


def test_it_validates_the_body(api_client: APIClient, authorized_instance: Instance) -> None:
    for body, message in [
        ({"groupName": "x"}, "'groupId' is required"),
        ({"groupId": "120363000000000001@g.us"}, "'groupName' is required"),
        ({"groupId": "120363000000000001@g.us", "groupName": ""}, "'groupName' is not allowed to be empty"),
        ({"groupId": "bad", "groupName": "x"}, "'groupId' must be in the format 'group_id@g.us'"),
    ]:
        r = call(api_client, authorized_instance, "updateGroupName", body)
        assert r.status_code == 400
        assert r.json()["message"] == f"Validation failed. Details: {message}"
