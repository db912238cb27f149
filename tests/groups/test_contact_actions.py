"""Simulated contacts act in groups through the emulator control API: create a group
with the instance, post every message type, reply, add or remove the instance,
promote, rename, change the picture; each visible to the instance."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from engines.emulator.models import EmuMessage
from engines.emulator.triggers import MESSAGE_KINDS
from instances.models import Instance
from journals.models import ChatState
from tests.conftest import LiveServer, method_url
from tests.groups.helpers import ALICE, BOB, members, wid, with_contacts
from tests.instances.test_set_profile_picture import jpeg
from tests.journals.emulated import Control, notifying_instance, queued_types, take, tick

# Fields for one message of each kind, as the personal-chat control API takes them.
SAMPLES: dict[str, dict[str, Any]] = {
    "textMessage": {"message": "hi group"},
    "extendedTextMessage": {"message": "see https://example.com", "title": "Example"},
    "imageMessage": {"caption": "pic"},
    "videoMessage": {},
    "audioMessage": {},
    "documentMessage": {"fileName": "doc.pdf"},
    "stickerMessage": {},
    "locationMessage": {"latitude": 1.5, "longitude": 2.5},
    "contactMessage": {"displayName": "Ann", "phoneContact": "79001234567"},
    "contactsArrayMessage": {"contacts": [{"displayName": "Ann", "phoneContact": "79001234567"}]},
    "groupInviteMessage": {"groupName": "Other group"},
    "pollMessage": {"message": "Lunch?", "options": ["yes", "no"]},
    "interactiveButtonsReply": {"body": "pick", "buttons": [{"buttonId": "1", "buttonText": "One"}]},
}
NEEDS_TARGET = {
    "quotedMessage",
    "reactionMessage",
    "pollUpdateMessage",
    "editedMessage",
    "deletedMessage",
    "buttonsResponseMessage",
    "listResponseMessage",
    "templateButtonsReplyMessage",
}


@pytest.fixture(autouse=True)
def _no_simulated_receipts(settings: Any) -> None:
    settings.EMULATOR_DELIVERED_AFTER_SECONDS = 3600
    settings.EMULATOR_READ_AFTER_SECONDS = 3600


def group_with_instance(live: LiveServer, instance: Instance, subject: str = "Club") -> str:
    return str(
        Control(live, instance).post(
            "groups", {"phoneNumber": ALICE, "subject": subject, "participants": [BOB]}
        )["groupId"]
    )


def test_a_contact_creates_a_group_with_the_instance(live_asgi: LiveServer) -> None:
    instance = with_contacts(notifying_instance(phone="79220000201"), ALICE, BOB)
    group_id = group_with_instance(live_asgi, instance)
    assert members(group_id) == {ALICE: (True, True), instance.phone: (False, False), BOB: (False, False)}
    tick()
    assert ChatState.objects.get(instance_id=instance.pk, chat_id=group_id).name == "Club"
    data = httpx.post(
        f"{live_asgi.url}{method_url(instance, 'getGroupData')}", json={"groupId": group_id}
    ).json()
    assert data["owner"] == wid(ALICE) and data["subject"] == "Club"
    listed = Control(live_asgi, instance).headers
    got = httpx.get(f"{live_asgi.url}/api/v1/emulator/instances/{instance.id}/groups", headers=listed).json()
    assert [g["groupId"] for g in got] == [group_id]


def test_members_post_every_message_type(live_asgi: LiveServer) -> None:
    instance = with_contacts(notifying_instance(phone="79220000211"), ALICE, BOB)
    group_id = group_with_instance(live_asgi, instance)
    control = Control(live_asgi, instance)
    assert set(SAMPLES) | NEEDS_TARGET == set(MESSAGE_KINDS)
    ids = {}
    for kind, fields in SAMPLES.items():
        ids[kind] = control.post(
            f"groups/{group_id}/incoming/{kind}", {"phoneNumber": BOB, "name": "Bob", **fields}
        )["idMessage"]
    tick()
    got = [take(live_asgi, instance) for _ in SAMPLES]
    assert [(n["idMessage"], n["messageData"]["typeMessage"]) for n in got] == [
        (ids[kind], kind) for kind in SAMPLES
    ]
    for n in got:
        assert n["typeWebhook"] == "incomingMessageReceived"
        assert n["senderData"]["chatId"] == group_id
        assert n["senderData"]["chatName"] == "Club"
        assert n["senderData"]["sender"] == wid(BOB)
    # Alice (another member) got her copy on the network too.
    assert EmuMessage.objects.filter(id_message=ids["textMessage"], recipient=ALICE).exists()

    # Replies, reactions, votes, edits and deletes point at group messages.
    poll = ids["pollMessage"]
    text = ids["textMessage"]
    control.post(
        f"groups/{group_id}/incoming/quotedMessage",
        {"phoneNumber": ALICE, "message": "re", "quotedMessageId": text},
    )
    control.post(
        f"groups/{group_id}/incoming/reactionMessage",
        {"phoneNumber": ALICE, "quotedMessageId": text, "reaction": "👍"},
    )
    control.post(
        f"groups/{group_id}/incoming/pollUpdateMessage",
        {"phoneNumber": ALICE, "stanzaId": poll, "votes": ["yes"]},
    )
    control.post(
        f"groups/{group_id}/incoming/editedMessage",
        {"phoneNumber": BOB, "stanzaId": text, "message": "edited"},
    )
    control.post(f"groups/{group_id}/incoming/deletedMessage", {"phoneNumber": BOB, "stanzaId": text})
    tick()
    got = [take(live_asgi, instance) for _ in range(5)]
    assert [n["messageData"]["typeMessage"] for n in got] == [
        "quotedMessage",
        "reactionMessage",
        "pollUpdateMessage",
        "editedMessage",
        "deletedMessage",
    ]
    assert got[0]["messageData"]["quotedMessage"]["participant"] == wid(BOB)
    assert got[0]["senderData"]["sender"] == wid(ALICE)
    # Someone else's message cannot be edited; a non-member cannot post.
    control.post(
        f"groups/{group_id}/incoming/editedMessage",
        {"phoneNumber": ALICE, "stanzaId": poll, "message": "x"},
        status=400,
    )
    control.post(
        f"groups/{group_id}/incoming/textMessage", {"phoneNumber": "79005550077", "message": "x"}, status=400
    )


def test_a_contact_removes_and_adds_the_instance(live_asgi: LiveServer) -> None:
    instance = with_contacts(notifying_instance(phone="79220000221"), ALICE, BOB)
    group_id = group_with_instance(live_asgi, instance)
    control = Control(live_asgi, instance)
    control.post(f"groups/{group_id}/remove", {"phoneNumber": ALICE})
    assert instance.phone not in members(group_id)
    control.post(f"groups/{group_id}/incoming/textMessage", {"phoneNumber": BOB, "message": "while away"})
    tick()
    assert "incomingMessageReceived" not in queued_types(instance)
    r = httpx.post(f"{live_asgi.url}{method_url(instance, 'getGroupData')}", json={"groupId": group_id})
    assert r.json() == "Error: forbidden"

    control.post(f"groups/{group_id}/add", {"phoneNumber": ALICE})
    control.post(f"groups/{group_id}/promote", {"phoneNumber": ALICE})
    back = control.post(
        f"groups/{group_id}/incoming/textMessage", {"phoneNumber": BOB, "message": "welcome back"}
    )["idMessage"]
    tick()
    got = take(live_asgi, instance)
    assert (got["idMessage"], got["senderData"]["chatId"]) == (back, group_id)
    assert members(group_id)[instance.phone] == (True, False)
    # Now an admin, the instance can add Bob's friend through the wire API.
    r = httpx.post(
        f"{live_asgi.url}{method_url(instance, 'removeGroupParticipant')}",
        json={"groupId": group_id, "participantChatId": wid(BOB)},
    )
    assert r.json() == {"removeParticipant": True}


def test_a_contact_renames_and_changes_the_picture(live_asgi: LiveServer) -> None:
    instance = with_contacts(notifying_instance(phone="79220000231"), ALICE, BOB)
    group_id = group_with_instance(live_asgi, instance)
    control = Control(live_asgi, instance)
    control.post(f"groups/{group_id}/rename", {"phoneNumber": BOB, "subject": "Renamed"})
    picture = base64.b64encode(jpeg()).decode()
    control.post(f"groups/{group_id}/picture", {"phoneNumber": BOB, "file": picture})
    control.post(
        f"groups/{group_id}/picture",
        {"phoneNumber": BOB, "file": base64.b64encode(b"no image").decode()},
        status=400,
    )
    control.post(f"groups/{group_id}/settings", {"phoneNumber": ALICE, "onlyAdminsSend": True})
    control.post(
        f"groups/{group_id}/settings", {"phoneNumber": BOB, "onlyAdminsEdit": True}, status=400
    )  # no admin
    tick()
    assert ChatState.objects.get(instance_id=instance.pk, chat_id=group_id).name == "Renamed"
    data = httpx.post(
        f"{live_asgi.url}{method_url(instance, 'getGroupData')}", json={"groupId": group_id}
    ).json()
    assert (data["subject"], data["subjectOwner"]) == ("Renamed", wid(BOB))
    avatar = httpx.post(
        f"{live_asgi.url}{method_url(instance, 'getAvatar')}", json={"chatId": group_id}
    ).json()
    assert avatar["urlAvatar"]
    # Only admins send now: the instance (a plain member) fails per message.
    r = httpx.post(
        f"{live_asgi.url}{method_url(instance, 'sendMessage')}", json={"chatId": group_id, "message": "x"}
    )
    assert r.status_code == 200


def test_another_tenants_group_cannot_be_driven(live_asgi: LiveServer) -> None:
    mine = with_contacts(notifying_instance(phone="79220000241"), ALICE, BOB)
    theirs = notifying_instance(phone="79220000242")
    group_id = group_with_instance(live_asgi, mine)
    r = Control(live_asgi, theirs).post(f"groups/{group_id}/add", {"phoneNumber": ALICE}, status=400)
    assert "never been in the group" in r["message"]
    assert theirs.phone not in members(group_id)
