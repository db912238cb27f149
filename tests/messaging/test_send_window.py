"""sendFromUTC / sendToUTC: the send queue holds outside the UTC window and moves
inside it. The window arithmetic takes its clock as an argument; the drain is
tested with windows placed around the real clock so no sleeping is needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator.models import EmuMessage
from engines.emulator.transport import ensure_phone
from instances import services as instance_services
from instances.models import Instance
from messaging import services
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import method_url

RECIPIENT = "79001230011"
CHAT = f"{RECIPIENT}@c.us"


def window(instance: Instance, start: str, end: str) -> Instance:
    instance_services.update_settings(
        instance, {"sendFromUTC": start, "sendToUTC": end, "delaySendMessagesMilliseconds": 0}
    )
    instance.refresh_from_db()
    return instance


def hhmm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M")


@pytest.mark.parametrize(
    ("start", "end", "at", "wait"),
    [
        ("09:00", "15:00", "10:30", 0.0),
        ("09:00", "15:00", "08:59", 60.0),
        ("09:00", "15:00", "15:00", 18 * 3600.0),
        ("22:00", "06:00", "23:30", 0.0),
        ("22:00", "06:00", "05:59", 0.0),
        ("22:00", "06:00", "06:00", 16 * 3600.0),
        ("09:00", "09:00", "03:00", 0.0),
        ("", "", "03:00", 0.0),
    ],
)
def test_the_window_arithmetic(authorized_instance: Instance, start: str, end: str, at: str, wait: float) -> None:
    instance = window(authorized_instance, start, end)
    now = datetime(2026, 12, 7, int(at[:2]), int(at[3:]), tzinfo=UTC)
    assert services.send_window_wait(instance, now) == wait


def test_the_queue_holds_outside_the_window_then_moves(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: object
) -> None:
    ensure_phone(RECIPIENT, "Recipient")
    now = timezone.now()
    window(authorized_instance, hhmm(now + timedelta(hours=2)), hhmm(now + timedelta(hours=3)))
    r = api_client.post(method_url(authorized_instance, "sendMessage"), {"chatId": CHAT, "message": "later"}, format="json")
    assert r.status_code == 200
    wait = services.drain_queue(authorized_instance.id, "test")
    assert wait is not None and 3600 < wait <= 2 * 3600
    message = OutgoingMessage.objects.get(id_message=r.json()["idMessage"])
    assert message.status == OutgoingStatus.QUEUED
    assert not EmuMessage.objects.filter(sender=authorized_instance.phone).exists()  # the peer has nothing

    window(authorized_instance, hhmm(now - timedelta(hours=1)), hhmm(now + timedelta(hours=1)))
    services.drain_queue(authorized_instance.id, "test")
    message.refresh_from_db()
    assert message.status == OutgoingStatus.SENT
    assert EmuMessage.objects.filter(sender=authorized_instance.phone, id_message=message.id_message).exists()
