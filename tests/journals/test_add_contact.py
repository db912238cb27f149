from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuContact
from engines.emulator.transport import ensure_phone
from instances.models import Instance
from tests.journals.chat_helpers import PEER, PEER_WID, assert_validation, assert_wire_guards, get, post


def test_it_saves_the_contact_in_the_address_book(api_client: APIClient, authorized_instance: Instance) -> None:
    ensure_phone(PEER, "Ivan")
    r = post(api_client, authorized_instance, "addContact", {"chatId": PEER_WID, "firstName": "Ivan", "lastName": "Petrov"})
    assert r.status_code == 200
    assert r.json() == {"addContact": True}
    assert EmuContact.objects.get(owner__phone=authorized_instance.phone, contact__phone=PEER).name == "Ivan Petrov"
    assert get(api_client, authorized_instance, "getContacts").json() == [
        {"id": PEER_WID, "name": "Ivan", "contactName": "Ivan Petrov", "type": "user"}
    ]


def test_a_number_without_whatsapp_is_refused(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "addContact", {"chatId": "79009999999@c.us", "firstName": "X"})
    assert r.status_code == 404
    assert r.json() == {"message": "79009999999@c.us is not on WhatsApp"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"chatId": PEER_WID}, "'firstName' is required"),
        ({"chatId": PEER_WID, "firstName": ""}, "'firstName' is not allowed to be empty"),
        ({"chatId": PEER_WID, "firstName": "A", "saveInAddressbook": "yes"}, "'saveInAddressbook' must be a boolean"),
        ({"chatId": "120363043968066561@g.us", "firstName": "A"}, "'chatId' must be one of the next formats: 'phone_number@c.us' or 'chat_id@lid'"),
        ({"firstName": "A"}, "'chatId' is required"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "addContact", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "addContact", "POST", {"chatId": PEER_WID, "firstName": "A"})


def phone_book(client: APIClient, instance: Instance) -> dict[str, bool]:
    """The phone's side: its contacts and whether each is in its own address book."""
    r = client.get(f"/api/v1/emulator/instances/{instance.id}/contacts", headers={"Authorization": f"Bearer {instance.api_token}"})
    return {c["chatId"]: c["inAddressbook"] for c in r.json()}


def test_save_in_addressbook_false_keeps_it_in_whatsapp_only(api_client: APIClient, authorized_instance: Instance) -> None:
    ensure_phone(PEER, "Ivan")
    body = {"chatId": PEER_WID, "firstName": "Ivan", "saveInAddressbook": False}
    assert post(api_client, authorized_instance, "addContact", body).json() == {"addContact": True}
    assert phone_book(api_client, authorized_instance) == {PEER_WID: False}
    listed = get(api_client, authorized_instance, "getContacts").json()
    assert listed == [{"id": PEER_WID, "name": "Ivan", "contactName": "Ivan", "type": "user"}]
    post(api_client, authorized_instance, "editContact", {"chatId": PEER_WID, "firstName": "Ivan"})  # default: true
    assert phone_book(api_client, authorized_instance) == {PEER_WID: True}
