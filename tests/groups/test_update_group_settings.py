"""updateGroupSettings (API.md §9.6, beta)."""

from __future__ import annotations

from rest_framework.test import APIClient

from instances.models import Instance
from tests.groups.helpers import ALICE, call, create, foreign_group, group, with_contacts


def test_an_admin_changes_the_settings(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE)
    body = {
        "groupId": group_id,
        "allowParticipantsSendMessages": False,
        "allowParticipantsEditGroupSettings": False,
    }
    r = call(api_client, authorized_instance, "updateGroupSettings", body)
    assert r.status_code == 200
    assert r.json() == {"updateGroupSettings": True}
    g = group(group_id)
    assert g.only_admins_send is True and g.only_admins_edit is True
    # Only the given setting changes.
    r = call(
        api_client,
        authorized_instance,
        "updateGroupSettings",
        {"groupId": group_id, "allowParticipantsSendMessages": True},
    )
    g = group(group_id)
    assert g.only_admins_send is False and g.only_admins_edit is True


def test_a_member_who_is_no_admin_gets_not_enough_rights(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    with_contacts(authorized_instance)
    theirs = foreign_group(ALICE, authorized_instance.phone)
    r = call(
        api_client,
        authorized_instance,
        "updateGroupSettings",
        {"groupId": theirs, "allowParticipantsSendMessages": False},
    )
    assert r.status_code == 200
    assert r.json() == {"updateGroupSettings": False, "reason": "NOT_ENOUGH_RIGHTS"}
    assert group(theirs).only_admins_send is False


def test_a_non_member_gets_forbidden(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    theirs = foreign_group(ALICE)
    r = call(
        api_client,
        authorized_instance,
        "updateGroupSettings",
        {"groupId": theirs, "allowParticipantsSendMessages": False},
    )
    assert r.json() == {"updateGroupSettings": False, "reason": "FORBIDDEN"}
    r = call(api_client, authorized_instance, "updateGroupSettings", {"groupId": "120363000000000001@g.us"})
    assert r.json() == {"updateGroupSettings": False, "reason": "ITEM_NOT_FOUND"}


def test_it_validates_the_body(api_client: APIClient, authorized_instance: Instance) -> None:
    for body, message in [
        ({}, "'groupId' is required"),
        (
            {"groupId": "120363000000000001@g.us", "allowParticipantsSendMessages": "maybe"},
            "'allowParticipantsSendMessages' must be a boolean",
        ),
    ]:
        r = call(api_client, authorized_instance, "updateGroupSettings", body)
        assert r.status_code == 400
        assert r.json()["message"] == f"Validation failed. Details: {message}"
