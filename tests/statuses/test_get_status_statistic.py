"""getStatusStatistic: simulated viewers deliver, then view, after the configured
delays; each viewer's state is listed, and the status as a whole follows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator.models import EmuStatus, EmuStatusView
from instances.models import Instance
from messaging.models import OutgoingStatus
from statuses.models import StatusReceipt
from statuses.services import prune_status_statistics
from tests.conftest import method_url
from tests.journals.emulated import queued_types, tick
from tests.statuses.helpers import COLLEAGUE, FRIEND, post, posted, poster

pytestmark = pytest.mark.django_db


def statistic(client: APIClient, instance: Instance, id_message: str) -> Any:
    return client.get(method_url(instance, "getStatusStatistic"), {"idMessage": id_message})


def _age(id_message: str, seconds: float) -> None:
    """Move a status back in time, as if posted ``seconds`` ago."""
    moment = timezone.now() - timedelta(seconds=seconds)
    EmuStatus.objects.filter(id_message=id_message).update(created_at=moment)


def test_simulated_viewers_deliver_then_view(
    api_client: APIClient, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EMULATOR_STATUS_DELIVERED_AFTER_SECONDS = 10
    settings.EMULATOR_STATUS_READ_AFTER_SECONDS = 60
    instance = poster()
    r = post(api_client, instance, "sendTextStatus", {"message": "hi"}, django_capture_on_commit_callbacks)
    id_message = r.json()["idMessage"]
    answer = statistic(api_client, instance, id_message)
    assert answer.status_code == 200
    assert sorted((row["participant"], row["status"]) for row in answer.json()) == [
        (f"{FRIEND}@c.us", "sent"),
        (f"{COLLEAGUE}@c.us", "sent"),
    ]
    assert all(isinstance(row["timestamp"], int) for row in answer.json())

    tick()  # too early: nothing changes
    assert {row["status"] for row in statistic(api_client, instance, id_message).json()} == {"sent"}

    _age(id_message, 11)
    tick()
    assert {row["status"] for row in statistic(api_client, instance, id_message).json()} == {"delivered"}
    assert posted(instance, id_message).status == OutgoingStatus.DELIVERED

    _age(id_message, 61)
    tick()
    rows = statistic(api_client, instance, id_message).json()
    assert {row["status"] for row in rows} == {"read"}
    assert posted(instance, id_message).status == OutgoingStatus.READ
    # The status as a whole went sent → delivered → read (outgoingMessageStatus).
    assert queued_types(instance).count("outgoingMessageStatus") == 3


def test_a_deleted_or_expired_status_is_not_viewed_any_more(
    api_client: APIClient, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EMULATOR_STATUS_DELIVERED_AFTER_SECONDS = 0
    settings.EMULATOR_STATUS_READ_AFTER_SECONDS = 3600
    instance = poster()
    gone = post(api_client, instance, "sendTextStatus", {"message": "oops"}, django_capture_on_commit_callbacks)
    old = post(api_client, instance, "sendTextStatus", {"message": "old"}, django_capture_on_commit_callbacks)
    r = api_client.post(method_url(instance, "deleteStatus"), {"idMessage": gone.json()["idMessage"]}, format="json")
    assert r.status_code == 200
    EmuStatus.objects.filter(id_message=old.json()["idMessage"]).update(expires_at=timezone.now())
    tick()
    assert not EmuStatusView.objects.filter(delivered_at__isnull=False).exists()
    for id_message in (gone.json()["idMessage"], old.json()["idMessage"]):
        assert {row["status"] for row in statistic(api_client, instance, id_message).json()} == {"sent"}


def test_unknown_status_and_missing_id(api_client: APIClient, authorized_instance: Instance) -> None:
    r = statistic(api_client, authorized_instance, "BAE5DEADBEEF0000")
    assert r.status_code == 400
    assert r.json()["message"] == "status BAE5DEADBEEF0000 not found"
    r = api_client.get(method_url(authorized_instance, "getStatusStatistic"))
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'idMessage' is required"


def test_another_instances_status_is_not_found(
    api_client: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    mine, other = poster(), poster()
    r = post(api_client, other, "sendTextStatus", {"message": "theirs"}, django_capture_on_commit_callbacks)
    assert statistic(api_client, mine, r.json()["idMessage"]).status_code == 400


def test_statistics_are_kept_30_days(api_client: APIClient, django_capture_on_commit_callbacks: Any) -> None:
    instance = poster()
    r = post(api_client, instance, "sendTextStatus", {"message": "hi"}, django_capture_on_commit_callbacks)
    id_message = r.json()["idMessage"]
    StatusReceipt.objects.filter(id_message=id_message).update(created_at=timezone.now() - timedelta(days=29))
    assert prune_status_statistics() == 0
    StatusReceipt.objects.filter(id_message=id_message).update(created_at=timezone.now() - timedelta(days=31))
    assert prune_status_statistics() == 2
    assert statistic(api_client, instance, id_message).json() == []
