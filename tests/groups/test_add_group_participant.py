"""addGroupParticipant (API.md §9.6)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from engines.emulator import groups as emulator_groups
from engines.emulator.models import EmuSignal
from instances.models import Instance
from tests.groups.helpers import (
    ALICE,
    BOB,
    CAROL,
    NOBODY,
    call,
    create,
    foreign_group,
    members,
    wid,
    with_contacts,
)


def add(client: APIClient, instance: Instance, group_id: str, phone: str) -> object:
    r = call(client, instance, "addGroupParticipant", {"groupId": group_id, "participantChatId": wid(phone)})
    assert r.status_code == 200, r.content
    return r.json()


def test_an_admin_adds_a_member(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE)
    assert add(api_client, authorized_instance, group_id, BOB) == {"addParticipant": True}
    assert members(group_id)[BOB] == (False, False)
    # The new member's phone is told it joined (its instance's chat list learns it).
    assert EmuSignal.objects.filter(to_phone=BOB, kind="group", payload__action="join").exists()


def test_refusals_are_false(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    mine = create(api_client, authorized_instance, ALICE)
    theirs = foreign_group(ALICE, authorized_instance.phone)  # we are a member, not an admin
    assert add(api_client, authorized_instance, mine, ALICE) == {"addParticipant": False}  # already in
    assert add(api_client, authorized_instance, mine, NOBODY) == {"addParticipant": False}  # no WhatsApp
    assert add(api_client, authorized_instance, theirs, BOB) == {"addParticipant": False}  # not an admin
    assert add(api_client, authorized_instance, "120363000000000001@g.us", BOB) == {"addParticipant": False}
    assert set(members(mine)) == {authorized_instance.phone, ALICE}
    assert set(members(theirs)) == {ALICE, authorized_instance.phone}


def test_a_full_group_refuses(
    api_client: APIClient, authorized_instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_contacts(authorized_instance)
    group_id = create(api_client, authorized_instance, ALICE, BOB)
    monkeypatch.setattr(emulator_groups, "MAX_MEMBERS", 3)
    assert add(api_client, authorized_instance, group_id, CAROL) == {"addParticipant": False}
    assert CAROL not in members(group_id)


def test_it_validates_the_body(api_client: APIClient, authorized_instance: Instance) -> None:
    for body, message in [
        ({"groupId": "120363000000000001@g.us"}, "'participantChatId' is required"),
        ({"participantChatId": wid(ALICE)}, "'groupId' is required"),
        (
            {"groupId": "120363000000000001@g.us", "participantChatId": "120363000000000002@g.us"},
            "'participantChatId' must be one of the next formats: 'phone_number@c.us' or 'chat_id@lid'",
        ),
    ]:
        r = call(api_client, authorized_instance, "addGroupParticipant", body)
        assert r.status_code == 400
        assert r.json()["message"] == f"Validation failed. Details: {message}"
