from typing import Any

import pytest
from rest_framework.test import APIClient

from instances.models import Instance
from journals.models import ChatState
from tests.journals.chat_helpers import (
    PEER_WID,
    assert_validation,
    assert_wire_guards,
    post,
    receive,
    text_data,
)


def test_it_archives_with_an_empty_body(api_client: APIClient, authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("x"), id_message="A1")
    r = post(api_client, authorized_instance, "archiveChat", {"chatId": PEER_WID})
    assert (r.status_code, r.content) == (200, b"")
    assert ChatState.objects.get(instance=authorized_instance, chat_id=PEER_WID).archived is True


def test_a_chat_without_messages_cannot_be_archived(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "archiveChat", {"chatId": PEER_WID})
    assert r.status_code == 400
    assert r.json()["message"] == "ArchiveChatError: cannot archive chat cause last message not found in chat"


def test_it_needs_an_authorized_instance(api_client: APIClient, instance: Instance) -> None:
    assert post(api_client, instance, "archiveChat", {"chatId": PEER_WID}).status_code == 400


@pytest.mark.parametrize(("body", "detail"), [({}, "'chatId' is required"), ({"chatId": PEER_WID, "archive": True}, "'archive' is not allowed")])
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "archiveChat", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "archiveChat", "POST", {"chatId": PEER_WID})
