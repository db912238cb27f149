"""Number protection in the send queue (messaging/pacing.py): jitter on paced
pauses, the new-chat cap, the warm-up of a newly linked number, and their
per-engine defaults. The clock and the jitter's random source are injected
(``pacing.use``); what the tests look at is the queue (the database) and the other
side of the emulated network."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator.models import EmuMessage
from engines.emulator.transport import ensure_phone
from instances import services as instance_services
from instances.api import settings_to_wire
from instances.models import Instance, InstanceStateChange, State
from journals.models import Direction, JournalMessage
from messaging import pacing, services
from messaging.models import OutgoingMessage, OutgoingStatus, PacedSend, SendCursor
from tests.conftest import method_url
from tests.factories import make_instance

PEERS = ["79003000001", "79003000002", "79003000003", "79003000004"]


@pytest.fixture
def peers(db: None) -> list[str]:
    for phone in PEERS:
        ensure_phone(phone, f"Peer {phone[-1]}")
    return [f"{phone}@c.us" for phone in PEERS]


def protect(instance: Instance, **values: int) -> Instance:
    """The instance's protections as given, every other one off, no delay."""
    changes = {
        "sendJitterPercent": 0,
        "newChatsPerHour": 0,
        "warmUpDailyLimit": 0,
        "delaySendMessagesMilliseconds": 0,
    }
    instance_services.update_settings(instance, {**changes, **values})
    instance.refresh_from_db()
    return instance


def send(client: APIClient, instance: Instance, chat_id: str, text: str) -> str:
    r = client.post(method_url(instance, "sendMessage"), {"chatId": chat_id, "message": text}, format="json")
    assert r.status_code == 200, r.content
    return str(r.json()["idMessage"])


def statuses(*ids: str) -> list[str]:
    by_id = dict(OutgoingMessage.objects.filter(id_message__in=ids).values_list("id_message", "status"))
    return [by_id[i] for i in ids]


def on_network(instance: Instance) -> list[str]:
    return [m.payload["message"] for m in EmuMessage.objects.filter(sender=instance.phone).order_by("id")]


def drain_all(instance: Instance, clock: Callable[[], datetime] | None = None) -> float | None:
    """Drain until the queue is empty or held; returns the last wait."""
    with pacing.use(clock=clock):
        for _ in range(20):
            wait = services.drain_queue(instance.id, "test")
            if wait != 0.0:
                return wait
    raise AssertionError("the queue kept moving")


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def ahead(offset: timedelta) -> Callable[[], datetime]:
    """The real clock moved ahead: the drain stamps its sends with the real one."""
    return lambda: timezone.now() + offset


# --- Defaults -------------------------------------------------------------------


def test_protection_is_on_by_default_for_waweb_only(account: Any) -> None:
    waweb = make_instance(account, engine="waweb")
    for engine_default in (make_instance(account), make_instance(account, engine="cloud")):
        assert pacing.policy(engine_default) is None
    rules = pacing.policy(waweb)
    assert rules == pacing.Policy(
        jitter_percent=30, new_chats_per_hour=20, warm_up_daily_limit=50, warm_up_days=7, queue_typing=True
    )
    body = settings_to_wire(waweb)
    assert [body[k] for k in ("sendJitterPercent", "newChatsPerHour", "warmUpDailyLimit", "warmUpDays")] == [
        30,
        20,
        50,
        7,
    ]
    # Not stored: an instance that never set them follows its engine's default.
    assert "newChatsPerHour" not in waweb.settings


def test_setsettings_stores_them_and_validates_the_bounds(api_client: APIClient, instance: Instance) -> None:
    url = method_url(instance, "setSettings")
    r = api_client.post(
        url, {"newChatsPerHour": 5, "sendJitterPercent": 10, "warmUpDailyLimit": 0}, format="json"
    )
    assert r.status_code == 200
    body = api_client.get(method_url(instance, "getSettings")).json()
    assert (body["newChatsPerHour"], body["sendJitterPercent"], body["warmUpDailyLimit"]) == (5, 10, 0)
    for bad in ({"sendJitterPercent": 101}, {"newChatsPerHour": -1}, {"warmUpDays": 0}):
        assert api_client.post(url, bad, format="json").status_code == 400


def test_an_instance_with_protection_off_drains_without_pacing_queries(
    api_client: APIClient,
    authorized_instance: Instance,
    peers: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The emulator's default: batches as before, no query of the pacing tables."""
    protect(authorized_instance)
    for n in range(3):
        send(api_client, authorized_instance, peers[n], f"m{n}")
    with CaptureQueriesContext(connection) as queries:
        assert drain_all(authorized_instance) is None
    assert on_network(authorized_instance) == ["m0", "m1", "m2"]
    touched = " ".join(q["sql"] for q in queries.captured_queries)
    assert "messaging_pacedsend" not in touched
    assert "instances_instancestatechange" not in touched
    assert "journals_journalmessage" not in touched


# --- Jitter ---------------------------------------------------------------------


def test_jitter_stretches_each_paced_pause_by_the_drawn_share(
    api_client: APIClient,
    authorized_instance: Instance,
    peers: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    protect(authorized_instance, delaySendMessagesMilliseconds=10_000, sendJitterPercent=50)
    first = send(api_client, authorized_instance, peers[0], "one")
    second = send(api_client, authorized_instance, peers[0], "two")
    assert drain_all(authorized_instance) is not None
    assert statuses(first, second) == ["sent", "queued"]
    last = SendCursor.objects.get(instance=authorized_instance).last_sent_at
    assert last is not None
    with pacing.use(rng=lambda instance_id, message_id: 0.5):
        # 10 s plus half of 50 %: 12.5 s after the last send.
        assert drain_all(authorized_instance, at(last)) == 12.5
        assert drain_all(authorized_instance, at(last + timedelta(seconds=12))) == 0.5
        assert statuses(first, second) == ["sent", "queued"]
        assert drain_all(authorized_instance, at(last + timedelta(seconds=12.5))) is None
    assert statuses(first, second) == ["sent", "sent"]
    assert on_network(authorized_instance) == ["one", "two"]


def test_the_default_draw_is_fixed_per_message_and_spread() -> None:
    draws = [pacing._draw(7, n) for n in range(200)]
    assert draws == [pacing._draw(7, n) for n in range(200)]  # a wake-up recomputes the same pause
    assert all(0 <= d < 1 for d in draws)
    assert min(draws) < 0.1 and max(draws) > 0.9


# --- New chats ------------------------------------------------------------------


def test_first_contacts_over_the_hourly_cap_wait_in_the_queue_then_leave(
    api_client: APIClient,
    authorized_instance: Instance,
    peers: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    protect(authorized_instance, newChatsPerHour=2)
    # peers[3] wrote to the number before: not a new chat.
    JournalMessage.objects.create(
        instance=authorized_instance,
        direction=Direction.INCOMING,
        chat_id=peers[3],
        id_message="IN1",
        sender=peers[3],
        type_message="textMessage",
        message_data={"typeMessage": "textMessage"},
    )
    ids = [send(api_client, authorized_instance, chat, f"hi {n}") for n, chat in enumerate(peers)]
    again = send(api_client, authorized_instance, peers[0], "again")  # a chat we have now messaged
    wait = drain_all(authorized_instance)
    # Two first contacts left; the third waits at the head for the hour to roll on,
    # and the queue behind it (a known chat too) keeps its order.
    assert statuses(*ids, again) == ["sent", "sent", "queued", "queued", "queued"]
    assert on_network(authorized_instance) == ["hi 0", "hi 1"]
    assert wait is not None and 3590 < wait <= 3600
    assert sorted(PacedSend.objects.filter(first_contact=True).values_list("chat_id", flat=True)) == peers[:2]
    shown = api_client.get(method_url(authorized_instance, "showMessagesQueue")).json()
    assert [m["messageID"] for m in shown] == [ids[2], ids[3], again]
    assert drain_all(authorized_instance, ahead(timedelta(minutes=59))) is not None
    assert statuses(ids[2]) == ["queued"]

    assert drain_all(authorized_instance, ahead(timedelta(minutes=61))) is None
    assert statuses(*ids, again) == ["sent"] * 5
    assert on_network(authorized_instance) == ["hi 0", "hi 1", "hi 2", "hi 3", "again"]
    # Every send is counted; only the three new chats as first contacts.
    assert PacedSend.objects.count() == 5
    assert sorted(PacedSend.objects.filter(first_contact=True).values_list("chat_id", flat=True)) == peers[:3]


def test_what_counts_as_a_new_chat(
    api_client: APIClient,
    authorized_instance: Instance,
    peers: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    protect(authorized_instance)
    message = OutgoingMessage(instance=authorized_instance, chat_id=peers[0], id_message="X")
    assert pacing.is_new_chat(authorized_instance, message)
    assert not pacing.is_new_chat(
        authorized_instance, OutgoingMessage(instance=authorized_instance, chat_id="120363000000000001@g.us")
    )
    # Sent from the phone (journalled outgoing) makes it known, as does an API send
    # that left the queue; a failed or still queued one does not.
    JournalMessage.objects.create(
        instance=authorized_instance,
        direction=Direction.OUTGOING,
        chat_id=peers[0],
        id_message="OUT1",
        type_message="textMessage",
        message_data={"typeMessage": "textMessage"},
    )
    assert not pacing.is_new_chat(authorized_instance, message)
    queued = send(api_client, authorized_instance, peers[1], "waiting")
    other = OutgoingMessage(instance=authorized_instance, chat_id=peers[1], id_message="Y")
    assert pacing.is_new_chat(authorized_instance, other)
    OutgoingMessage.objects.filter(id_message=queued).update(status=OutgoingStatus.NO_ACCOUNT)
    assert pacing.is_new_chat(authorized_instance, other)
    OutgoingMessage.objects.filter(id_message=queued).update(status=OutgoingStatus.DELIVERED)
    assert not pacing.is_new_chat(authorized_instance, other)


# --- Warm-up --------------------------------------------------------------------


def linked(instance: Instance, moment: datetime) -> None:
    InstanceStateChange.objects.filter(instance=instance, state=State.AUTHORIZED).update(
        created_at=moment, phone=instance.phone
    )


@pytest.mark.parametrize(
    ("hours", "cap"),
    [(0, 50), (23.9, 50), (24, 100), (47, 100), (48, 150), (6 * 24 + 1, 350), (7 * 24, None)],
)
def test_the_warm_up_cap_grows_by_day_until_it_lifts(hours: float, cap: int | None) -> None:
    rules = pacing.Policy(jitter_percent=0, new_chats_per_hour=0, warm_up_daily_limit=50, warm_up_days=7)
    start = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.get_current_timezone())
    limit = pacing.warm_up_limit(rules, start, start + timedelta(hours=hours))
    assert (limit[0] if limit else None) == cap


def test_a_new_number_sends_its_daily_cap_and_the_rest_waits_for_the_next_day(
    api_client: APIClient,
    authorized_instance: Instance,
    peers: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    protect(authorized_instance, warmUpDailyLimit=2, warmUpDays=2)
    start = timezone.now()
    linked(authorized_instance, start - timedelta(hours=1))
    ids = [send(api_client, authorized_instance, peers[0], f"w{n}") for n in range(7)]
    wait = drain_all(authorized_instance)
    assert statuses(*ids) == ["sent"] * 2 + ["queued"] * 5
    assert wait is not None and 23 * 3600 - 60 < wait <= 23 * 3600
    # Day 2 allows twice as many.
    assert drain_all(authorized_instance, at(start + timedelta(hours=23, seconds=1))) is not None
    assert statuses(*ids) == ["sent"] * 6 + ["queued"]
    # Day 3: the warm-up is over.
    assert drain_all(authorized_instance, at(start + timedelta(hours=47, seconds=1))) is None
    assert on_network(authorized_instance) == [f"w{n}" for n in range(7)]


def test_a_number_linked_long_ago_is_not_warmed_up(
    api_client: APIClient,
    authorized_instance: Instance,
    peers: list[str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    protect(authorized_instance, warmUpDailyLimit=1)
    linked(authorized_instance, timezone.now() - timedelta(days=30))
    ids = [send(api_client, authorized_instance, peers[0], f"o{n}") for n in range(3)]
    assert drain_all(authorized_instance) is None
    assert statuses(*ids) == ["sent"] * 3


def test_held_messages_are_never_expired(
    api_client: APIClient, authorized_instance: Instance, instance: Instance, peers: list[str]
) -> None:
    protect(authorized_instance, warmUpDailyLimit=1)
    linked(authorized_instance, timezone.now() - timedelta(hours=1))
    send(api_client, authorized_instance, peers[0], "today's one")
    assert drain_all(authorized_instance) is None
    held = send(api_client, authorized_instance, peers[0], "held")
    unauthorized = send(api_client, instance, peers[0], "never authorized")
    OutgoingMessage.objects.filter(id_message__in=[held, unauthorized]).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    result = services.recover_queues()
    assert result["expired"] == 1
    assert statuses(held, unauthorized) == ["queued", "failed"]
