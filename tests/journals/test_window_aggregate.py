"""lastIncomingMessages / lastOutgoingMessages on PostgreSQL: the database joins the
window's stored objects into one value (journals.history_sql.window_json) and only
rows that need rendering are read as rows. The answer must be the bytes the
row-by-row read gives (journals.history.incoming_by_rows / outgoing_by_rows, the
SQLite path): same objects, same order, same encoding. On SQLite both sides are the
row-by-row read, so these tests hold there trivially and check the wire answers."""

import json
from datetime import timedelta
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from engines.emulator.transport import ensure_phone
from instances.models import Instance
from journals import history
from journals.models import ChangeKind, JournalMessage, MessageChange
from messaging.models import OutgoingMessage
from tests.journals.chat_helpers import PEER, PEER_WID, at, get, post, receive, text_data
from tests.journals.test_journal_json import FIXED, PASSED_THROUGH

MINUTES = 120
OTHER = "79005550000@c.us"


def _answers(instance: Instance, minutes: int = MINUTES) -> tuple[bytes, bytes, bytes, bytes]:
    """(lastIncomingMessages, its row-by-row read, lastOutgoingMessages, its row-by-row
    read). Every message of the tests is minutes inside the window, so the two reads'
    window starts (a few milliseconds apart) select the same rows."""
    since = history._since(minutes)
    return (
        history.last_incoming_messages(instance, minutes=minutes),
        history.incoming_by_rows(instance, since),
        history.last_outgoing_messages(instance, minutes=minutes),
        history.outgoing_by_rows(instance, since),
    )


def _assert_same(instance: Instance) -> tuple[list[Any], list[Any]]:
    incoming, incoming_rows, outgoing, outgoing_rows = _answers(instance)
    assert incoming == incoming_rows
    assert outgoing == outgoing_rows
    return json.loads(incoming), json.loads(outgoing)


def _send(client: APIClient, capture: Any, **body: Any) -> str:
    with capture(execute=True):
        r = post(client, body.pop("instance"), "sendMessage", {"chatId": PEER_WID, **body})
    assert r.status_code == 200, r.content
    return str(r.json()["idMessage"])


def test_every_message_type_both_directions(authorized_instance: Instance) -> None:
    for n, data in enumerate(FIXED + PASSED_THROUGH):
        receive(authorized_instance, data, id_message=f"I{n}", when=at(3000 - 10 * n))
        receive(authorized_instance, data, id_message=f"O{n}", direction="outgoing", when=at(2995 - 10 * n))
    receive(authorized_instance, text_data("emoji 😀 and \u2029"), id_message="E1", chat_id=OTHER, when=at(5))
    incoming, outgoing = _assert_same(authorized_instance)
    assert [i["idMessage"] for i in incoming] == ["E1", *(f"I{n}" for n in reversed(range(11)))]
    assert [i["idMessage"] for i in outgoing] == [f"O{n}" for n in reversed(range(11))]
    assert incoming[0]["textMessage"] == "emoji 😀 and \u2029"
    assert all(list(item)[0] == "type" for item in incoming + outgoing)


def test_order_is_the_timestamps_not_the_insertion(authorized_instance: Instance) -> None:
    when = at(600)
    # Written newest first, and three with the very same timestamp: ties go by row,
    # newest row first.
    receive(authorized_instance, text_data("newest"), id_message="N", when=at(60))
    for name in ("T1", "T2", "T3"):
        receive(authorized_instance, text_data(name), id_message=name, when=when)
    receive(authorized_instance, text_data("oldest"), id_message="OLD", when=at(3000))
    receive(authorized_instance, text_data("middle"), id_message="MID", when=at(1200))
    incoming, _ = _assert_same(authorized_instance)
    assert [i["idMessage"] for i in incoming] == ["N", "T3", "T2", "T1", "MID", "OLD"]


def test_changes_polls_and_unstored_rows_take_their_places(authorized_instance: Instance) -> None:
    for n in range(8):
        receive(authorized_instance, text_data(f"m{n}"), id_message=f"M{n}", when=at(3000 - 100 * n))
        receive(authorized_instance, text_data(f"p{n}"), id_message=f"P{n}", direction="outgoing", when=at(2950 - 100 * n))
    receive(
        authorized_instance,
        {"typeMessage": "pollMessage", "pollMessageData": {"name": "Lunch?", "options": [{"optionName": "Yes"}, {"optionName": "No"}]}},
        id_message="POLL",
        direction="outgoing",
        when=at(1000),
    )
    receive(
        authorized_instance,
        {"typeMessage": "pollUpdateMessage", "pollMessageData": {"stanzaId": "POLL", "name": "Lunch?", "votes": [{"optionName": "Yes", "optionVoters": [PEER_WID]}, {"optionName": "No", "optionVoters": []}]}},
        id_message="V1",
        when=at(900),
    )
    receive(
        authorized_instance,
        {"typeMessage": "editedMessage", "editedMessageData": {"textMessage": "m2 fixed ✓", "stanzaId": "M2"}},
        id_message="ED1",
        when=at(800),
    )
    receive(
        authorized_instance,
        {"typeMessage": "deletedMessage", "deletedMessageData": {"stanzaId": "P3"}},
        id_message="DE1",
        direction="outgoing",
        when=at(700),
    )
    MessageChange.objects.create(
        instance=authorized_instance, chat_id=PEER_WID, id_message="M5", kind=ChangeKind.HIDDEN, timestamp=at(600)
    )
    # Rows stored without an object (bulk writers) or by another renderer version.
    JournalMessage.objects.filter(id_message__in=["M0", "M7", "P1"]).update(journal_json="", journal_json_version=0)
    JournalMessage.objects.filter(id_message="M4").update(journal_json='{"textMessage":"stale"}', journal_json_version=99)

    incoming, outgoing = _assert_same(authorized_instance)
    by_id = {i["idMessage"]: i for i in incoming + outgoing}
    assert [i["idMessage"] for i in incoming] == ["M7", "M6", "M4", "M3", "M2", "M1", "M0"]  # M5 hidden
    assert (by_id["M2"]["textMessage"], by_id["M2"]["isEdited"]) == ("m2 fixed ✓", True)
    assert by_id["M4"]["textMessage"] == "m4"
    assert by_id["P3"]["isDeleted"] is True
    assert by_id["POLL"]["pollMessageData"]["votes"][0] == {"optionName": "Yes", "optionVoters": [PEER_WID]}
    assert [i["idMessage"] for i in outgoing][:3] == ["POLL", "P7", "P6"]


def test_api_sent_messages_merge_in(
    api_client: APIClient, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    ensure_phone(PEER, "John")
    receive(authorized_instance, text_data("question"), id_message="Q1", when=at(1000))
    receive(authorized_instance, text_data("from my phone"), id_message="P1", direction="outgoing", when=at(500))
    reply = _send(api_client, django_capture_on_commit_callbacks, instance=authorized_instance, message="answer", quotedMessageId="Q1")
    plain = _send(api_client, django_capture_on_commit_callbacks, instance=authorized_instance, message="plain ✓")
    hidden = _send(api_client, django_capture_on_commit_callbacks, instance=authorized_instance, message="gone")
    tie = _send(api_client, django_capture_on_commit_callbacks, instance=authorized_instance, message="tie")
    MessageChange.objects.create(instance=authorized_instance, chat_id=PEER_WID, id_message=hidden, kind=ChangeKind.HIDDEN)
    # An API-sent message and a phone-sent one at the same timestamp.
    tied = OutgoingMessage.objects.get(instance=authorized_instance, id_message=tie)
    phone = JournalMessage.objects.get(instance=authorized_instance, id_message="P1")
    OutgoingMessage.objects.filter(pk=tied.pk).update(created_at=phone.timestamp)

    _, outgoing = _assert_same(authorized_instance)
    ids = [i["idMessage"] for i in outgoing]
    assert hidden not in ids
    assert set(ids) == {"P1", reply, plain, tie}
    assert abs(ids.index(tie) - ids.index("P1")) == 1  # at the same timestamp, side by side
    quoted = next(i for i in outgoing if i["idMessage"] == reply)
    assert quoted["quotedMessage"]["stanzaId"] == "Q1"


def test_a_window_of_stored_objects_is_one_read(api_client: APIClient, authorized_instance: Instance) -> None:
    for n in range(30):
        receive(authorized_instance, text_data(f"m{n} é"), id_message=f"M{n}", chat_id=f"7900555{n:04d}@c.us", when=at(1000 - n))
    with CaptureQueriesContext(connection) as queries:
        body = history.last_incoming_messages(authorized_instance, minutes=MINUTES)
    assert body == history.incoming_by_rows(authorized_instance, history._since(MINUTES))
    if connection.vendor == "postgresql":
        # The changes of the window (none), then the aggregate: no row read.
        assert len(queries) == 2
        assert "string_agg" in queries[1]["sql"]
    r = get(api_client, authorized_instance, "lastIncomingMessages", f"minutes={MINUTES}")
    assert r.content == body
    assert [i["idMessage"] for i in r.json()] == [f"M{n}" for n in reversed(range(30))]


def test_an_empty_window(authorized_instance: Instance) -> None:
    receive(authorized_instance, text_data("old"), id_message="OLD", when=timezone.now() - timedelta(days=2))
    assert _answers(authorized_instance) == (b"[]", b"[]", b"[]", b"[]")
