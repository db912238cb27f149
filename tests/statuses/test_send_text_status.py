"""sendTextStatus: queued like a message, posted to exactly the allowed viewers."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuStatus
from engines.emulator.transport import ensure_phone
from instances.models import Instance
from messaging.models import OutgoingMessage, OutgoingStatus
from statuses.models import StatusReceipt
from tests.conftest import method_url
from tests.factories import make_instance
from tests.statuses.helpers import COLLEAGUE, FRIEND, post, posted, poster

pytestmark = pytest.mark.django_db


def test_it_posts_to_all_contacts_when_participants_are_omitted(
    api_client: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    instance = poster()
    body = {"message": "Hello, world", "backgroundColor": "#228B22", "font": "SERIF"}
    r = post(api_client, instance, "sendTextStatus", body, django_capture_on_commit_callbacks)
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"idMessage"}
    message = posted(instance, r.json()["idMessage"])
    assert (message.chat_id, message.method, message.type_message) == (
        "status@broadcast",
        "sendTextStatus",
        "extendedTextMessage",
    )
    assert message.status == OutgoingStatus.SENT
    status = EmuStatus.objects.get(poster=instance.phone, id_message=message.id_message)
    assert status.message_data == {
        "typeMessage": "extendedTextMessage",
        "extendedTextMessageData": {"text": "Hello, world", "backgroundColor": "#228B22", "font": "SERIF"},
    }
    assert sorted(status.views.values_list("viewer", flat=True)) == [FRIEND, COLLEAGUE]
    assert (status.expires_at - status.created_at).total_seconds() == 24 * 3600
    receipts = StatusReceipt.objects.filter(instance=instance, id_message=message.id_message)
    assert sorted(receipts.values_list("participant", "status")) == [
        (f"{FRIEND}@c.us", "sent"),
        (f"{COLLEAGUE}@c.us", "sent"),
    ]


def test_participants_limit_the_audience(api_client: APIClient, django_capture_on_commit_callbacks: Any) -> None:
    instance = poster()
    stranger = ensure_phone("79005550077", "Stranger")
    body = {"message": "only you two", "participants": [f"{FRIEND}@c.us", stranger.wid, "79005550099@c.us"]}
    r = post(api_client, instance, "sendTextStatus", body, django_capture_on_commit_callbacks)
    assert r.status_code == 200, r.content
    status = EmuStatus.objects.get(id_message=r.json()["idMessage"])
    # Not a contact but named: it sees it. Unknown to the network: nobody to reach.
    assert sorted(status.views.values_list("viewer", flat=True)) == [FRIEND, stranger.phone]


def test_defaults_and_the_queue_echo(api_client: APIClient) -> None:
    instance = make_instance(authorized=False)  # not linked: it waits in the queue
    r = api_client.post(method_url(instance, "sendTextStatus"), {"message": "later"}, format="json")
    assert r.status_code == 200
    queue = api_client.get(method_url(instance, "showMessagesQueue")).json()
    assert queue == [
        {
            "messageID": r.json()["idMessage"],
            "type": "sendTextStatus",
            "body": {"message": "later", "backgroundColor": "#000000", "font": "SANS_SERIF", "participants": []},
        }
    ]
    assert OutgoingMessage.objects.get(instance=instance).status == OutgoingStatus.QUEUED


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'message' is required"),
        ({"message": ""}, "'message' is not allowed to be empty"),
        ({"message": "x", "font": "COMIC"}, "'font' must be one of [SERIF, SANS_SERIF, NORICAN_REGULAR, BRYNDAN_WRITE, OSWALD_HEAVY]"),
        (
            {"message": "x", "backgroundColor": "green"},
            "'backgroundColor' with value 'green' fails to match the required pattern: /^#[0-9a-fA-F]{6}$/",
        ),
        ({"message": "x", "participants": "all"}, "'participants' must be an array"),
        (
            {"message": "x", "participants": ["79001234567@c.us", "120363043968066561@g.us"]},
            "'participants[1]' must be one of the next formats: 'phone_number@c.us' or 'chat_id@lid'",
        ),
        ({"message": "x", "chatId": "79001234567@c.us"}, "'chatId' is not allowed"),
    ],
)
def test_it_rejects_invalid_input(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    r = api_client.post(method_url(authorized_instance, "sendTextStatus"), body, format="json")
    assert r.status_code == 400
    assert r.json()["message"] == f"Validation failed. Details: {detail}"
    assert not OutgoingMessage.objects.filter(instance=authorized_instance).exists()


def test_it_rejects_a_wrong_token_and_verb(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.post(method_url(authorized_instance, "sendTextStatus", token="0" * 50), {"message": "x"}, format="json")
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert api_client.get(method_url(authorized_instance, "sendTextStatus")).status_code == 404


def test_an_idempotency_key_posts_once(api_client: APIClient, authorized_instance: Instance) -> None:
    url = method_url(authorized_instance, "sendTextStatus")
    first = api_client.post(url, {"message": "once"}, format="json", headers={"Idempotency-Key": "k1"})
    again = api_client.post(url, {"message": "once"}, format="json", headers={"Idempotency-Key": "k1"})
    assert first.json() == again.json()
    assert OutgoingMessage.objects.filter(instance=authorized_instance).count() == 1


@pytest.mark.parametrize("engine", ["cloud"])
def test_an_engine_without_statuses_refuses_at_once(api_client: APIClient, engine: str) -> None:
    instance = make_instance(engine=engine)
    r = api_client.post(method_url(instance, "sendTextStatus"), {"message": "x"}, format="json")
    assert r.status_code == 400
    assert r.json()["message"].startswith(f"sendTextStatus is not supported by the {engine} engine")
    assert not OutgoingMessage.objects.filter(instance=instance).exists()
    r = api_client.post(method_url(instance, "deleteStatus"), {"idMessage": "BAE5"}, format="json")
    assert r.json()["message"].startswith(f"deleteStatus is not supported by the {engine} engine")
