from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuContact
from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from tests.journals.chat_helpers import PEER, PEER_WID, assert_validation, assert_wire_guards, post


def test_it_removes_the_contact(api_client: APIClient, authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="Ivan")
    r = post(api_client, authorized_instance, "deleteContact", {"chatId": PEER_WID})
    assert (r.status_code, r.json()) == (200, {"deleteContact": True})
    assert not EmuContact.objects.filter(owner__phone=authorized_instance.phone).exists()


@pytest.mark.parametrize(("body", "detail"), [({}, "'chatId' is required"), ({"chatId": PEER_WID, "x": 1}, "'x' is not allowed")])
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "deleteContact", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "deleteContact", "POST", {"chatId": PEER_WID})


def test_a_number_not_in_the_address_book_answers_false(api_client: APIClient, authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="Ivan")
    assert post(api_client, authorized_instance, "deleteContact", {"chatId": PEER_WID}).json() == {"deleteContact": True}
    again = post(api_client, authorized_instance, "deleteContact", {"chatId": PEER_WID})
    assert (again.status_code, again.json()) == (200, {"deleteContact": False})
    other = post(api_client, authorized_instance, "deleteContact", {"chatId": "79005550123@c.us"})
    assert other.json() == {"deleteContact": False}
