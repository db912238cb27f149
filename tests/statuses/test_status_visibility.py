"""Instances on one server see each other's statuses over the emulated network:
only the allowed viewers get them, their receipts fill the poster's statistics, a
delete reaches them, and a status lives 24 hours."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from engines.emulator.models import EmuStatus
from tests.conftest import LiveServer, method_url
from tests.journals.emulated import (
    Control,
    forget_notifications,
    notifying_instance,
    queued_types,
    take,
    tick,
)


@pytest.fixture(autouse=True)
def _no_simulated_views(settings: Any) -> None:
    # Only the viewing instances' sessions may acknowledge.
    settings.EMULATOR_STATUS_DELIVERED_AFTER_SECONDS = 3600
    settings.EMULATOR_STATUS_READ_AFTER_SECONDS = 3600


def get(live: LiveServer, instance: Any, method: str, **query: Any) -> Any:
    r = httpx.get(f"{live.url}{method_url(instance, method)}", params=query, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_contacts_see_a_status_and_others_do_not(live_asgi: LiveServer) -> None:
    a = notifying_instance(phone="79240000001", delaySendMessagesMilliseconds=0)
    b = notifying_instance(phone="79240000002", markIncomingMessagesReaded=True)
    c = notifying_instance(phone="79240000003")
    Control(live_asgi, a).post("contacts", {"phoneNumber": b.phone, "name": "Bee"}, status=201)
    for x in (a, b, c):
        forget_notifications(x)
    id_message = Control(live_asgi, a).api("sendTextStatus", {"message": "to my contacts", "font": "OSWALD_HEAVY"})[
        "idMessage"
    ]
    tick()
    got = take(live_asgi, b)
    assert (got["typeWebhook"], got["idMessage"]) == ("incomingMessageReceived", id_message)
    assert got["senderData"]["chatId"] == "status@broadcast" and got["senderData"]["sender"] == a.wid
    assert got["messageData"]["extendedTextMessageData"]["font"] == "OSWALD_HEAVY"
    assert queued_types(c) == []  # not in A's contacts
    assert get(live_asgi, c, "getIncomingStatuses") == []
    assert [s["idMessage"] for s in get(live_asgi, b, "getIncomingStatuses")] == [id_message]
    stats = {row["participant"]: row["status"] for row in get(live_asgi, a, "getStatusStatistic", idMessage=id_message)}
    # B reads at once (markIncomingMessagesReaded); John (a simulated contact) has not yet.
    assert stats == {b.wid: "read", "79001234567@c.us": "sent"}
    [mine] = get(live_asgi, a, "getOutgoingStatuses")
    assert (mine["idMessage"], mine["statusMessage"], mine["chatId"]) == (id_message, "read", a.wid)

    # A deletes it: B stops seeing it and is told (deletedMessage in status@broadcast).
    r = httpx.post(f"{live_asgi.url}{method_url(a, 'deleteStatus')}", json={"idMessage": id_message})
    assert (r.status_code, r.content) == (200, b"")
    tick()
    revoke = take(live_asgi, b)
    assert revoke["messageData"] == {"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": id_message}}
    assert revoke["senderData"]["chatId"] == "status@broadcast"
    assert get(live_asgi, b, "getIncomingStatuses") == []
    assert get(live_asgi, a, "getOutgoingStatuses")[0]["isDeleted"] is True


def test_participants_reach_a_non_contact_and_expiry_stops_delivery(live_asgi: LiveServer) -> None:
    a = notifying_instance(phone="79240000011", delaySendMessagesMilliseconds=0)
    b = notifying_instance(phone="79240000012")
    c = notifying_instance(phone="79240000013")
    for x in (a, b, c):
        forget_notifications(x)
    control = Control(live_asgi, a)
    seen = control.api("sendTextStatus", {"message": "for C", "participants": [c.wid]})["idMessage"]
    late = control.api("sendTextStatus", {"message": "too late", "participants": [b.wid]})["idMessage"]
    EmuStatus.objects.filter(id_message=late).update(expires_at=timezone.now() - timedelta(seconds=1))
    tick()
    assert [s["idMessage"] for s in get(live_asgi, c, "getIncomingStatuses")] == [seen]
    assert queued_types(b) == []  # expired before B's session came round
    stats = get(live_asgi, a, "getStatusStatistic", idMessage=seen)
    assert [(row["participant"], row["status"]) for row in stats] == [(c.wid, "delivered")]
