from datetime import timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from instances.models import Instance
from journals.models import Call, Direction
from tests.journals.chat_helpers import PEER_WID, assert_validation, assert_wire_guards, at, get


def test_it_lists_outgoing_calls(api_client: APIClient, authorized_instance: Instance) -> None:
    when = at(120)
    Call.objects.create(
        instance=authorized_instance,
        id_call="OC1",
        direction=Direction.OUTGOING,
        chat_id=PEER_WID,
        status="pickUp",
        timestamp=when,
        updated_at=when + timedelta(seconds=42),
    )
    Call.objects.create(instance=authorized_instance, id_call="IC1", chat_id=PEER_WID, status="offer")
    r = get(api_client, authorized_instance, "lastOutgoingCalls")
    assert r.status_code == 200
    assert r.json() == [
        {
            "type": "outgoing",
            "idMessage": "OC1",
            "timestamp": int(when.timestamp()),
            "typeMessage": "outgoingCall",
            "chatId": PEER_WID,
            "duration": 42,
            "isVideo": False,
            "status": "pickUp",
            "participants": [{"id": PEER_WID, "status": "pickUp"}],
        }
    ]


def test_query_count(
    api_client: APIClient, authorized_instance: Instance, django_assert_max_num_queries: Any
) -> None:
    Call.objects.bulk_create(
        [
            Call(
                instance=authorized_instance,
                id_call=f"C{n}",
                direction=Direction.OUTGOING,
                chat_id=PEER_WID,
                status="declined",
            )
            for n in range(30)
        ]
    )
    with django_assert_max_num_queries(2):
        items = get(api_client, authorized_instance, "lastOutgoingCalls").json()
    assert len(items) == 30
    assert items[0]["duration"] == 0


@pytest.mark.parametrize(("query", "detail"), [("minutes=0", "'minutes' must be larger than or equal to 1")])
def test_it_validates(api_client: APIClient, authorized_instance: Instance, query: str, detail: str) -> None:
    assert_validation(get(api_client, authorized_instance, "lastOutgoingCalls", query), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "lastOutgoingCalls", "GET")
