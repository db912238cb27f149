from typing import Any

import pytest
from rest_framework.test import APIClient

from instances.models import Instance
from tests.journals.chat_helpers import (
    PEER_WID,
    assert_validation,
    assert_wire_guards,
    at,
    get,
    receive,
    text_data,
)


def test_it_lists_received_messages_of_the_window_newest_first(
    api_client: APIClient, authorized_instance: Instance
) -> None:
    when = at(60)
    receive(authorized_instance, text_data("old"), id_message="OLD", when=at(3 * 3600))
    receive(authorized_instance, text_data("hello"), id_message="A1", when=when)
    receive(
        authorized_instance, text_data("other chat"), id_message="B1", chat_id="79005550000@c.us", when=at(30)
    )
    receive(authorized_instance, text_data("mine"), id_message="P1", direction="outgoing")
    r = get(api_client, authorized_instance, "lastIncomingMessages", "minutes=120")
    assert r.status_code == 200
    items = r.json()
    assert [i["idMessage"] for i in items] == ["B1", "A1"]
    assert list(items[1])[0] == "type"  # first, as getChatHistory's items
    assert items[1] == {
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


def test_default_window_is_a_day(api_client: APIClient, authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("yesterday"), id_message="Y", when=at(23 * 3600))
    receive(authorized_instance, text_data("too old"), id_message="Z", when=at(25 * 3600))
    assert [i["idMessage"] for i in get(api_client, authorized_instance, "lastIncomingMessages").json()] == [
        "Y"
    ]


def test_votes_edits_and_revokes_are_not_listed(api_client: APIClient, authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("typo"), id_message="T1", when=at(20))
    receive(
        authorized_instance,
        {"typeMessage": "editedMessage", "editedMessageData": {"textMessage": "fixed", "stanzaId": "T1"}},
        id_message="ED1",
    )
    items = get(api_client, authorized_instance, "lastIncomingMessages").json()
    assert [(i["idMessage"], i["textMessage"], i["isEdited"]) for i in items] == [("T1", "fixed", True)]


def test_query_count(
    api_client: APIClient, authorized_instance: Instance, django_assert_max_num_queries: Any
) -> None:
    for n in range(40):
        receive(authorized_instance, text_data(f"m{n}"), id_message=f"M{n}", chat_id=f"7900555{n:04d}@c.us")
    with django_assert_max_num_queries(4):
        items = get(api_client, authorized_instance, "lastIncomingMessages").json()
    assert len(items) == 40


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("minutes=soon", "'minutes' must be a number"),
        ("minutes=0", "'minutes' must be larger than or equal to 1"),
        ("hours=1", "'hours' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, query: str, detail: str) -> None:
    assert_validation(get(api_client, authorized_instance, "lastIncomingMessages", query), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "lastIncomingMessages", "GET")
