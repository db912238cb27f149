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


def test_it_unarchives_with_an_empty_body(api_client: APIClient, authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("x"), id_message="A1")
    post(api_client, authorized_instance, "archiveChat", {"chatId": PEER_WID})
    r = post(api_client, authorized_instance, "unarchiveChat", {"chatId": PEER_WID})
    assert (r.status_code, r.content) == (200, b"")
    assert ChatState.objects.get(instance=authorized_instance, chat_id=PEER_WID).archived is False


def test_an_unknown_chat_is_refused_like_archive(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "unarchiveChat", {"chatId": PEER_WID})
    assert r.status_code == 400
    assert r.json()["message"] == "UnarchiveChatError: cannot unarchive chat cause last message not found in chat"
    assert not ChatState.objects.filter(instance=authorized_instance).exists()


@pytest.mark.parametrize(("body", "detail"), [({"chatId": 1}, "'chatId' must be a string")])
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "unarchiveChat", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "unarchiveChat", "POST", {"chatId": PEER_WID})
