"""deleteStatus: an empty 200; the network revokes the status (viewers stop seeing
it) and the journal marks it."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuStatus
from instances.models import Instance
from journals.models import ChangeKind, MessageChange
from messaging.models import OutgoingStatus
from tests.conftest import method_url
from tests.factories import make_instance
from tests.statuses.helpers import post, posted, poster

pytestmark = pytest.mark.django_db


def delete(client: APIClient, instance: Instance, id_message: Any) -> Any:
    return client.post(method_url(instance, "deleteStatus"), {"idMessage": id_message}, format="json")


def test_it_revokes_a_posted_status(api_client: APIClient, django_capture_on_commit_callbacks: Any) -> None:
    instance = poster()
    id_message = post(api_client, instance, "sendTextStatus", {"message": "bye"}, django_capture_on_commit_callbacks).json()["idMessage"]
    r = delete(api_client, instance, id_message)
    assert (r.status_code, r.content) == (200, b"")
    assert EmuStatus.objects.get(id_message=id_message).deleted_at is not None
    assert MessageChange.objects.filter(instance=instance, id_message=id_message, kind=ChangeKind.DELETED).exists()
    [item] = api_client.get(method_url(instance, "getOutgoingStatuses")).json()
    assert item["isDeleted"] is True
    assert delete(api_client, instance, id_message).status_code == 200  # again: nothing more to do


def test_a_queued_status_never_leaves(api_client: APIClient) -> None:
    instance = make_instance()  # not authorized: statuses wait in the queue
    id_message = api_client.post(method_url(instance, "sendTextStatus"), {"message": "x"}, format="json").json()["idMessage"]
    assert delete(api_client, instance, id_message).status_code == 200
    message = posted(instance, id_message)
    assert message.status == OutgoingStatus.FAILED
    assert message.description == "The status was deleted before it was posted"
    assert api_client.get(method_url(instance, "showMessagesQueue")).json() == []


def test_unknown_ids_and_messages_are_not_statuses(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    r = delete(api_client, authorized_instance, "BAE5000000000000")
    assert r.status_code == 400
    assert r.json()["message"] == "status BAE5000000000000 not found"
    with django_capture_on_commit_callbacks(execute=True):
        sent = api_client.post(
            method_url(authorized_instance, "sendMessage"), {"chatId": "79001234567@c.us", "message": "x"}, format="json"
        )
    assert delete(api_client, authorized_instance, sent.json()["idMessage"]).status_code == 400
    r = api_client.post(method_url(authorized_instance, "deleteStatus"), {}, format="json")
    assert r.json()["message"] == "Validation failed. Details: 'idMessage' is required"
    assert delete(api_client, authorized_instance, 12).json()["message"] == "Validation failed. Details: 'idMessage' must be a string"
