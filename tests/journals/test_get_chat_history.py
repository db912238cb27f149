from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.transport import ensure_phone
from instances.models import Instance
from journals.models import ChangeKind, MessageChange
from tests.journals.chat_helpers import (
    PEER,
    PEER_WID,
    assert_validation,
    assert_wire_guards,
    at,
    post,
    receive,
    text_data,
)


@pytest.fixture
def peer(db: None) -> str:
    ensure_phone(PEER, "John")
    return PEER_WID


def history(client: APIClient, instance: Instance, **body: Any) -> Any:
    r = post(client, instance, "getChatHistory", {"chatId": PEER_WID, **body})
    assert r.status_code == 200, r.content
    return r.json()


def send_text(client: APIClient, instance: Instance, capture: Any, **body: Any) -> str:
    with capture(execute=True):
        r = post(client, instance, "sendMessage", {"chatId": PEER_WID, **body})
    assert r.status_code == 200, r.content
    return str(r.json()["idMessage"])


def test_it_merges_both_journals_newest_first(
    api_client: APIClient, authorized_instance: Instance, peer: str, django_capture_on_commit_callbacks: Any
) -> None:
    when = at(60)
    receive(authorized_instance, text_data("hello"), id_message="A1", when=when)
    sent = send_text(api_client, authorized_instance, django_capture_on_commit_callbacks, message="hi back")
    receive(authorized_instance, text_data("from my phone"), id_message="P1", direction="outgoing")
    items = history(api_client, authorized_instance)
    assert [i["idMessage"] for i in items] == ["P1", sent, "A1"]
    assert items[2] == {
        "type": "incoming",
        "timestamp": int(when.timestamp()),
        "idMessage": "A1",
        "typeMessage": "textMessage",
        "chatId": PEER_WID,
        "senderId": PEER_WID,
        "senderName": "John",
        "senderContactName": "John Doe",
        "isForwarded": False,
        "forwardingScore": 0,
        "textMessage": "hello",
    }
    api = items[1]
    assert api == {
        "type": "outgoing",
        "timestamp": api["timestamp"],
        "idMessage": sent,
        "statusMessage": "sent",
        "sendByApi": True,
        "typeMessage": "textMessage",
        "chatId": PEER_WID,
        "isForwarded": False,
        "forwardingScore": 0,
        "textMessage": "hi back",
    }
    assert items[0]["type"] == "outgoing"
    assert items[0]["sendByApi"] is False
    assert items[0]["statusMessage"] == "sent"
    assert "senderId" not in items[0]


def test_count_limits_and_defaults_to_100(api_client: APIClient, authorized_instance: Instance) -> None:
    for n in range(105):
        receive(authorized_instance, text_data(f"m{n}"), id_message=f"M{n:03d}", when=at(1000 - n))
    assert len(history(api_client, authorized_instance)) == 100
    three = history(api_client, authorized_instance, count=3)
    assert [i["idMessage"] for i in three] == ["M104", "M103", "M102"]


def test_other_chats_and_instances_stay_out(
    api_client: APIClient, authorized_instance: Instance, account: Any
) -> None:
    from tests.factories import make_instance

    other = make_instance(account, authorized=True)
    receive(authorized_instance, text_data("x"), id_message="X1", chat_id="79005550000@c.us")
    receive(other, text_data("y"), id_message="Y1")
    assert history(api_client, authorized_instance) == []


def test_media_is_flattened(api_client: APIClient, authorized_instance: Instance) -> None:
    data = {
        "typeMessage": "imageMessage",
        "fileMessageData": {
            "downloadUrl": "https://relay.test/media/f/t/pic.jpg",
            "caption": "Logo",
            "fileName": "pic.jpg",
            "jpegThumbnail": "/9j/4AAQ",
            "mimeType": "image/jpeg",
            "isAnimated": False,
            "forwardingScore": 0,
            "isForwarded": False,
        },
    }
    receive(authorized_instance, data, id_message="IMG1")
    (item,) = history(api_client, authorized_instance)
    assert "fileMessageData" not in item
    assert {
        k: item[k] for k in ("typeMessage", "downloadUrl", "caption", "fileName", "mimeType", "jpegThumbnail")
    } == {
        "typeMessage": "imageMessage",
        "downloadUrl": "https://relay.test/media/f/t/pic.jpg",
        "caption": "Logo",
        "fileName": "pic.jpg",
        "mimeType": "image/jpeg",
        "jpegThumbnail": "/9j/4AAQ",
    }


def test_every_message_type_has_its_shape(
    api_client: APIClient, authorized_instance: Instance, peer: str, django_capture_on_commit_callbacks: Any
) -> None:
    receive(authorized_instance, text_data("question"), id_message="Q1", when=at(50))
    receive(
        authorized_instance,
        {
            "typeMessage": "extendedTextMessage",
            "extendedTextMessageData": {
                "text": "https://example.com",
                "description": "d",
                "title": "t",
                "previewType": "None",
                "jpegThumbnail": "",
                "forwardingScore": 2,
                "isForwarded": True,
            },
        },
        id_message="E1",
        when=at(49),
    )
    receive(
        authorized_instance,
        {
            "typeMessage": "locationMessage",
            "locationMessageData": {
                "nameLocation": "Office",
                "address": "Street 1",
                "latitude": 55.7,
                "longitude": 37.6,
                "jpegThumbnail": "",
                "forwardingScore": 0,
                "isForwarded": False,
            },
        },
        id_message="L1",
        when=at(48),
    )
    receive(
        authorized_instance,
        {
            "typeMessage": "contactMessage",
            "contactMessageData": {"displayName": "Ann", "vcard": "BEGIN:VCARD"},
        },
        id_message="C1",
        when=at(47),
    )
    receive(
        authorized_instance,
        {
            "typeMessage": "quotedMessage",
            "extendedTextMessageData": {"text": "answer", "stanzaId": "Q1", "participant": PEER_WID},
            "quotedMessage": {
                "stanzaId": "Q1",
                "participant": PEER_WID,
                "typeMessage": "textMessage",
                "textMessage": "question",
            },
        },
        id_message="R1",
        when=at(46),
    )
    receive(
        authorized_instance,
        {
            "typeMessage": "reactionMessage",
            "extendedTextMessageData": {"text": "👍"},
            "quotedMessage": {"stanzaId": "Q1", "participant": PEER_WID},
        },
        id_message="RE1",
        when=at(45),
    )
    reply = send_text(
        api_client,
        authorized_instance,
        django_capture_on_commit_callbacks,
        message="ok",
        quotedMessageId="Q1",
    )
    items = {i["idMessage"]: i for i in history(api_client, authorized_instance)}
    assert items["E1"]["extendedTextMessage"] == {
        "text": "https://example.com",
        "description": "d",
        "title": "t",
        "previewType": "None",
        "jpegThumbnail": "",
    }
    assert items["E1"]["textMessage"] == "https://example.com"
    assert (items["E1"]["isForwarded"], items["E1"]["forwardingScore"]) == (True, 2)
    assert items["L1"]["location"] == {
        "nameLocation": "Office",
        "address": "Street 1",
        "latitude": 55.7,
        "longitude": 37.6,
        "jpegThumbnail": "",
    }
    assert items["C1"]["contact"] == {"displayName": "Ann", "vcard": "BEGIN:VCARD"}
    assert items["R1"]["typeMessage"] == "quotedMessage"
    assert items["R1"]["textMessage"] == "answer"
    assert items["R1"]["quotedMessage"] == {
        "stanzaId": "Q1",
        "participant": PEER_WID,
        "typeMessage": "textMessage",
        "textMessage": "question",
    }
    assert items["RE1"]["typeMessage"] == "reactionMessage"
    assert items["RE1"]["textMessage"] == "👍"
    assert items["RE1"]["quotedMessage"] == {"stanzaId": "Q1", "participant": PEER_WID}
    mine = items[reply]
    assert mine["typeMessage"] == "quotedMessage"
    assert mine["textMessage"] == "ok"
    assert mine["extendedTextMessage"] == {"text": "ok", "stanzaId": "Q1", "participant": PEER_WID}
    assert mine["quotedMessage"] == {
        "stanzaId": "Q1",
        "participant": PEER_WID,
        "typeMessage": "textMessage",
        "textMessage": "question",
    }


def test_poll_shows_its_current_tally(
    api_client: APIClient, authorized_instance: Instance, peer: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = post(
            api_client,
            authorized_instance,
            "sendPoll",
            {
                "chatId": PEER_WID,
                "message": "Lunch?",
                "options": [{"optionName": "Yes"}, {"optionName": "No"}],
            },
        )
    poll_id = r.json()["idMessage"]

    def vote(id_message: str, choice: str, seconds_ago: float) -> None:
        votes = [{"optionName": o, "optionVoters": [PEER_WID] if o == choice else []} for o in ("Yes", "No")]
        data = {
            "typeMessage": "pollUpdateMessage",
            "pollMessageData": {
                "stanzaId": poll_id,
                "name": "Lunch?",
                "votes": votes,
                "multipleAnswers": False,
            },
        }
        receive(authorized_instance, data, id_message=id_message, when=at(seconds_ago))

    vote("V1", "Yes", 20)
    (item,) = history(api_client, authorized_instance)
    assert item["typeMessage"] == "pollMessage"
    assert item["pollMessageData"] == {
        "name": "Lunch?",
        "options": [{"optionName": "Yes"}, {"optionName": "No"}],
        "multipleAnswers": False,
        "votes": [
            {"optionName": "Yes", "optionVoters": [PEER_WID]},
            {"optionName": "No", "optionVoters": []},
        ],
    }
    vote("V2", "No", 10)
    vote("V0", "Yes", 30)  # an older vote arriving late changes nothing
    (item,) = history(api_client, authorized_instance)
    assert item["pollMessageData"]["votes"] == [
        {"optionName": "Yes", "optionVoters": []},
        {"optionName": "No", "optionVoters": [PEER_WID]},
    ]


def test_edits_and_deletes_are_applied_to_their_message(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    receive(authorized_instance, text_data("typo"), id_message="T1", when=at(30))
    receive(authorized_instance, text_data("gone"), id_message="T2", when=at(29))
    receive(
        authorized_instance,
        {"typeMessage": "editedMessage", "editedMessageData": {"textMessage": "fixed", "stanzaId": "T1"}},
        id_message="ED1",
        when=at(20),
    )
    receive(
        authorized_instance,
        {"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": "T2"}},
        id_message="DE1",
        when=at(10),
    )
    items = history(api_client, authorized_instance)
    assert [i["idMessage"] for i in items] == ["T2", "T1"]
    assert items[1]["textMessage"] == "fixed"
    assert items[1]["isEdited"] is True
    assert items[0]["isDeleted"] is True
    assert "isEdited" not in items[0]


def test_hidden_messages_are_left_out(api_client: APIClient, authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("a"), id_message="H1")
    MessageChange.objects.create(
        instance=authorized_instance, chat_id=PEER_WID, id_message="H1", kind=ChangeKind.HIDDEN
    )
    assert history(api_client, authorized_instance) == []


def test_query_count_does_not_grow_with_the_page(
    api_client: APIClient,
    authorized_instance: Instance,
    peer: str,
    django_capture_on_commit_callbacks: Any,
    django_assert_max_num_queries: Any,
) -> None:
    for n in range(30):
        receive(authorized_instance, text_data(f"m{n}"), id_message=f"M{n}", when=at(100 - n))
    for n in range(5):
        send_text(
            api_client,
            authorized_instance,
            django_capture_on_commit_callbacks,
            message=f"s{n}",
            quotedMessageId=f"M{n}",
        )
    with django_assert_max_num_queries(7):
        items = history(api_client, authorized_instance, count=100)
    assert len(items) == 35


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'chatId' is required"),
        ({"chatId": ""}, "'chatId' is not allowed to be empty"),
        ({"chatId": 79001234567}, "'chatId' must be a string"),
        (
            {"chatId": "123@s.whatsapp.net"},
            "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'",
        ),
        ({"chatId": PEER_WID, "count": "many"}, "'count' must be a number"),
        ({"chatId": PEER_WID, "count": 0}, "'count' must be larger than or equal to 1"),
        ({"chatId": PEER_WID, "extra": 1}, "'extra' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "getChatHistory", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "getChatHistory", "POST", {"chatId": PEER_WID})
