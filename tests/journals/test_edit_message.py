from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from instances.models import Instance
from instances.runner import Runner
from journals.models import JournalMessage, Notification
from messaging.models import OutgoingMessage
from tests.factories import make_instance
from tests.journals.chat_helpers import (
    PEER_WID,
    assert_validation,
    assert_wire_guards,
    post,
    receive,
    text_data,
)


def test_the_other_side_sees_the_new_text(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    peer = make_instance(authorized=True)
    with django_capture_on_commit_callbacks(execute=True):
        sent = post(api_client, authorized_instance, "sendMessage", {"chatId": peer.wid, "message": "helo"}).json()
    runner = Runner()
    runner.tick()
    runner.tick()
    r = post(api_client, authorized_instance, "editMessage", {"chatId": peer.wid, "idMessage": sent["idMessage"], "message": "hello"})
    assert r.status_code == 200
    edit_id = r.json()["idMessage"]
    assert edit_id != sent["idMessage"]
    runner.tick()
    edit = JournalMessage.objects.get(instance=peer, id_message=edit_id)
    assert edit.message_data == {
        "typeMessage": "editedMessage",
        "editedMessageData": {"textMessage": "hello", "stanzaId": sent["idMessage"]},
    }
    for instance, chat in ((peer, authorized_instance.wid), (authorized_instance, peer.wid)):
        (item,) = post(api_client, instance, "getChatHistory", {"chatId": chat}).json()
        assert (item["idMessage"], item["textMessage"], item["isEdited"]) == (sent["idMessage"], "hello", True)


def test_after_15_minutes_the_edit_fails(api_client: APIClient, authorized_instance: Instance) -> None:
    sent = post(api_client, authorized_instance, "sendMessage", {"chatId": PEER_WID, "message": "old"}).json()
    OutgoingMessage.objects.filter(id_message=sent["idMessage"]).update(
        sent_at=timezone.now() - timedelta(minutes=16), status="sent"
    )
    r = post(api_client, authorized_instance, "editMessage", {"chatId": PEER_WID, "idMessage": sent["idMessage"], "message": "new"})
    assert r.status_code == 200
    refused = r.json()["idMessage"]
    status = Notification.objects.get(instance=authorized_instance, type_webhook="outgoingMessageStatus").body
    assert (status["idMessage"], status["status"]) == (refused, "failed")
    item = post(api_client, authorized_instance, "getMessage", {"chatId": PEER_WID, "idMessage": sent["idMessage"]}).json()
    assert item["textMessage"] == "old"
    assert "isEdited" not in item


def test_only_own_text_messages(api_client: APIClient, authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("theirs"), id_message="T1")
    r = post(api_client, authorized_instance, "editMessage", {"chatId": PEER_WID, "idMessage": "T1", "message": "x"})
    assert (r.status_code, r.json()["message"]) == (400, "message not found")
    poll = post(
        api_client,
        authorized_instance,
        "sendPoll",
        {"chatId": PEER_WID, "message": "Q", "options": [{"optionName": "a"}, {"optionName": "b"}]},
    ).json()
    r = post(api_client, authorized_instance, "editMessage", {"chatId": PEER_WID, "idMessage": poll["idMessage"], "message": "x"})
    assert (r.status_code, r.json()["message"]) == (400, "only text messages can be edited")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"chatId": PEER_WID, "idMessage": "A"}, "'message' is required"),
        ({"chatId": PEER_WID, "idMessage": "A", "message": ""}, "'message' is not allowed to be empty"),
        ({"chatId": PEER_WID, "idMessage": "A", "message": "x" * 20_001}, "'message' length must be less than or equal to 20000 characters long"),
        ({"chatId": PEER_WID, "message": "x"}, "'idMessage' is required"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "editMessage", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "editMessage", "POST", {"chatId": PEER_WID, "idMessage": "A", "message": "x"})
