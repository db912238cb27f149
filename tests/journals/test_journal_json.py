"""Journal rows store their journal object when written (journals.rendering): the
journal methods answer the same whether a row stores it or is rendered on read, in
the bytes DRF's JSONRenderer writes for the same objects, with a fixed number of
queries either way."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from instances.models import Instance
from journals.models import Direction, JournalMessage
from journals.rendering import JOURNAL_JSON_VERSION
from tests.journals.chat_helpers import PEER_WID, at, get, post, receive, text_data

# Types whose objects are made of fixed keys only: identical bytes on every database.
FIXED: list[dict[str, Any]] = [
    text_data("naïve café \u2028 line ✓ \"quoted\" \\ done"),
    {
        "typeMessage": "extendedTextMessage",
        "extendedTextMessageData": {
            "text": "https://example.com",
            "description": "d",
            "title": "t",
            "previewType": "None",
            "jpegThumbnail": "",
            "forwardingScore": 3,
            "isForwarded": True,
        },
    },
    {
        "typeMessage": "imageMessage",
        "fileMessageData": {
            "downloadUrl": "https://relay.test/media/f/t/pic.jpg",
            "caption": "Logo",
            "fileName": "pic.jpg",
            "jpegThumbnail": "/9j/4AAQ",
            "mimeType": "image/jpeg",
        },
    },
    {"typeMessage": "stickerMessage", "fileMessageData": {"downloadUrl": "https://relay.test/s.webp", "isAnimated": True}},
    {
        "typeMessage": "locationMessage",
        "locationMessageData": {"nameLocation": "Office", "address": "Street 1", "latitude": 55.7, "longitude": 37.6},
    },
    {"typeMessage": "contactMessage", "contactMessageData": {"displayName": "Ann", "vcard": "BEGIN:VCARD"}},
    {
        "typeMessage": "pollMessage",
        "pollMessageData": {"name": "Lunch?", "options": [{"optionName": "Yes"}, {"optionName": "No"}]},
    },
]
# Types that pass sub-objects through: PostgreSQL's jsonb hands those back with its
# own key order, so only the parsed answers are compared.
PASSED_THROUGH: list[dict[str, Any]] = [
    {
        "typeMessage": "quotedMessage",
        "extendedTextMessageData": {"text": "answer", "stanzaId": "F0", "participant": PEER_WID},
        "quotedMessage": {"stanzaId": "F0", "participant": PEER_WID, "typeMessage": "textMessage", "textMessage": "q"},
    },
    {
        "typeMessage": "reactionMessage",
        "extendedTextMessageData": {"text": "👍"},
        "quotedMessage": {"stanzaId": "F0", "participant": PEER_WID},
    },
    {
        "typeMessage": "contactsArrayMessage",
        "messageData": {"contacts": [{"displayName": "Ann", "vcard": "BEGIN:VCARD"}]},
    },
    {"typeMessage": "buttonsResponseMessage", "buttonsResponseMessage": {"stanzaId": "F0", "selectedButtonId": "1"}},
]


def _journal(instance: Instance, samples: list[dict[str, Any]], prefix: str) -> None:
    for n, data in enumerate(samples):
        receive(instance, data, id_message=f"{prefix}{n}", when=at(200 - n))
    receive(instance, text_data("from my phone"), id_message=f"{prefix}P", direction="outgoing", when=at(90))


def _answers(client: APIClient, instance: Instance, ids: list[str]) -> list[bytes]:
    answers = [
        post(client, instance, "getChatHistory", {"chatId": PEER_WID, "count": 50}),
        get(client, instance, "lastIncomingMessages"),
        get(client, instance, "lastOutgoingMessages"),
        *(post(client, instance, "getMessage", {"chatId": PEER_WID, "idMessage": i}) for i in ids),
    ]
    for r in answers:
        assert r.status_code == 200, r.content
        assert r["Content-Type"] == "application/json"
    return [r.content for r in answers]


def _forget_stored_objects() -> None:
    JournalMessage.objects.update(journal_json="", journal_json_version=0)


def test_ingest_stores_the_object(authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("hello"), id_message="A1", when=at(60))
    row = JournalMessage.objects.get(instance=authorized_instance, id_message="A1")
    assert row.journal_json_version == JOURNAL_JSON_VERSION
    assert json.loads(row.journal_json) == {
        "timestamp": int(at(60).timestamp()),
        "idMessage": "A1",
        "typeMessage": "textMessage",
        "chatId": PEER_WID,
        "senderId": PEER_WID,
        "senderName": "John",
        "senderContactName": "John Doe",
        "isForwarded": False,
        "forwardingScore": 0,
        "textMessage": "hello",
    }


def test_stored_and_read_rendered_bytes_agree(api_client: APIClient, authorized_instance: Instance) -> None:
    _journal(authorized_instance, FIXED, "F")
    receive(
        authorized_instance,
        {"typeMessage": "editedMessage", "editedMessageData": {"textMessage": "café fixed", "stanzaId": "F0"}},
        id_message="ED1",
    )
    receive(
        authorized_instance,
        {
            "typeMessage": "pollUpdateMessage",
            "pollMessageData": {
                "stanzaId": "F6",
                "name": "Lunch?",
                "votes": [{"optionName": "Yes", "optionVoters": [PEER_WID]}, {"optionName": "No", "optionVoters": []}],
            },
        },
        id_message="V1",
    )
    ids = ["F0", "F4", "F6", "FP"]
    stored = _answers(api_client, authorized_instance, ids)
    _forget_stored_objects()
    assert _answers(api_client, authorized_instance, ids) == stored
    history = json.loads(stored[0])
    assert [i["idMessage"] for i in history] == ["FP", "F6", "F5", "F4", "F3", "F2", "F1", "F0"]
    assert (history[-1]["textMessage"], history[-1]["isEdited"]) == ("café fixed", True)
    assert history[1]["pollMessageData"]["votes"] == [
        {"optionName": "Yes", "optionVoters": [PEER_WID]},
        {"optionName": "No", "optionVoters": []},
    ]


def test_stored_and_read_rendered_objects_agree(api_client: APIClient, authorized_instance: Instance) -> None:
    _journal(authorized_instance, PASSED_THROUGH, "Q")
    ids = ["Q0", "Q1", "Q2", "Q3"]
    stored = _answers(api_client, authorized_instance, ids)
    _forget_stored_objects()
    assert [json.loads(a) for a in _answers(api_client, authorized_instance, ids)] == [json.loads(a) for a in stored]


def test_bodies_are_what_drf_renders(api_client: APIClient, authorized_instance: Instance) -> None:
    _journal(authorized_instance, FIXED + PASSED_THROUGH, "B")
    answers = _answers(api_client, authorized_instance, ["B0", "B8"])
    for content in answers:
        assert content == JSONRenderer().render(json.loads(content))
    one = answers[3]  # getMessage B0: non-ASCII as UTF-8, U+2028 escaped
    assert "naïve café".encode() in one
    assert b"\\u2028" in one


def _bulk(instance: Instance, count: int) -> None:
    """Rows written without signals (like engines.emulator.seed): no stored object."""
    now = timezone.now()
    JournalMessage.objects.bulk_create(
        JournalMessage(
            instance=instance,
            direction=Direction.INCOMING,
            chat_id=f"7900555{n:04d}@c.us",
            id_message=f"BULK{n}",
            sender=f"7900555{n:04d}@c.us",
            sender_name="Bulk",
            type_message="textMessage",
            message_data=text_data(f"b{n}"),
            timestamp=now.replace(microsecond=0) - timedelta(seconds=n + 1),
        )
        for n in range(count)
    )


def test_rows_without_a_stored_object_are_rendered_on_read(
    api_client: APIClient, authorized_instance: Instance, django_assert_max_num_queries: Any
) -> None:
    _bulk(authorized_instance, 30)
    for n in range(10):
        receive(authorized_instance, text_data(f"m{n}"), id_message=f"M{n}", chat_id=f"7900666{n:04d}@c.us")
    assert JournalMessage.objects.filter(journal_json_version=0).count() == 30
    with django_assert_max_num_queries(4):
        items = get(api_client, authorized_instance, "lastIncomingMessages").json()
    assert len(items) == 40
    assert [i["idMessage"] for i in items[10:]] == [f"BULK{n}" for n in range(30)]
    assert items[10] == {
        "type": "incoming",
        "timestamp": items[10]["timestamp"],
        "idMessage": "BULK0",
        "typeMessage": "textMessage",
        "chatId": "79005550000@c.us",
        "senderId": "79005550000@c.us",
        "senderName": "Bulk",
        "senderContactName": "",
        "isForwarded": False,
        "forwardingScore": 0,
        "textMessage": "b0",
    }


def test_a_page_mixing_stored_and_unstored_rows(api_client: APIClient, authorized_instance: Instance) -> None:
    for n in range(6):
        receive(authorized_instance, text_data(f"m{n}"), id_message=f"M{n}", when=at(100 - n))
    JournalMessage.objects.filter(id_message__in=["M1", "M4"]).update(journal_json="", journal_json_version=0)
    items = post(api_client, authorized_instance, "getChatHistory", {"chatId": PEER_WID, "count": 4}).json()
    assert [(i["idMessage"], i["textMessage"], i["type"]) for i in items] == [
        ("M5", "m5", "incoming"),
        ("M4", "m4", "incoming"),
        ("M3", "m3", "incoming"),
        ("M2", "m2", "incoming"),
    ]


@pytest.mark.parametrize("version", [0, JOURNAL_JSON_VERSION + 1])
def test_objects_of_another_renderer_version_are_not_used(
    api_client: APIClient, authorized_instance: Instance, version: int
) -> None:
    receive(authorized_instance, text_data("real"), id_message="A1")
    JournalMessage.objects.update(journal_json='{"textMessage":"stale"}', journal_json_version=version)
    (item,) = get(api_client, authorized_instance, "lastIncomingMessages").json()
    assert item["textMessage"] == "real"
