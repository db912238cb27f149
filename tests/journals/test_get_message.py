from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.transport import ensure_phone
from instances.models import Instance
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


def test_it_returns_an_incoming_message(api_client: APIClient, authorized_instance: Instance) -> None:
    when = at(5)
    receive(authorized_instance, text_data("hello"), id_message="A1", when=when)
    r = post(api_client, authorized_instance, "getMessage", {"chatId": PEER_WID, "idMessage": "A1"})
    assert r.status_code == 200
    assert r.json() == {
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


def test_it_returns_a_message_sent_through_the_api(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    ensure_phone(PEER)
    with django_capture_on_commit_callbacks(execute=True):
        sent = post(
            api_client, authorized_instance, "sendMessage", {"chatId": PEER_WID, "message": "hi"}
        ).json()
    r = post(
        api_client, authorized_instance, "getMessage", {"chatId": PEER_WID, "idMessage": sent["idMessage"]}
    )
    body = r.json()
    assert body == {
        "type": "outgoing",
        "timestamp": body["timestamp"],
        "idMessage": sent["idMessage"],
        "statusMessage": "sent",
        "sendByApi": True,
        "typeMessage": "textMessage",
        "chatId": PEER_WID,
        "isForwarded": False,
        "forwardingScore": 0,
        "textMessage": "hi",
    }


def test_a_queued_message_is_pending(api_client: APIClient, instance: Instance) -> None:
    sent = post(api_client, instance, "sendMessage", {"chatId": PEER_WID, "message": "later"}).json()
    r = post(api_client, instance, "getMessage", {"chatId": PEER_WID, "idMessage": sent["idMessage"]})
    assert r.json()["statusMessage"] == "pending"


def test_edit_and_revoke_messages_have_their_shapes(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    receive(authorized_instance, text_data("typo"), id_message="T1")
    receive(
        authorized_instance,
        {"typeMessage": "editedMessage", "editedMessageData": {"textMessage": "fixed", "stanzaId": "T1"}},
        id_message="ED1",
    )
    receive(
        authorized_instance,
        {"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": "T1"}},
        id_message="DE1",
    )
    edit = post(
        api_client, authorized_instance, "getMessage", {"chatId": PEER_WID, "idMessage": "ED1"}
    ).json()
    assert edit["typeMessage"] == "editedMessage"
    assert edit["editedMessageData"] == {"textMessage": "fixed", "stanzaId": "T1"}
    revoke = post(
        api_client, authorized_instance, "getMessage", {"chatId": PEER_WID, "idMessage": "DE1"}
    ).json()
    assert revoke["deletedMessageData"] == {"stanzaId": "T1"}
    original = post(
        api_client, authorized_instance, "getMessage", {"chatId": PEER_WID, "idMessage": "T1"}
    ).json()
    assert (original["textMessage"], original["isEdited"], original["isDeleted"]) == ("fixed", True, True)


def test_unknown_message_is_refused(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "getMessage", {"chatId": PEER_WID, "idMessage": "NOPE"})
    assert r.status_code == 400
    assert r.json()["message"] == "message not found"


def test_query_count(
    api_client: APIClient, authorized_instance: Instance, django_assert_max_num_queries: Any
) -> None:
    receive(authorized_instance, text_data("x"), id_message="A1")
    with django_assert_max_num_queries(4):
        post(api_client, authorized_instance, "getMessage", {"chatId": PEER_WID, "idMessage": "A1"})


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"idMessage": "A1"}, "'chatId' is required"),
        ({"chatId": PEER_WID}, "'idMessage' is required"),
        ({"chatId": PEER_WID, "idMessage": ""}, "'idMessage' is not allowed to be empty"),
        ({"chatId": PEER_WID, "idMessage": 5}, "'idMessage' must be a string"),
        (
            {"chatId": "bad", "idMessage": "A1"},
            "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'",
        ),
        ({"chatId": PEER_WID, "idMessage": "A1", "x": 1}, "'x' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "getMessage", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(
        api_client, authorized_instance, "getMessage", "POST", {"chatId": PEER_WID, "idMessage": "A1"}
    )
