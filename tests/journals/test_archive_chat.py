from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from instances.models import Instance
from journals.models import ChatState
from tests.factories import make_instance
from tests.journals.chat_helpers import (
    PEER_WID,
    assert_validation,
    assert_wire_guards,
    get,
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


def test_every_device_of_the_account_and_the_cabinet_see_it(
    api_client: APIClient, client: Client, authorized_instance: Instance
) -> None:
    """The chat list belongs to the WhatsApp account: a second device linked to the
    same phone sees the chat archived in getChats, and the cabinet marks it."""
    other = make_instance(authorized_instance.account, authorized=True, phone=authorized_instance.phone)
    for device in (authorized_instance, other):
        receive(device, text_data("x"), id_message="A1")
    assert post(api_client, authorized_instance, "archiveChat", {"chatId": PEER_WID}).status_code == 200
    assert [c["archive"] for c in get(api_client, other, "getChats").json()] == [True]
    client.force_login(authorized_instance.account.user)
    listing = client.get(reverse("dashboard:chats", args=[other.id])).content.decode()
    assert "data-archived" in listing
    assert post(api_client, other, "unarchiveChat", {"chatId": PEER_WID}).status_code == 200
    assert [c["archive"] for c in get(api_client, authorized_instance, "getChats").json()] == [False]
    assert "data-archived" not in client.get(reverse("dashboard:chats", args=[other.id])).content.decode()
