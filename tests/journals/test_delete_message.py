from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuMessage
from instances.models import Instance
from instances.runner import Runner
from journals.models import JournalMessage
from tests.factories import make_instance
from tests.journals.chat_helpers import (
    PEER_WID,
    assert_validation,
    assert_wire_guards,
    post,
    receive,
    text_data,
)


def history(client: APIClient, instance: Instance, chat_id: str) -> list[dict[str, Any]]:
    return list(post(client, instance, "getChatHistory", {"chatId": chat_id}).json())


def test_for_everyone_the_other_side_gets_a_revoke(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    peer = make_instance(authorized=True)
    with django_capture_on_commit_callbacks(execute=True):
        sent = post(api_client, authorized_instance, "sendMessage", {"chatId": peer.wid, "message": "oops"}).json()
    runner = Runner()
    runner.tick()
    runner.tick()
    r = post(api_client, authorized_instance, "deleteMessage", {"chatId": peer.wid, "idMessage": sent["idMessage"]})
    assert r.status_code == 200
    assert r.content == b""
    runner.tick()
    revoke = JournalMessage.objects.get(instance=peer, type_message="deletedMessage")
    assert revoke.direction == "incoming"
    assert revoke.message_data == {"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": sent["idMessage"]}}
    (theirs,) = history(api_client, peer, authorized_instance.wid)
    (mine,) = history(api_client, authorized_instance, peer.wid)
    assert theirs["idMessage"] == mine["idMessage"] == sent["idMessage"]
    assert theirs["isDeleted"] is mine["isDeleted"] is True


def test_only_for_me_leaves_the_journal_and_sends_nothing(api_client: APIClient, authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("spam"), id_message="S1")
    before = EmuMessage.objects.count()
    r = post(api_client, authorized_instance, "deleteMessage", {"chatId": PEER_WID, "idMessage": "S1", "onlySenderDelete": True})
    assert (r.status_code, r.content) == (200, b"")
    assert history(api_client, authorized_instance, PEER_WID) == []
    assert EmuMessage.objects.count() == before


def test_own_api_message_only_for_me(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    sent = post(api_client, authorized_instance, "sendMessage", {"chatId": PEER_WID, "message": "x"}).json()
    r = post(
        api_client, authorized_instance, "deleteMessage", {"chatId": PEER_WID, "idMessage": sent["idMessage"], "onlySenderDelete": True}
    )
    assert r.status_code == 200
    assert history(api_client, authorized_instance, PEER_WID) == []
    assert post(api_client, authorized_instance, "getMessage", {"chatId": PEER_WID, "idMessage": sent["idMessage"]}).status_code == 400


def test_someone_elses_message_cannot_be_deleted_for_everyone(api_client: APIClient, authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("theirs"), id_message="T1")
    r = post(api_client, authorized_instance, "deleteMessage", {"chatId": PEER_WID, "idMessage": "T1"})
    assert r.status_code == 400
    assert "onlySenderDelete" in r.json()["message"]


def test_unknown_message(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "deleteMessage", {"chatId": PEER_WID, "idMessage": "NOPE"})
    assert (r.status_code, r.json()["message"]) == (400, "message not found")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"idMessage": "A"}, "'chatId' is required"),
        ({"chatId": PEER_WID}, "'idMessage' is required"),
        ({"chatId": PEER_WID, "idMessage": "A", "onlySenderDelete": "yes"}, "'onlySenderDelete' must be a boolean"),
        ({"chatId": PEER_WID, "idMessage": "A", "forAll": True}, "'forAll' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "deleteMessage", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "deleteMessage", "POST", {"chatId": PEER_WID, "idMessage": "A"})
