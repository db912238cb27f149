from typing import Any

import pytest
from rest_framework.test import APIClient

from instances.models import Instance
from tests.journals.chat_helpers import (
    PEER,
    PEER_WID,
    assert_validation,
    assert_wire_guards,
    at,
    get,
    post,
    receive,
    text_data,
)


def test_chats_are_listed_by_activity(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    from engines.emulator.transport import ensure_phone

    ensure_phone("79005550000")
    receive(authorized_instance, text_data("a"), id_message="A1", when=at(60), name="John")
    receive(authorized_instance, text_data("b"), id_message="B1", chat_id="79005550001@c.us", when=at(30), name="Ann")
    with django_capture_on_commit_callbacks(execute=True):
        post(api_client, authorized_instance, "sendMessage", {"chatId": "79005550000@c.us", "message": "new chat"})
    post(api_client, authorized_instance, "setDisappearingChat", {"chatId": PEER_WID, "ephemeralExpiration": 86400})
    post(api_client, authorized_instance, "archiveChat", {"chatId": PEER_WID})
    r = get(api_client, authorized_instance, "getChats")
    assert r.status_code == 200
    items = r.json()
    assert [c["id"] for c in items] == ["79005550000@c.us", "79005550001@c.us", PEER_WID]
    john = items[2]
    assert john == {
        "archive": True,
        "id": PEER_WID,
        "ephemeralExpiration": 86400,
        "ephemeralSettingTimestamp": john["ephemeralSettingTimestamp"],
        "name": "John",
        "type": "user",
    }
    assert john["ephemeralSettingTimestamp"] > 0
    assert items[1] == {
        "archive": False,
        "id": "79005550001@c.us",
        "ephemeralExpiration": 0,
        "ephemeralSettingTimestamp": 0,
        "name": "Ann",
        "type": "user",
    }
    assert len(get(api_client, authorized_instance, "getChats", "count=2").json()) == 2
    assert PEER in PEER_WID


def test_query_count(api_client: APIClient, authorized_instance: Instance, django_assert_max_num_queries: Any) -> None:
    for n in range(25):
        receive(authorized_instance, text_data("x"), id_message=f"M{n}", chat_id=f"7900555{n:04d}@c.us")
    with django_assert_max_num_queries(2):
        assert len(get(api_client, authorized_instance, "getChats").json()) == 25


@pytest.mark.parametrize(("query", "detail"), [("count=abc", "'count' must be a number"), ("count=0", "'count' must be larger than or equal to 1")])
def test_it_validates(api_client: APIClient, authorized_instance: Instance, query: str, detail: str) -> None:
    assert_validation(get(api_client, authorized_instance, "getChats", query), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "getChats", "GET")


def test_touch_chats_moves_many_chats_at_once_and_keeps_the_newest(db: None) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from journals.chats import touch_chats
    from journals.models import ChatState
    from tests.factories import make_instance

    a, b = make_instance(authorized=True), make_instance(authorized=True)
    t0 = timezone.now() - timedelta(hours=1)
    ChatState.objects.create(instance=a, chat_id="111111@c.us", name="Old name", last_activity=t0)
    ChatState.objects.create(instance=b, chat_id="222222@c.us", last_activity=t0 + timedelta(hours=2))  # newer
    later = t0 + timedelta(minutes=5)
    touch_chats(
        [
            (a.pk, "111111@c.us", later, ""),
            (a.pk, "111111@c.us", later - timedelta(minutes=1), ""),  # older: the newest moment wins
            (b.pk, "222222@c.us", later, "Not newer"),
            (b.pk, "333333@c.us", later, "New chat"),
        ]
    )
    first = ChatState.objects.get(instance=a, chat_id="111111@c.us")
    assert first.last_activity == later and first.name == "Old name"  # a blank name keeps the old one
    kept = ChatState.objects.get(instance=b, chat_id="222222@c.us")
    assert kept.last_activity == t0 + timedelta(hours=2) and kept.name == ""  # already newer: untouched
    created = ChatState.objects.get(instance=b, chat_id="333333@c.us")
    assert created.last_activity == later and created.name == "New chat"
    touch_chats([(a.pk, "111111@c.us", later + timedelta(minutes=1), "Renamed"), (b.pk, "333333@c.us", later, "")])
    assert ChatState.objects.get(instance=a, chat_id="111111@c.us").name == "Renamed"
