"""Group messages on the emulated network: every send method reaches exactly the
current members; instance members get incomingMessageReceived in the group chat;
simulated members acknowledge; non-members and muted members fail per message."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from engines.emulator.models import EmuMessage
from instances.models import Instance
from journals.models import ChatState
from messaging.models import PENDING_STATUSES, OutgoingMessage, OutgoingStatus, SendCursor
from messaging.services import drain_queue
from tests.conftest import LiveServer, method_url
from tests.groups.helpers import ALICE, BOB, wid, with_contacts
from tests.journals.emulated import (
    forget_notifications,
    notifying_instance,
    queued_types,
    take,
    tick,
    wait_for,
)


@pytest.fixture(autouse=True)
def _no_simulated_receipts(settings: Any) -> None:
    settings.EMULATOR_DELIVERED_AFTER_SECONDS = 3600
    settings.EMULATOR_READ_AFTER_SECONDS = 3600


def api(live: LiveServer, instance: Instance, method: str, body: dict[str, Any]) -> Any:
    r = httpx.post(f"{live.url}{method_url(instance, method)}", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def send(live: LiveServer, instance: Instance, method: str, body: dict[str, Any]) -> str:
    """Call a send method and drain the queue until the message has left it (the
    pacing between two sends is skipped, as a worker's next pass would)."""
    id_message = str(api(live, instance, method, body)["idMessage"])
    return drained(instance, id_message)


def drained(instance: Instance, id_message: str) -> str:
    rows = OutgoingMessage.objects.filter(instance_id=instance.pk, id_message=id_message)

    def done() -> bool:
        if not rows.filter(status__in=PENDING_STATUSES).exists():
            return True
        SendCursor.objects.filter(instance_id=instance.pk).update(last_sent_at=None)
        drain_queue(instance.pk, "test")
        return not rows.filter(status__in=PENDING_STATUSES).exists()

    wait_for(done)
    return id_message


def status_of(instance: Instance, id_message: str) -> OutgoingMessage:
    return OutgoingMessage.objects.get(instance=instance, id_message=id_message)


def test_a_group_message_reaches_every_current_member(live_asgi: LiveServer) -> None:
    a = with_contacts(notifying_instance(phone="79220000101"), ALICE)
    b = notifying_instance(phone="79220000102")
    c = notifying_instance(phone="79220000103")  # never in the group
    group_id = api(live_asgi, a, "createGroup", {"groupName": "Friends", "chatIds": [b.wid, wid(ALICE)]})[
        "chatId"
    ]
    tick()  # B's session learns it joined: the group is in its chat list, no notification
    assert ChatState.objects.get(instance_id=b.pk, chat_id=group_id).name == "Friends"
    assert queued_types(b) == []
    contacts = httpx.get(f"{live_asgi.url}{method_url(b, 'getContacts')}?group=true").json()
    assert contacts == [{"id": group_id, "name": "Friends", "contactName": "", "type": "group"}]
    forget_notifications(a)

    id_message = send(live_asgi, a, "sendMessage", {"chatId": group_id, "message": "hello all"})
    assert status_of(a, id_message).status == OutgoingStatus.SENT
    # One network copy per member (B, Alice) and the sender's own copy.
    assert sorted(EmuMessage.objects.filter(id_message=id_message).values_list("recipient", flat=True)) == [
        "",
        ALICE,
        b.phone,
    ]
    tick()

    got = take(live_asgi, b)
    assert got["typeWebhook"] == "incomingMessageReceived"
    assert got["idMessage"] == id_message
    assert got["senderData"] == {
        "chatId": group_id,
        "chatName": "Friends",
        "sender": a.wid,
        "senderName": a.profile_name,
        "senderContactName": "",
    }
    assert got["messageData"] == {
        "typeMessage": "textMessage",
        "textMessageData": {"textMessage": "hello all"},
    }
    assert queued_types(c) == []
    sent = [take(live_asgi, a) for _ in range(3)]
    assert [(n["typeWebhook"], n.get("status")) for n in sent] == [
        ("outgoingAPIMessageReceived", None),
        ("outgoingMessageStatus", "sent"),
        ("outgoingMessageStatus", "delivered"),
    ]
    assert sent[0]["senderData"]["chatId"] == group_id and sent[2]["chatId"] == group_id

    # B's journals show the group chat with its participant sender.
    history = api(live_asgi, b, "getChatHistory", {"chatId": group_id, "count": 10})
    assert [(m["idMessage"], m["senderId"], m["chatId"]) for m in history] == [(id_message, a.wid, group_id)]
    message = api(live_asgi, b, "getMessage", {"chatId": group_id, "idMessage": id_message})
    assert message["senderId"] == a.wid and message["textMessage"] == "hello all"
    last = httpx.get(f"{live_asgi.url}{method_url(b, 'lastIncomingMessages')}").json()
    assert [(m["chatId"], m["senderId"]) for m in last] == [(group_id, a.wid)]
    chats = httpx.get(f"{live_asgi.url}{method_url(b, 'getChats')}").json()
    assert group_id in [chat["id"] for chat in chats]

    # B answers in the group; A receives it from B.
    reply = send(
        live_asgi, b, "sendMessage", {"chatId": group_id, "message": "hi", "quotedMessageId": id_message}
    )
    tick()
    got = take(live_asgi, a)
    assert (
        got["typeWebhook"],
        got["idMessage"],
        got["senderData"]["chatId"],
        got["senderData"]["sender"],
    ) == (
        "incomingMessageReceived",
        reply,
        group_id,
        b.wid,
    )
    assert got["messageData"]["typeMessage"] == "quotedMessage"
    assert got["messageData"]["quotedMessage"]["stanzaId"] == id_message
    assert got["messageData"]["quotedMessage"]["participant"] == a.wid


def test_removal_stops_delivery_from_that_moment(live_asgi: LiveServer) -> None:
    a = notifying_instance(phone="79220000111")
    b = notifying_instance(phone="79220000112")
    group_id = api(live_asgi, a, "createGroup", {"groupName": "G", "chatIds": [b.wid]})["chatId"]
    first = send(live_asgi, a, "sendMessage", {"chatId": group_id, "message": "one"})
    assert api(live_asgi, a, "removeGroupParticipant", {"groupId": group_id, "participantChatId": b.wid}) == {
        "removeParticipant": True
    }
    second = send(live_asgi, a, "sendMessage", {"chatId": group_id, "message": "two"})
    tick()
    got = take(live_asgi, b)
    assert got["idMessage"] == first
    assert "incomingMessageReceived" not in queued_types(b)
    assert not EmuMessage.objects.filter(id_message=second, recipient=b.phone).exists()

    # B is no longer in it: its own messages to the group fail with notInGroup.
    forget_notifications(b)
    mine = send(live_asgi, b, "sendMessage", {"chatId": group_id, "message": "let me in"})
    assert status_of(b, mine).status == OutgoingStatus.NOT_IN_GROUP
    notice = take(live_asgi, b)
    assert (notice["typeWebhook"], notice["status"], notice["chatId"]) == (
        "outgoingMessageStatus",
        "notInGroup",
        group_id,
    )
    # Only that message failed: the next one to a personal chat goes.
    ok = send(live_asgi, b, "sendMessage", {"chatId": a.wid, "message": "ok"})
    assert status_of(b, ok).status == OutgoingStatus.SENT


def test_only_admins_may_send_when_the_group_says_so(live_asgi: LiveServer) -> None:
    a = notifying_instance(phone="79220000121")
    b = notifying_instance(phone="79220000122")
    group_id = api(live_asgi, a, "createGroup", {"groupName": "Announcements", "chatIds": [b.wid]})["chatId"]
    assert api(
        live_asgi, a, "updateGroupSettings", {"groupId": group_id, "allowParticipantsSendMessages": False}
    ) == {"updateGroupSettings": True}
    muted = send(live_asgi, b, "sendMessage", {"chatId": group_id, "message": "may I?"})
    row = status_of(b, muted)
    assert row.status == OutgoingStatus.FAILED
    assert row.description == "Only admins can send messages to this group"
    assert not EmuMessage.objects.filter(id_message=muted).exists()
    # Promoted, B may.
    api(live_asgi, a, "setGroupAdmin", {"groupId": group_id, "participantChatId": b.wid})
    allowed = send(live_asgi, b, "sendMessage", {"chatId": group_id, "message": "now I can"})
    assert status_of(b, allowed).status == OutgoingStatus.SENT


def test_every_send_method_reaches_the_members(live_asgi: LiveServer) -> None:
    a = notifying_instance(phone="79220000131")
    b = notifying_instance(phone="79220000132")
    group_id = api(live_asgi, a, "createGroup", {"groupName": "All kinds", "chatIds": [b.wid]})["chatId"]
    sends = [
        ("sendMessage", {"message": "text"}, "textMessage"),
        ("sendLocation", {"latitude": 55.7, "longitude": 37.6, "nameLocation": "Here"}, "locationMessage"),
        ("sendContact", {"contact": {"phoneContact": 79001234567, "firstName": "Ann"}}, "contactMessage"),
        (
            "sendPoll",
            {"message": "Lunch?", "options": [{"optionName": "yes"}, {"optionName": "no"}]},
            "pollMessage",
        ),
    ]
    ids = [send(live_asgi, a, method, {"chatId": group_id, **body}) for method, body, _ in sends]
    r = httpx.post(
        f"{live_asgi.url}{method_url(a, 'sendFileByUpload')}",
        data={"chatId": group_id, "caption": "a file"},
        files={"file": ("notes.txt", b"hello", "text/plain")},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    file_id = drained(a, r.json()["idMessage"])
    tick()
    got = [take(live_asgi, b) for _ in range(len(sends) + 1)]
    assert [(n["idMessage"], n["messageData"]["typeMessage"]) for n in got] == [
        *[(i, kind) for i, (_, _, kind) in zip(ids, sends, strict=True)],
        (file_id, "documentMessage"),
    ]
    assert {n["senderData"]["chatId"] for n in got} == {group_id}
    assert {n["senderData"]["sender"] for n in got} == {a.wid}


def test_simulated_members_acknowledge(live_asgi: LiveServer, settings: Any) -> None:
    settings.EMULATOR_DELIVERED_AFTER_SECONDS = 0
    settings.EMULATOR_READ_AFTER_SECONDS = 0
    a = with_contacts(notifying_instance(phone="79220000141"), ALICE, BOB)
    group_id = api(live_asgi, a, "createGroup", {"groupName": "Sim", "chatIds": [wid(ALICE), wid(BOB)]})[
        "chatId"
    ]
    id_message = send(live_asgi, a, "sendMessage", {"chatId": group_id, "message": "hey"})
    tick()
    tick()
    assert status_of(a, id_message).status == OutgoingStatus.READ
    assert EmuMessage.objects.filter(id_message=id_message, read_at__isnull=False).count() == 3
