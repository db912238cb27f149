"""getOutgoingStatuses: our statuses of the window, newest first, with their
statusMessage, participants and content."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from instances.models import Instance
from messaging.models import OutgoingMessage
from tests.conftest import method_url
from tests.statuses.helpers import FRIEND, post, poster

pytestmark = pytest.mark.django_db


def test_it_lists_our_statuses_newest_first(api_client: APIClient, django_capture_on_commit_callbacks: Any) -> None:
    instance = poster()
    first = post(api_client, instance, "sendTextStatus", {"message": "one"}, django_capture_on_commit_callbacks).json()
    second = post(
        api_client, instance, "sendTextStatus",
        {"message": "two", "backgroundColor": "#FF0000", "font": "NORICAN_REGULAR", "participants": [f"{FRIEND}@c.us"]},
        django_capture_on_commit_callbacks,
    ).json()
    with django_capture_on_commit_callbacks(execute=True):  # a message is not a status
        api_client.post(method_url(instance, "sendMessage"), {"chatId": f"{FRIEND}@c.us", "message": "m"}, format="json")
    items = api_client.get(method_url(instance, "getOutgoingStatuses")).json()
    assert [i["idMessage"] for i in items] == [second["idMessage"], first["idMessage"]]
    assert items[0] == {
        "type": "outgoing",
        "idMessage": second["idMessage"],
        "timestamp": items[0]["timestamp"],
        "typeMessage": "extendedTextMessage",
        "chatId": instance.wid,
        "statusMessage": "sent",
        "sendByApi": True,
        "participants": [f"{FRIEND}@c.us"],
        "textMessage": "two",
        "extendedTextMessage": {"text": "two", "backgroundColor": "#FF0000", "font": "NORICAN_REGULAR"},
    }


def test_the_minutes_window(api_client: APIClient, django_capture_on_commit_callbacks: Any) -> None:
    instance = poster()
    old = post(api_client, instance, "sendTextStatus", {"message": "old"}, django_capture_on_commit_callbacks).json()
    OutgoingMessage.objects.filter(id_message=old["idMessage"]).update(created_at=timezone.now() - timedelta(hours=30))
    url = method_url(instance, "getOutgoingStatuses")
    assert api_client.get(url).json() == []  # default: 1440 minutes
    assert [i["idMessage"] for i in api_client.get(url, {"minutes": 2000}).json()] == [old["idMessage"]]
    r = api_client.get(url, {"minutes": "soon"})
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'minutes' must be a number"


def test_a_queued_status_reads_pending(api_client: APIClient, instance: Instance) -> None:
    api_client.post(method_url(instance, "sendTextStatus"), {"message": "wait"}, format="json")
    [item] = api_client.get(method_url(instance, "getOutgoingStatuses")).json()
    assert item["statusMessage"] == "pending"


def test_it_rejects_a_wrong_token(api_client: APIClient, authorized_instance: Instance) -> None:
    assert api_client.get(method_url(authorized_instance, "getOutgoingStatuses", token="a" * 50)).status_code == 401


def test_the_list_costs_the_same_queries_for_many_statuses(
    api_client: APIClient, django_capture_on_commit_callbacks: Any, django_assert_num_queries: Any
) -> None:
    instance = poster()
    url = method_url(instance, "getOutgoingStatuses")
    post(api_client, instance, "sendTextStatus", {"message": "one"}, django_capture_on_commit_callbacks)
    with django_assert_num_queries(3):  # the instance, its statuses, the deletes
        api_client.get(url)
    for n in range(5):
        post(api_client, instance, "sendTextStatus", {"message": f"more {n}"}, django_capture_on_commit_callbacks)
    with django_assert_num_queries(3):
        assert len(api_client.get(url).json()) == 6
