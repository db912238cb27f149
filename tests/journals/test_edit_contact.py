from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuContact
from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from tests.journals.chat_helpers import PEER, PEER_WID, assert_validation, assert_wire_guards, post


def test_it_renames_the_contact(api_client: APIClient, authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="Old")
    r = post(api_client, authorized_instance, "editContact", {"chatId": PEER_WID, "firstName": "New", "saveInAddressbook": True})
    assert r.json() == {"editContact": True}
    assert EmuContact.objects.get(owner__phone=authorized_instance.phone, contact__phone=PEER).name == "New"


def test_a_number_without_whatsapp_is_404(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "editContact", {"chatId": "77059640505@c.us", "firstName": "X"})
    assert (r.status_code, r.json()) == (404, {"message": "77059640505@c.us is not on WhatsApp"})


@pytest.mark.parametrize(("body", "detail"), [({"chatId": PEER_WID, "firstName": 5}, "'firstName' must be a string")])
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "editContact", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "editContact", "POST", {"chatId": PEER_WID, "firstName": "A"})
