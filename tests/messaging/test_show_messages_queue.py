"""showMessagesQueue (API.md §6, §9.5): the first 500 pending items, oldest first; each
body echoes the request with defaulted fields; one forwardMessages call is one item."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from instances.models import Instance
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import method_url

CHAT = "79001112233@c.us"
SOURCE = "79004445566@c.us"


def post(client: APIClient, instance: Instance, method: str, body: Any) -> Any:
    r = client.post(method_url(instance, method), body, format="json")
    assert r.status_code == 200, r.content
    return r.json()


def show(client: APIClient, instance: Instance) -> Any:
    r = client.get(method_url(instance, "showMessagesQueue"))
    assert r.status_code == 200, r.content
    return r.json()


@pytest.fixture
def source_ids(instance: Instance) -> list[str]:
    """Two messages the instance sent earlier to SOURCE, to forward from there."""
    return [
        OutgoingMessage.objects.create(
            instance=instance,
            chat_id=SOURCE,
            method="sendMessage",
            type_message="textMessage",
            payload={"message": text},
            status=OutgoingStatus.SENT,
        ).id_message
        for text in ("one", "two")
    ]


def test_an_empty_queue_is_an_empty_list(api_client: APIClient, instance: Instance) -> None:
    assert show(api_client, instance) == []


def test_it_lists_pending_items_with_their_echoed_bodies(
    api_client: APIClient, instance: Instance, source_ids: list[str]
) -> None:
    # ``instance`` is not authorized: everything stays queued.
    text = post(api_client, instance, "sendMessage", {"chatId": CHAT, "message": "hi"})["idMessage"]
    poll = post(
        api_client,
        instance,
        "sendPoll",
        {"chatId": CHAT, "message": "Q", "options": [{"optionName": "a"}, {"optionName": "b"}]},
    )["idMessage"]
    location = post(api_client, instance, "sendLocation", {"chatId": CHAT, "latitude": 1.5, "longitude": 2})[
        "idMessage"
    ]
    contact = post(
        api_client,
        instance,
        "sendContact",
        {"chatId": CHAT, "contact": {"phoneContact": 79005554433, "firstName": "A"}},
    )["idMessage"]
    forwarded = post(
        api_client,
        instance,
        "forwardMessages",
        {"chatId": CHAT, "chatIdFrom": SOURCE, "messages": source_ids},
    )["messages"]
    link = post(api_client, instance, "sendLink", {"chatId": CHAT, "urlLink": "https://example.com"})[
        "idMessage"
    ]

    assert show(api_client, instance) == [
        {
            "messageID": text,
            "type": "sendMessage",
            "body": {
                "chatId": CHAT,
                "message": "hi",
                "quotedMessageId": None,
                "linkPreview": True,
                "typePreview": "small",
                "customPreview": None,
                "typingTime": None,
            },
        },
        {
            "messageID": poll,
            "type": "sendPoll",
            "body": {
                "chatId": CHAT,
                "message": "Q",
                "options": [{"optionName": "a"}, {"optionName": "b"}],
                "multipleAnswers": False,
                "quotedMessageId": None,
                "typingTime": None,
            },
        },
        {
            "messageID": location,
            "type": "sendLocation",
            "body": {
                "chatId": CHAT,
                "nameLocation": "",
                "address": "",
                "latitude": 1.5,
                "longitude": 2.0,
                "quotedMessageId": None,
                "typingTime": None,
            },
        },
        {
            "messageID": contact,
            "type": "sendContact",
            "body": {
                "chatId": CHAT,
                "contact": {"phoneContact": 79005554433, "firstName": "A"},
                "quotedMessageId": None,
                "typingTime": None,
            },
        },
        {
            "messagesIDs": forwarded,
            "type": "ForwardMessages",
            "body": {"chatId": CHAT, "chatIdFrom": SOURCE, "messages": source_ids},
        },
        {"messageID": link, "type": "sendLink", "body": {"chatId": CHAT, "urlLink": "https://example.com"}},
    ]


def test_two_equal_forward_calls_are_two_items(
    api_client: APIClient, instance: Instance, source_ids: list[str]
) -> None:
    body = {"chatId": CHAT, "chatIdFrom": SOURCE, "messages": source_ids}
    first = post(api_client, instance, "forwardMessages", body)["messages"]
    second = post(api_client, instance, "forwardMessages", body)["messages"]
    assert show(api_client, instance) == [
        {"messagesIDs": first, "type": "ForwardMessages", "body": body},
        {"messagesIDs": second, "type": "ForwardMessages", "body": body},
    ]


def test_sent_and_failed_messages_are_not_listed(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        gone = post(
            api_client, authorized_instance, "sendMessage", {"chatId": "79000000009@c.us", "message": "a"}
        )["idMessage"]
    waiting = post(api_client, authorized_instance, "sendMessage", {"chatId": CHAT, "message": "b"})[
        "idMessage"
    ]
    sending = OutgoingMessage.objects.create(
        instance=authorized_instance, chat_id=CHAT, method="sendMessage", status=OutgoingStatus.SENDING
    )
    assert OutgoingMessage.objects.get(id_message=gone).status == OutgoingStatus.NO_ACCOUNT
    assert [item["messageID"] for item in show(api_client, authorized_instance)] == [
        waiting,
        sending.id_message,
    ]


def test_it_lists_only_this_instances_queue(
    api_client: APIClient, instance: Instance, authorized_instance: Instance
) -> None:
    post(api_client, authorized_instance, "sendMessage", {"chatId": CHAT, "message": "other"})
    assert show(api_client, instance) == []


def test_it_shows_the_first_500_in_one_query_per_table(
    api_client: APIClient, instance: Instance, django_assert_max_num_queries: Any
) -> None:
    OutgoingMessage.objects.bulk_create(
        OutgoingMessage(
            instance=instance,
            chat_id=CHAT,
            method="sendMessage",
            request={"chatId": CHAT, "message": str(i)},
            id_message=f"BAE5{i:012X}",
        )
        for i in range(501)
    )
    with django_assert_max_num_queries(3):
        items = show(api_client, instance)
    assert len(items) == 500
    assert items[0] == {
        "messageID": "BAE5000000000000",
        "type": "sendMessage",
        "body": {"chatId": CHAT, "message": "0"},
    }
    assert items[-1]["messageID"] == f"BAE5{499:012X}"


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "showMessagesQueue", token="f" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, db: None) -> None:
    r = api_client.get("/waInstance1234567890/showMessagesQueue/" + "a" * 50)
    assert (r.status_code, r.content) == (403, b"Forbidden")


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    r = api_client.post(method_url(instance, "showMessagesQueue"), {}, format="json")
    assert (r.status_code, r.content) == (404, b"Not Found")
