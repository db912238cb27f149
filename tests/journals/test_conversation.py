"""Two emulated instances on one server talk to each other; every journal method on
both sides tells the same story."""

from typing import Any

from rest_framework.test import APIClient

from engines.emulator.triggers import phone_sends
from instances.models import Instance
from instances.runner import Runner
from messaging.models import SendCursor
from tests.factories import make_instance
from tests.journals.chat_helpers import get, post


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["idMessage"] for i in items]


def test_two_instances_converse(db: None, api_client: APIClient, django_capture_on_commit_callbacks: Any) -> None:
    alice = make_instance(authorized=True, phone="79001110001")
    bob = make_instance(authorized=True, phone="79001110002")
    runner = Runner()

    def send(sender: Instance, method: str, body: dict[str, Any]) -> str:
        # The test drives time: the pacing delay between sends has passed.
        SendCursor.objects.filter(instance=sender).update(last_sent_at=None)
        with django_capture_on_commit_callbacks(execute=True):
            r = post(api_client, sender, method, body)
        assert r.status_code == 200, r.content
        runner.tick()
        runner.tick()
        return str(r.json()["idMessage"])

    hello = send(alice, "sendMessage", {"chatId": bob.wid, "message": "Hello Bob"})
    reply = send(bob, "sendMessage", {"chatId": alice.wid, "message": "Hi Alice", "quotedMessageId": hello})
    poll = send(
        alice,
        "sendPoll",
        {"chatId": bob.wid, "message": "Lunch?", "options": [{"optionName": "Yes"}, {"optionName": "No"}]},
    )
    vote = phone_sends(bob, phone=alice.phone, kind="pollUpdateMessage", fields={"stanzaId": poll, "votes": ["Yes"]})
    runner.tick()
    where = send(bob, "sendLocation", {"chatId": alice.wid, "latitude": 55.75, "longitude": 37.61, "nameLocation": "Cafe"})

    r = post(api_client, alice, "editMessage", {"chatId": bob.wid, "idMessage": hello, "message": "Hello, Bob!"})
    assert r.status_code == 200
    r = post(api_client, bob, "deleteMessage", {"chatId": alice.wid, "idMessage": where})
    assert (r.status_code, r.content) == (200, b"")
    runner.tick()
    assert post(api_client, alice, "readChat", {"chatId": bob.wid}).json() == {"setRead": True}

    a_history = post(api_client, alice, "getChatHistory", {"chatId": bob.wid}).json()
    b_history = post(api_client, bob, "getChatHistory", {"chatId": alice.wid}).json()
    assert ids(a_history) == ids(b_history) == [where, poll, reply, hello]
    assert [i["type"] for i in a_history] == ["incoming", "outgoing", "incoming", "outgoing"]
    assert [i["type"] for i in b_history] == ["outgoing", "incoming", "outgoing", "incoming"]
    assert [i["typeMessage"] for i in a_history] == ["locationMessage", "pollMessage", "quotedMessage", "textMessage"]
    assert [i["typeMessage"] for i in b_history] == ["locationMessage", "pollMessage", "quotedMessage", "textMessage"]

    a = {i["idMessage"]: i for i in a_history}
    b = {i["idMessage"]: i for i in b_history}
    # The edit reached both sides; the revoke too.
    assert a[hello]["textMessage"] == b[hello]["textMessage"] == "Hello, Bob!"
    assert a[hello]["isEdited"] is b[hello]["isEdited"] is True
    assert a[where]["isDeleted"] is b[where]["isDeleted"] is True
    assert a[where]["location"]["nameLocation"] == b[where]["location"]["nameLocation"] == "Cafe"
    # The reply quotes the first message on both sides.
    for side in (a, b):
        assert side[reply]["textMessage"] == "Hi Alice"
        assert side[reply]["quotedMessage"]["stanzaId"] == hello
        assert side[reply]["quotedMessage"]["participant"] == alice.wid
    # Bob's vote is in the poll's tally on both sides.
    tally = [{"optionName": "Yes", "optionVoters": [bob.wid]}, {"optionName": "No", "optionVoters": []}]
    assert a[poll]["pollMessageData"]["votes"] == b[poll]["pollMessageData"]["votes"] == tally
    # Statuses: Alice read Bob's messages; Bob has not read hers yet.
    assert b[reply]["statusMessage"] == "read"
    assert a[hello]["statusMessage"] == "delivered"
    assert a[poll]["statusMessage"] == "delivered"
    assert post(api_client, bob, "readChat", {"chatId": alice.wid}).json() == {"setRead": True}
    assert post(api_client, alice, "getMessage", {"chatId": bob.wid, "idMessage": poll}).json()["statusMessage"] == "read"

    # getMessage agrees with the history on both sides.
    for id_message in (hello, reply, poll, where):
        mine = post(api_client, alice, "getMessage", {"chatId": bob.wid, "idMessage": id_message}).json()
        theirs = post(api_client, bob, "getMessage", {"chatId": alice.wid, "idMessage": id_message}).json()
        assert mine["idMessage"] == theirs["idMessage"] == id_message
        assert {mine["type"], theirs["type"]} == {"incoming", "outgoing"}

    # What one sent is what the other received.
    assert ids(get(api_client, alice, "lastOutgoingMessages").json()) == [poll, hello]
    assert ids(get(api_client, bob, "lastIncomingMessages").json()) == [poll, hello]
    assert ids(get(api_client, bob, "lastOutgoingMessages").json()) == [where, reply]
    assert ids(get(api_client, alice, "lastIncomingMessages").json()) == [where, reply]
    # The vote itself is not a message of the chat: both sides keep it as a change.
    assert vote.id_message not in ids(a_history) + ids(b_history)
    # Both sides list the chat.
    assert [c["id"] for c in get(api_client, alice, "getChats").json()] == [bob.wid]
    assert [c["id"] for c in get(api_client, bob, "getChats").json()] == [alice.wid]
