from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from journals.models import ChatState
from tests.journals.chat_helpers import PEER, PEER_WID, assert_validation, assert_wire_guards, get

GROUP = "120363043968066561@g.us"


@pytest.fixture
def book(authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="Ivan Work")
    add_simulated_contact(owner_phone=authorized_instance.phone, phone="79005550002", name="")
    ChatState.objects.create(instance=authorized_instance, chat_id=GROUP, name="My group")


def test_it_lists_users_then_groups(api_client: APIClient, authorized_instance: Instance, book: None) -> None:
    r = get(api_client, authorized_instance, "getContacts")
    assert r.status_code == 200
    assert r.json() == [
        {"id": PEER_WID, "name": "Ivan Work", "contactName": "Ivan Work", "type": "user"},
        {"id": "79005550002@c.us", "name": "Contact 0002", "contactName": "", "type": "user"},
        {"id": GROUP, "name": "My group", "contactName": "", "type": "group"},
    ]
    assert [c["id"] for c in get(api_client, authorized_instance, "getContacts", "group=true").json()] == [GROUP]
    assert len(get(api_client, authorized_instance, "getContacts", "group=false").json()) == 2
    assert len(get(api_client, authorized_instance, "getContacts", "count=1").json()) == 1


def test_query_count(
    api_client: APIClient, authorized_instance: Instance, book: None, django_assert_max_num_queries: Any
) -> None:
    for n in range(20):
        add_simulated_contact(owner_phone=authorized_instance.phone, phone=f"7900666{n:04d}", name=f"C{n}")
    with django_assert_max_num_queries(3):
        assert len(get(api_client, authorized_instance, "getContacts").json()) == 23


@pytest.mark.parametrize(
    ("query", "detail"),
    [("group=maybe", "'group' must be a boolean"), ("count=0", "'count' must be larger than or equal to 1"), ("x=1", "'x' is not allowed")],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, query: str, detail: str) -> None:
    assert_validation(get(api_client, authorized_instance, "getContacts", query), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "getContacts", "GET")
