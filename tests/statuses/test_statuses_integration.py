"""Status visibility between instances over real processes: a Celery worker drains
the send queue and a ``runsessions`` runner takes statuses in and plays the
simulated viewers, against the test database (Redis broker in CI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.services import add_simulated_contact
from journals.models import Notification
from tests.conftest import method_url
from tests.factories import make_instance
from tests.journals.emulated import set_flags
from tests.processes import celery_worker_args, private_broker_queue, running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SIMULATED = "79260000099"


@pytest.fixture
def queue(settings: Any) -> Iterator[str]:
    """A private broker queue; tasks go to the broker so the real worker gets them."""
    with private_broker_queue(settings) as name:
        yield name


def _statistic(client: APIClient, instance: Any, id_message: str) -> dict[str, str]:
    r = client.get(method_url(instance, "getStatusStatistic"), {"idMessage": id_message})
    return {row["participant"]: row["status"] for row in r.json()} if r.status_code == 200 else {}


def test_a_status_reaches_its_viewers_through_worker_and_runner(queue: str, tmp_path: Path) -> None:
    a = set_flags(make_instance(authorized=True, phone="79260000001"), delaySendMessagesMilliseconds=0)
    b = set_flags(make_instance(authorized=True, phone="79260000002"), incomingWebhook=True)
    c = set_flags(make_instance(authorized=True, phone="79260000003"), incomingWebhook=True)
    add_simulated_contact(owner_phone=a.phone, phone=b.phone, name="Bee")
    add_simulated_contact(owner_phone=a.phone, phone=SIMULATED, name="Simulated")
    client = APIClient()
    r = client.post(
        method_url(a, "sendTextStatus"), {"message": "over processes", "backgroundColor": "#123456"}, format="json"
    )
    assert r.status_code == 200
    id_message = r.json()["idMessage"]
    env = {
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "EMULATOR_STATUS_DELIVERED_AFTER_SECONDS": "0.5",
        "EMULATOR_STATUS_READ_AFTER_SECONDS": "1",
    }
    runner = ["manage.py", "runsessions", "--tick", "0.2"]
    with (
        running(celery_worker_args(queue), tmp_path / "worker.log", **env),
        running(runner, tmp_path / "runner.log", **env),
    ):
        wait_for(
            lambda: _statistic(client, a, id_message) == {b.wid: "delivered", f"{SIMULATED}@c.us": "read"},
            timeout=60,
            what="B's session and the simulated viewer to acknowledge",
        )
    seen = client.get(method_url(b, "getIncomingStatuses")).json()
    assert [(s["idMessage"], s["chatId"], s["extendedTextMessage"]["backgroundColor"]) for s in seen] == [
        (id_message, a.wid, "#123456")
    ]
    body = Notification.objects.get(instance=b).body
    assert (body["typeWebhook"], body["senderData"]["chatId"]) == ("incomingMessageReceived", "status@broadcast")
    assert client.get(method_url(c, "getIncomingStatuses")).json() == []  # not in A's contacts
    assert not Notification.objects.filter(instance=c).exists()
    [mine] = client.get(method_url(a, "getOutgoingStatuses")).json()
    assert mine["statusMessage"] == "read"
