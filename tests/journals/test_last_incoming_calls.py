from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.events import CallEvent
from instances.models import Instance
from journals.models import Call
from journals.services import ingest_event
from tests.journals.chat_helpers import PEER_WID, assert_validation, assert_wire_guards, at, get


def test_it_lists_calls_with_their_outcome(api_client: APIClient, authorized_instance: Instance) -> None:
    when = at(30)
    ingest_event(
        authorized_instance, CallEvent(id_call="C1", chat_id=PEER_WID, status="offer", timestamp=when)
    )
    ingest_event(
        authorized_instance, CallEvent(id_call="C1", chat_id=PEER_WID, status="pickUp", timestamp=at(20))
    )
    ingest_event(
        authorized_instance,
        CallEvent(id_call="OLD", chat_id=PEER_WID, status="declined", timestamp=at(2 * 86400)),
    )
    r = get(api_client, authorized_instance, "lastIncomingCalls")
    assert r.status_code == 200
    assert r.json() == [
        {
            "type": "incoming",
            "idMessage": "C1",
            "timestamp": int(when.timestamp()),
            "typeMessage": "incomingCall",
            "chatId": PEER_WID,
            "isVideo": False,
            "status": "pickUp",
        }
    ]
    assert len(get(api_client, authorized_instance, "lastIncomingCalls", "minutes=5000").json()) == 2


def test_query_count(
    api_client: APIClient, authorized_instance: Instance, django_assert_max_num_queries: Any
) -> None:
    Call.objects.bulk_create(
        [
            Call(instance=authorized_instance, id_call=f"C{n}", chat_id=PEER_WID, status="hungUp")
            for n in range(50)
        ]
    )
    with django_assert_max_num_queries(2):
        assert len(get(api_client, authorized_instance, "lastIncomingCalls").json()) == 50


@pytest.mark.parametrize(("query", "detail"), [("minutes=x", "'minutes' must be a number")])
def test_it_validates(api_client: APIClient, authorized_instance: Instance, query: str, detail: str) -> None:
    assert_validation(get(api_client, authorized_instance, "lastIncomingCalls", query), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "lastIncomingCalls", "GET")
