from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuPhone
from engines.emulator.network import lid_for
from engines.emulator.services import add_simulated_contact
from instances import services as instance_services
from instances.models import Instance
from instances.runner import Runner
from journals.models import JournalMessage
from messaging.services import drain_queue
from tests.factories import make_instance
from tests.journals.chat_helpers import PEER, PEER_WID, assert_validation, assert_wire_guards, post


@pytest.fixture
def directory(authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="John")
    add_simulated_contact(owner_phone=authorized_instance.phone, phone="79005550001", registered=False)


def test_it_answers_from_the_emulated_directory(
    api_client: APIClient, authorized_instance: Instance, directory: None
) -> None:
    r = post(api_client, authorized_instance, "checkWhatsapp", {"phoneNumber": int(PEER)})
    assert r.status_code == 200
    assert r.json() == {"existsWhatsapp": True, "chatId": PEER_WID, "phoneNumber": int(PEER), "fromCache": False}
    assert post(api_client, authorized_instance, "checkWhatsapp", {"chatId": PEER_WID, "force": True}).json() == {
        "existsWhatsapp": True,
        "chatId": PEER_WID,
        "phoneNumber": int(PEER),
        "fromCache": False,
    }
    assert post(api_client, authorized_instance, "checkWhatsapp", {"phoneNumber": 79005550001}).json() == {
        "existsWhatsapp": False,
        "fromCache": False,
    }
    assert post(api_client, authorized_instance, "checkWhatsapp", {"phoneNumber": "79009999999"}).json() == {
        "existsWhatsapp": False,
        "fromCache": False,
    }


def test_it_needs_an_authorized_instance(api_client: APIClient, instance: Instance) -> None:
    r = post(api_client, instance, "checkWhatsapp", {"phoneNumber": 79001234567})
    assert r.status_code == 400
    assert r.json()["message"] == "instance is starting or not authorized"


def test_phone_number_length(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "checkWhatsapp", {"phoneNumber": 7900123})
    assert r.status_code == 400
    assert r.json()["message"] == "bad phone number, valid 11 or 12 digits"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'value' must contain at least one of [phoneNumber, chatId]"),
        ({"phoneNumber": "7900-123-45-67"}, "Wrong format. 'phoneNumber' must contain only digits"),
        ({"phoneNumber": True}, "'phoneNumber' must be a number"),
        ({"chatId": "120363043968066561@g.us"}, "'chatId' must be one of the next formats: 'phone_number@c.us' or 'chat_id@lid'"),
        ({"chatId": PEER_WID, "force": "yes"}, "'force' must be a boolean"),
        ({"phone": 1}, "'phone' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "checkWhatsapp", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "checkWhatsapp", "POST", {"phoneNumber": 79001234567})


def test_answers_are_cached_and_force_asks_again(api_client: APIClient, authorized_instance: Instance) -> None:
    """A number that joins WhatsApp after a check reads as absent from the cache
    until ``force`` asks the network again (API.md: force bypasses the cache)."""
    newcomer = "79005550077"
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=newcomer, registered=False)
    body = {"phoneNumber": int(newcomer)}
    assert post(api_client, authorized_instance, "checkWhatsapp", body).json() == {
        "existsWhatsapp": False,
        "fromCache": False,
    }
    EmuPhone.objects.filter(phone=newcomer).update(registered=True)  # the number joins
    assert post(api_client, authorized_instance, "checkWhatsapp", body).json() == {
        "existsWhatsapp": False,
        "fromCache": True,
    }
    forced = post(api_client, authorized_instance, "checkWhatsapp", {**body, "force": True}).json()
    assert forced == {"existsWhatsapp": True, "chatId": f"{newcomer}@c.us", "phoneNumber": int(newcomer), "fromCache": False}
    assert post(api_client, authorized_instance, "checkWhatsapp", body).json() == {**forced, "fromCache": True}


# --- LIDs (API.md: newer answers carry the @lid chatId, phoneNumber, fromCache) -------------


def _lid_mode(instance: Instance) -> Instance:
    instance_services.update_settings(instance, {"enableLidMode": True, "delaySendMessagesMilliseconds": 0})
    instance.refresh_from_db()
    return instance


def test_in_lid_mode_the_chat_id_is_the_peers_lid_and_it_reaches_the_peer(api_client: APIClient, db: None) -> None:
    """The LID is the emulated phone's own (stable, the one its chats show), and a
    message to the chatId the answer gave reaches that phone's instance."""
    a, b = _lid_mode(make_instance(authorized=True)), make_instance(authorized=True)
    b_lid = lid_for(b.phone)
    r = post(api_client, a, "checkWhatsapp", {"chatId": b.wid})
    assert r.status_code == 200, r.content
    assert r.json() == {"existsWhatsapp": True, "chatId": b_lid, "phoneNumber": int(b.phone), "fromCache": False}
    # Asking by the LID finds the same account.
    assert post(api_client, a, "checkWhatsapp", {"chatId": b_lid}).json()["phoneNumber"] == int(b.phone)

    sent = post(api_client, a, "sendMessage", {"chatId": r.json()["chatId"], "message": "found you"})
    drain_queue(a.id, "test")
    Runner().tick()
    got = JournalMessage.objects.get(instance_id=b.pk, id_message=sent.json()["idMessage"])
    assert (got.direction, got.chat_id) == ("incoming", a.wid)


def test_a_lid_the_network_never_showed_names_no_account(api_client: APIClient, authorized_instance: Instance) -> None:
    answer = post(api_client, authorized_instance, "checkWhatsapp", {"chatId": "999999999999999@lid"}).json()
    assert answer == {"existsWhatsapp": False, "fromCache": False}
