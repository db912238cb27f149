from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator.disappearing import expire
from engines.emulator.models import EmuMessage
from engines.emulator.network import lid_for
from engines.emulator.services import add_simulated_contact
from engines.emulator.triggers import contact_sends
from instances import services as instance_services
from instances.models import Instance
from instances.runner import Runner
from journals.models import Notification
from messaging.models import OutgoingMessage, OutgoingStatus
from messaging.services import drain_queue
from tests.conftest import method_url
from tests.factories import make_instance
from tests.journals.chat_helpers import PEER, PEER_WID, assert_validation, assert_wire_guards, post


@pytest.mark.parametrize("seconds", [86400, 604800, 7776000])
def test_it_sets_the_timer(api_client: APIClient, authorized_instance: Instance, seconds: int) -> None:
    r = post(api_client, authorized_instance, "setDisappearingChat", {"chatId": PEER_WID, "ephemeralExpiration": seconds})
    assert r.status_code == 200
    assert r.json() == {"chatId": PEER_WID, "disappearingMessagesInChat": True, "ephemeralExpiration": seconds}


def test_zero_or_nothing_turns_it_off(api_client: APIClient, authorized_instance: Instance) -> None:
    post(api_client, authorized_instance, "setDisappearingChat", {"chatId": PEER_WID, "ephemeralExpiration": 86400})
    r = post(api_client, authorized_instance, "setDisappearingChat", {"chatId": PEER_WID})
    assert r.json() == {"chatId": PEER_WID, "disappearingMessagesInChat": False, "ephemeralExpiration": 0}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"chatId": PEER_WID, "ephemeralExpiration": 3600}, "'ephemeralExpiration' must be one of [0, 86400, 604800, 7776000]"),
        ({"chatId": PEER_WID, "ephemeralExpiration": "day"}, "'ephemeralExpiration' must be a number"),
        ({"ephemeralExpiration": 0}, "'chatId' is required"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "setDisappearingChat", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "setDisappearingChat", "POST", {"chatId": PEER_WID})


# --- The timer's effect on the emulated network -----------------------------------------


def _ready(instance: Instance) -> Instance:
    instance_services.update_settings(instance, {"delaySendMessagesMilliseconds": 0})
    return instance


def _send(api_client: APIClient, instance: Instance, chat_id: str, text: str) -> str:
    r = post(api_client, instance, "sendMessage", {"chatId": chat_id, "message": text})
    assert r.status_code == 200, r.content
    drain_queue(instance.id, "test")
    return str(r.json()["idMessage"])


def _history(api_client: APIClient, instance: Instance, chat_id: str) -> list[str]:
    r = post(api_client, instance, "getChatHistory", {"chatId": chat_id, "count": 50})
    assert r.status_code == 200, r.content
    return [m["idMessage"] for m in r.json()]


def test_the_other_side_gets_the_timer(api_client: APIClient, db: None) -> None:
    a, b = _ready(make_instance(authorized=True)), _ready(make_instance(authorized=True))
    r = post(api_client, a, "setDisappearingChat", {"chatId": b.wid, "ephemeralExpiration": 604800})
    assert r.status_code == 200, r.content
    info = post(api_client, b, "getContactInfo", {"chatId": a.wid}).json()
    assert (info["isDisappearing"], info["messageExpiration"]) == (True, 604800)


def test_new_messages_expire_from_both_sides(api_client: APIClient, db: None) -> None:
    a, b = _ready(make_instance(authorized=True)), _ready(make_instance(authorized=True))
    runner = Runner()
    before = _send(api_client, a, b.wid, "sent before the timer")
    post(api_client, a, "setDisappearingChat", {"chatId": b.wid, "ephemeralExpiration": 86400})
    mine = _send(api_client, a, b.wid, "gone tomorrow")
    runner.tick()
    theirs = _send(api_client, b, a.wid, "me too")
    runner.tick()
    assert _history(api_client, a, b.wid) == [theirs, mine, before]
    assert _history(api_client, b, a.wid) == [theirs, mine, before]

    assert expire(timezone.now() + timedelta(hours=23)) == 0  # not yet
    assert expire(timezone.now() + timedelta(days=1, seconds=5)) == 2  # the runner's step, a day on

    assert _history(api_client, a, b.wid) == [before]
    assert _history(api_client, b, a.wid) == [before]
    assert list(EmuMessage.objects.values_list("id_message", flat=True)) == [before]
    assert not Notification.objects.filter(type_webhook__contains="deleted").exists()


def test_a_simulated_contacts_messages_expire_too(api_client: APIClient, authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=PEER, name="Peer")
    post(api_client, authorized_instance, "setDisappearingChat", {"chatId": PEER_WID, "ephemeralExpiration": 86400})
    message = contact_sends(authorized_instance, phone=PEER, kind="textMessage", fields={"message": "psst"})
    runner = Runner()
    runner.tick()
    assert _history(api_client, authorized_instance, PEER_WID) == [message.id_message]
    expire(timezone.now() + timedelta(days=2))
    assert _history(api_client, authorized_instance, PEER_WID) == []
    assert not EmuMessage.objects.exists()


def test_turned_off_new_messages_stay(api_client: APIClient, db: None) -> None:
    a, b = _ready(make_instance(authorized=True)), _ready(make_instance(authorized=True))
    post(api_client, a, "setDisappearingChat", {"chatId": b.wid, "ephemeralExpiration": 86400})
    post(api_client, b, "setDisappearingChat", {"chatId": a.wid, "ephemeralExpiration": 0})  # the other side turns it off
    info = post(api_client, a, "getContactInfo", {"chatId": b.wid}).json()
    assert info["isDisappearing"] is False
    kept = _send(api_client, a, b.wid, "stays")
    expire(timezone.now() + timedelta(days=100))
    assert _history(api_client, a, b.wid) == [kept]


# --- A chat named by its @lid (enableLidMode) ------------------------------------------


def _lid_mode(instance: Instance, on: bool) -> Instance:
    instance_services.update_settings(instance, {"enableLidMode": on})
    instance.refresh_from_db()
    return instance


def _chats(api_client: APIClient, instance: Instance) -> dict[str, int]:
    r = api_client.get(method_url(instance, "getChats"))
    assert r.status_code == 200, r.content
    return {c["id"]: c["ephemeralExpiration"] for c in r.json()}


@pytest.mark.parametrize("peer_in_lid_mode", [False, True])
def test_a_timer_set_on_a_lid_chat_reaches_the_other_side(
    api_client: APIClient, db: None, peer_in_lid_mode: bool
) -> None:
    """The @lid id is the same chat as the @c.us one: the peer gets the timer under
    the id it sees the chat by, and messages of both sides expire from both."""
    a = _lid_mode(_ready(make_instance(authorized=True)), True)
    b = _lid_mode(_ready(make_instance(authorized=True)), peer_in_lid_mode)
    a_as_b_sees_it = lid_for(a.phone) if peer_in_lid_mode else a.wid
    runner = Runner()
    hello = _send(api_client, b, a_as_b_sees_it, "hello")
    runner.tick()  # a sees b's chat by its LID
    b_lid = lid_for(b.phone)

    r = post(api_client, a, "setDisappearingChat", {"chatId": b_lid, "ephemeralExpiration": 86400})
    assert r.status_code == 200, r.content
    assert _chats(api_client, b)[a_as_b_sees_it] == 86400  # the other side's chat list
    if not peer_in_lid_mode:
        info = post(api_client, b, "getContactInfo", {"chatId": a.wid}).json()
        assert (info["isDisappearing"], info["messageExpiration"]) == (True, 86400)

    mine = _send(api_client, a, b_lid, "gone tomorrow")
    theirs = _send(api_client, b, a_as_b_sees_it, "me too")
    runner.tick()
    assert _history(api_client, a, b_lid) == [theirs, mine, hello]
    assert _history(api_client, b, a_as_b_sees_it) == [theirs, mine, hello]
    assert EmuMessage.objects.filter(expires_at__isnull=False).count() == 2  # on the network

    expire(timezone.now() + timedelta(days=1, seconds=5))
    assert _history(api_client, a, b_lid) == [hello]
    assert _history(api_client, b, a_as_b_sees_it) == [hello]


# --- A message whose time ran out before the other side's device took it in -------------


def _phone_state(api_client: APIClient, instance: Instance, state: str) -> None:
    r = api_client.post(
        f"/api/v1/emulator/instances/{instance.pk}/state",
        {"state": state},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {instance.api_token}",
    )
    assert r.status_code == 200, r.content


def _a_day_passes(id_message: str, days: int = 1) -> None:
    """Move the network row back in time (its timer counts from sending)."""
    shift = timedelta(days=days, seconds=5)
    EmuMessage.objects.filter(id_message=id_message).update(
        created_at=F("created_at") - shift, expires_at=F("expires_at") - shift
    )


def _incoming(instance: Instance) -> list[str]:
    rows = Notification.objects.filter(instance_id=instance.pk, type_webhook="incomingMessageReceived")
    return [n.body["idMessage"] for n in rows.order_by("receipt_id")]


def test_a_message_that_expired_while_the_peer_was_offline_reaches_it_then_disappears(
    api_client: APIClient, db: None
) -> None:
    """WhatsApp delivers a disappearing message like any other and the devices
    enforce the timer (counted from sending): the sender's copy goes on time, the
    offline peer still receives it when it is back (delivered, an incoming
    notification) and it is gone from that device at once, never read."""
    a, b = _ready(make_instance(authorized=True)), _ready(make_instance(authorized=True))
    instance_services.update_settings(b, {"incomingWebhook": True, "markIncomingMessagesReaded": True})
    runner = Runner()
    post(api_client, a, "setDisappearingChat", {"chatId": b.wid, "ephemeralExpiration": 86400})
    runner.tick()  # b's device is connected (its session has a place on the network)
    _phone_state(api_client, b, "sleepMode")  # b's phone is offline
    away = _send(api_client, a, b.wid, "while you were away")
    runner.tick()
    _a_day_passes(away)
    runner.tick()  # the timer ran out: gone from a, kept on the network for b's device

    assert _history(api_client, a, b.wid) == []
    assert EmuMessage.objects.filter(id_message=away).exists()
    assert OutgoingMessage.objects.get(id_message=away).status == OutgoingStatus.SENT

    _phone_state(api_client, b, "authorized")
    runner.tick()

    assert _incoming(b) == [away]  # it reached b's device...
    assert _history(api_client, b, a.wid) == []  # ...which dropped it at once
    assert OutgoingMessage.objects.get(id_message=away).status == OutgoingStatus.DELIVERED  # never read
    assert not EmuMessage.objects.filter(id_message=away).exists()
    runner.tick()
    assert OutgoingMessage.objects.get(id_message=away).status == OutgoingStatus.DELIVERED


def test_an_expired_message_never_delivered_is_dropped_after_thirty_days(api_client: APIClient, db: None) -> None:
    """Like any message WhatsApp could not deliver for 30 days: dropped, never
    delivered, the sender keeps ``sent``."""
    a, b = _ready(make_instance(authorized=True)), _ready(make_instance(authorized=True))
    instance_services.update_settings(b, {"incomingWebhook": True})
    runner = Runner()
    post(api_client, a, "setDisappearingChat", {"chatId": b.wid, "ephemeralExpiration": 86400})
    runner.tick()  # b's device is connected (its session has a place on the network)
    _phone_state(api_client, b, "sleepMode")
    away = _send(api_client, a, b.wid, "nobody home")
    runner.tick()
    _a_day_passes(away)
    runner.tick()
    assert EmuMessage.objects.filter(id_message=away, expired_at__isnull=False).exists()
    _a_day_passes(away, days=29)
    runner.tick()

    assert not EmuMessage.objects.filter(id_message=away).exists()
    _phone_state(api_client, b, "authorized")
    runner.tick()
    assert _incoming(b) == []
    assert OutgoingMessage.objects.get(id_message=away).status == OutgoingStatus.SENT
