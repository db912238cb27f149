import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator.models import EmuMute
from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from journals.models import ChatState
from tests.factories import make_instance
from tests.journals.chat_helpers import PEER, PEER_WID, assert_validation, post


def test_it_describes_the_user_and_the_chat(api_client: APIClient, authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="Dealer")
    ChatState.objects.create(instance=authorized_instance, chat_id=PEER_WID, archived=True, ephemeral_expiration=86400)
    r = post(api_client, authorized_instance, "getContactInfo", {"chatId": PEER_WID})
    assert r.status_code == 200
    body = r.json()
    assert body["avatar"].endswith(f"/api/v1/emulator/avatars/{PEER}.png")
    assert body == {
        "avatar": body["avatar"],
        "name": "Dealer",
        "contactName": "Dealer",
        "email": "",
        "category": "",
        "description": "",
        "products": [],
        "chatId": PEER_WID,
        "lastSeen": None,
        "isArchive": True,
        "isDisappearing": True,
        "isMute": False,
        "messageExpiration": 86400,
        "muteExpiration": None,
        "isBusiness": False,
    }


def test_get_with_a_query_string_works_too(api_client: APIClient, authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="Dealer")
    r = api_client.get(f"/waInstance{authorized_instance.id}/getContactInfo/{authorized_instance.api_token}?chatId={PEER_WID}")
    assert r.json()["name"] == "Dealer"


def test_groups_are_refused(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "getContactInfo", {"chatId": "120363043968066561@g.us"})
    assert_validation(r, "The method GetContactInfo does not support group chats")


@pytest.mark.parametrize(("body", "detail"), [({}, "'chatId' is required"), ({"chatId": ""}, "'chatId' is not allowed to be empty")])
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "getContactInfo", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    url = f"/waInstance{authorized_instance.id}/getContactInfo/{'0' * 50}"
    assert api_client.post(url, {"chatId": PEER_WID}, format="json").status_code == 401
    assert api_client.post(f"/waInstance9999999999/getContactInfo/{authorized_instance.api_token}").status_code == 403
    assert api_client.delete(f"/waInstance{authorized_instance.id}/getContactInfo/{authorized_instance.api_token}").status_code == 404


def test_email_products_and_last_seen_come_from_the_contact(api_client: APIClient, authorized_instance: Instance) -> None:
    """Business details from the emulated contact's profile; lastSeen from when it
    was last online on the network (its keepOnlineStatus), null before that."""
    from datetime import timedelta

    from django.utils import timezone

    from engines.emulator.models import EmuPhone, EmuPresence

    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="Dealer")
    products = [{"id": "p1", "name": "Tea", "price": "3.50"}]
    EmuPhone.objects.filter(phone=PEER).update(email="sales@dealer.example", products=products)
    body = post(api_client, authorized_instance, "getContactInfo", {"chatId": PEER_WID}).json()
    assert (body["email"], body["products"], body["lastSeen"]) == ("sales@dealer.example", products, None)
    went_offline = timezone.now() - timedelta(minutes=5)
    EmuPresence.objects.create(
        phone=PEER, kind="available", started_at=went_offline - timedelta(minutes=1), until=went_offline
    )
    body = post(api_client, authorized_instance, "getContactInfo", {"chatId": PEER_WID}).json()
    assert body["lastSeen"] == int(went_offline.timestamp())


def mute(api_client: APIClient, instance: Instance, body: dict[str, Any]) -> Any:
    """The person mutes or unmutes the chat on the phone (emulator control API)."""
    return api_client.post(
        f"/api/v1/emulator/instances/{instance.id}/mute",
        body,
        format="json",
        headers={"Authorization": f"Bearer {instance.api_token}"},
    )


def test_is_mute_is_the_phones_mute(api_client: APIClient, authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="Peer")
    info = post(api_client, authorized_instance, "getContactInfo", {"chatId": PEER_WID}).json()
    assert (info["isMute"], info["muteExpiration"]) == (False, None)

    r = mute(api_client, authorized_instance, {"phoneNumber": PEER, "mute": True})
    assert r.status_code == 200, r.content
    assert r.json() == {"chatId": PEER_WID, "isMute": True, "muteExpiration": -1}
    info = post(api_client, authorized_instance, "getContactInfo", {"chatId": PEER_WID}).json()
    assert (info["isMute"], info["muteExpiration"]) == (True, -1)

    r = mute(api_client, authorized_instance, {"phoneNumber": PEER, "mute": True, "seconds": 3600})
    until = r.json()["muteExpiration"]
    assert until > time.time() + 3500
    info = post(api_client, authorized_instance, "getContactInfo", {"chatId": PEER_WID}).json()
    assert (info["isMute"], info["muteExpiration"]) == (True, until)

    # A mute that ran out is no mute.
    EmuMute.objects.update(until=timezone.now() - timedelta(seconds=1))
    info = post(api_client, authorized_instance, "getContactInfo", {"chatId": PEER_WID}).json()
    assert (info["isMute"], info["muteExpiration"]) == (False, None)

    mute(api_client, authorized_instance, {"phoneNumber": PEER, "mute": True})
    assert mute(api_client, authorized_instance, {"phoneNumber": PEER, "mute": False}).json()["isMute"] is False
    info = post(api_client, authorized_instance, "getContactInfo", {"chatId": PEER_WID}).json()
    assert (info["isMute"], info["muteExpiration"]) == (False, None)


def test_another_device_of_the_phone_sees_the_mute(api_client: APIClient, authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="Peer")
    other = make_instance(authorized_instance.account, authorized=True, phone=authorized_instance.phone)
    mute(api_client, authorized_instance, {"phoneNumber": PEER, "mute": True})
    assert post(api_client, other, "getContactInfo", {"chatId": PEER_WID}).json()["isMute"] is True
    stranger = make_instance(authorized=True)
    assert post(api_client, stranger, "getContactInfo", {"chatId": PEER_WID}).json()["isMute"] is False


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"mute": True}, "'phoneNumber' is required"),
        ({"phoneNumber": "12ab34567", "mute": True}, "Wrong format. 'phoneNumber' must contain only digits"),
        ({"phoneNumber": PEER}, "'mute' is required"),
        ({"phoneNumber": PEER, "mute": True, "seconds": 0}, "'seconds' must be larger than or equal to 1"),
    ],
)
def test_mute_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = mute(api_client, authorized_instance, body)
    assert r.status_code == 400, r.content
    assert detail in r.json()["message"]
    assert not EmuMute.objects.exists()
