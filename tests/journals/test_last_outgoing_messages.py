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
    get,
    post,
    receive,
    text_data,
)


def test_it_lists_api_and_phone_messages_newest_first(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    ensure_phone(PEER)
    receive(authorized_instance, text_data("incoming"), id_message="IN")
    with django_capture_on_commit_callbacks(execute=True):
        sent = post(
            api_client, authorized_instance, "sendMessage", {"chatId": PEER_WID, "message": "hi"}
        ).json()
    failed = post(
        api_client, authorized_instance, "sendMessage", {"chatId": "79000000009@c.us", "message": "x"}
    ).json()
    from messaging.models import SendCursor
    from messaging.services import drain_queue

    SendCursor.objects.update(last_sent_at=None)
    drain_queue(authorized_instance.id, "test")
    receive(authorized_instance, text_data("from phone"), id_message="P1", direction="outgoing")
    r = get(api_client, authorized_instance, "lastOutgoingMessages")
    assert r.status_code == 200
    items = r.json()
    assert [i["idMessage"] for i in items] == ["P1", failed["idMessage"], sent["idMessage"]]
    assert all(list(item)[0] == "type" for item in items)
    assert [i["type"] for i in items] == ["outgoing"] * 3
    assert items[2] == {
        "type": "outgoing",
        "timestamp": items[2]["timestamp"],
        "idMessage": sent["idMessage"],
        "statusMessage": "sent",
        "sendByApi": True,
        "typeMessage": "textMessage",
        "chatId": PEER_WID,
        "isForwarded": False,
        "forwardingScore": 0,
        "textMessage": "hi",
    }
    assert items[1]["statusMessage"] == "noAccount"
    assert items[0]["sendByApi"] is False


def test_query_count(
    api_client: APIClient, authorized_instance: Instance, django_assert_max_num_queries: Any
) -> None:
    for n in range(20):
        post(
            api_client, authorized_instance, "sendMessage", {"chatId": f"7900555{n:04d}@c.us", "message": "x"}
        )
        receive(authorized_instance, text_data("p"), id_message=f"P{n}", direction="outgoing")
    with django_assert_max_num_queries(5):
        items = get(api_client, authorized_instance, "lastOutgoingMessages", "minutes=5").json()
    assert len(items) == 40
    assert {i["statusMessage"] for i in items} == {"pending", "sent"}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("minutes=-1", "'minutes' must be larger than or equal to 1"),
        ("minutes=1.5", "'minutes' must be a number"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, query: str, detail: str) -> None:
    assert_validation(get(api_client, authorized_instance, "lastOutgoingMessages", query), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "lastOutgoingMessages", "GET")
