from typing import Any

import pytest
from rest_framework.test import APIClient

from instances.models import Instance
from instances.runner import Runner
from journals.models import JournalMessage
from messaging.models import OutgoingMessage
from tests.factories import make_instance
from tests.journals.chat_helpers import (
    PEER_WID,
    assert_validation,
    assert_wire_guards,
    at,
    post,
    receive,
    text_data,
)


def test_the_sender_sees_read(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    reader = make_instance(authorized=True)
    with django_capture_on_commit_callbacks(execute=True):
        sent = post(api_client, authorized_instance, "sendMessage", {"chatId": reader.wid, "message": "hi"}).json()
    runner = Runner()
    runner.tick()
    runner.tick()
    message = OutgoingMessage.objects.get(id_message=sent["idMessage"])
    assert message.status == "delivered"
    assert JournalMessage.objects.get(instance=reader, id_message=sent["idMessage"]).is_read is False
    r = post(api_client, reader, "readChat", {"chatId": authorized_instance.wid})
    assert r.status_code == 200
    assert r.json() == {"setRead": True}
    message.refresh_from_db()
    assert message.status == "read"
    assert JournalMessage.objects.get(instance=reader, id_message=sent["idMessage"]).is_read is True


def test_id_message_reads_up_to_that_message(api_client: APIClient, authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("1"), id_message="A1", when=at(30))
    receive(authorized_instance, text_data("2"), id_message="A2", when=at(20))
    receive(authorized_instance, text_data("3"), id_message="A3", when=at(10))
    r = post(api_client, authorized_instance, "readChat", {"chatId": PEER_WID, "idMessage": "A2"})
    assert r.json() == {"setRead": True}
    read = dict(JournalMessage.objects.filter(instance=authorized_instance).values_list("id_message", "is_read"))
    assert read == {"A1": True, "A2": True, "A3": False}


def test_it_needs_an_authorized_instance(api_client: APIClient, instance: Instance) -> None:
    r = post(api_client, instance, "readChat", {"chatId": PEER_WID})
    assert r.status_code == 400
    assert r.json()["message"] == "instance is starting or not authorized"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'chatId' is required"),
        ({"chatId": PEER_WID, "idMessage": ""}, "'idMessage' is not allowed to be empty"),
        ({"chatId": PEER_WID, "idMessage": 1}, "'idMessage' must be a string"),
        ({"chatId": "x@y"}, "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'"),
        ({"chatId": PEER_WID, "all": True}, "'all' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "readChat", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "readChat", "POST", {"chatId": PEER_WID})


def test_an_engine_error_is_the_answer_and_nothing_is_marked(api_client: APIClient, db: None) -> None:
    """The receipts are the point of readChat: when the engine cannot send them the
    answer says so (not ``setRead: true``) and the journal stays unread. Here a waweb
    instance whose session process is not running: 503, retry later."""
    instance = make_instance(authorized=True)
    receive(instance, text_data("1"), id_message="A1")
    Instance.objects.filter(pk=instance.pk).update(engine="waweb")
    for body in ({"chatId": PEER_WID}, {"chatId": PEER_WID, "idMessage": "A1"}):
        r = post(api_client, instance, "readChat", body)
        assert r.status_code == 503
        assert "not running" in r.json()["message"]
    assert JournalMessage.objects.get(instance=instance, id_message="A1").is_read is False
