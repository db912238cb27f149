"""createGroup (API.md §9.6)."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuGroup
from instances.models import Instance
from journals.models import ChatState
from tests.groups.helpers import ALICE, BOB, NOBODY, call, group, members, wid, with_contacts


def test_it_creates_the_group_on_the_network(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    r = call(
        api_client,
        authorized_instance,
        "createGroup",
        {"groupName": "Team", "chatIds": [wid(ALICE), wid(BOB)]},
    )
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["created", "chatId", "groupInviteLink"]
    assert body["created"] is True
    assert re.fullmatch(r"120363\d{12}@g\.us", body["chatId"])
    assert re.fullmatch(r"https://chat\.whatsapp\.com/[A-Za-z0-9]{22}", body["groupInviteLink"])
    created = group(body["chatId"])
    assert created.subject == "Team" and created.owner == authorized_instance.phone
    assert members(body["chatId"]) == {
        authorized_instance.phone: (True, True),
        ALICE: (False, False),
        BOB: (False, False),
    }
    # The group is in the chat list at once, under its subject.
    chat = ChatState.objects.get(instance_id=authorized_instance.pk, chat_id=body["chatId"])
    assert chat.name == "Team"


def test_numbers_without_whatsapp_are_left_out(api_client: APIClient, authorized_instance: Instance) -> None:
    with_contacts(authorized_instance)
    body = call(
        api_client,
        authorized_instance,
        "createGroup",
        {"groupName": "T", "chatIds": [wid(ALICE), wid(NOBODY)]},
    ).json()
    assert set(members(body["chatId"])) == {authorized_instance.phone, ALICE}


def test_it_validates_the_body(api_client: APIClient, authorized_instance: Instance) -> None:
    cases = [
        ({"chatIds": [wid(ALICE)]}, "'groupName' is required"),
        ({"groupName": "", "chatIds": [wid(ALICE)]}, "'groupName' is not allowed to be empty"),
        (
            {"groupName": "x" * 101, "chatIds": [wid(ALICE)]},
            "'groupName' length must be less than or equal to 100",
        ),
        ({"groupName": "T"}, "'chatIds' is required"),
        ({"groupName": "T", "chatIds": []}, "'chatIds' must contain at least 1 items"),
        ({"groupName": "T", "chatIds": ["120363000000000001@g.us"]}, "must be one of the next formats"),
        ({"groupName": "T", "chatIds": [wid(ALICE)], "extra": 1}, "'extra' is not allowed"),
    ]
    for body, message in cases:
        r = call(api_client, authorized_instance, "createGroup", body)
        assert r.status_code == 400, body
        assert r.json()["message"].startswith("Validation failed. Details: "), body
        assert message in r.json()["message"], (body, r.json())
    assert not EmuGroup.objects.exists()


def test_unauthorized_instance_is_refused(api_client: APIClient, instance: Instance) -> None:
    r = call(api_client, instance, "createGroup", {"groupName": "T", "chatIds": [wid(ALICE)]})
    assert r.status_code == 400
    assert r.json()["message"] == "instance is starting or not authorized"
    assert not EmuGroup.objects.exists()


def test_it_rejects_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    r = call(
        api_client,
        authorized_instance,
        "createGroup",
        {"groupName": "T", "chatIds": [wid(ALICE)]},
        token="0" * 50,
    )
    assert r.status_code == 401
    assert not EmuGroup.objects.exists()


def test_wrong_verb_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    from tests.conftest import method_url

    assert api_client.get(method_url(authorized_instance, "createGroup")).status_code == 404


def test_it_is_rate_limited_to_one_per_second(
    api_client: APIClient, authorized_instance: Instance, settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from instances import ratelimit

    settings.RATE_LIMITS_ENABLED = True  # type: ignore[attr-defined]
    ratelimit.reset()
    # Both calls in the same second of the limiter's clock, however slow the machine.
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_000.25)
    with_contacts(authorized_instance)
    body = {"groupName": "T", "chatIds": [wid(ALICE)]}
    assert call(api_client, authorized_instance, "createGroup", body).status_code == 200
    assert call(api_client, authorized_instance, "createGroup", body).status_code == 429
    assert EmuGroup.objects.count() == 1


def test_an_engine_without_groups_answers_400_naming_it(api_client: APIClient, account: object) -> None:
    from instances.models import State
    from tests.factories import make_instance

    waweb = make_instance(account, engine="cloud")  # type: ignore[arg-type]  # cloud has no groups
    Instance.objects.filter(pk=waweb.pk).update(
        state=State.AUTHORIZED, wid="79001112233@c.us", phone="79001112233"
    )
    waweb.refresh_from_db()
    r = call(api_client, waweb, "createGroup", {"groupName": "T", "chatIds": [wid(ALICE)]})
    assert r.status_code == 400
    assert "cloud" in r.json()["message"]
    r = call(api_client, waweb, "getGroupData", {"groupId": "120363000000000001@g.us"})
    assert r.status_code == 400 and "cloud" in r.json()["message"]
