"""callsAccept: answer the call ringing the instance; both sides go on-call."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from engines.emulator import triggers as emulator_events
from tests.factories import make_instance
from tests.journals.chat_helpers import assert_validation, assert_wire_guards
from tests.messaging.calls_helpers import (
    CONTACT,
    CONTACT_WID,
    call,
    call_notifications,
    journal,
    pair,
    refused,
    state,
    tick,
)

pytestmark = pytest.mark.django_db


def test_accepting_a_call_from_another_instance(api_client: APIClient) -> None:
    a, b = pair()
    call(api_client, a, "callsDial", {"chatId": b.wid})
    r = call(api_client, b, "callsAccept")
    assert r.status_code == 200
    assert r.content == b""
    assert state(api_client, a)["state"] == "on-call"
    assert state(api_client, b)["state"] == "on-call"
    tick()
    assert call_notifications(b) == [("offer", a.wid), ("pickUp", a.wid)]
    assert journal(a) == [("outgoing", b.wid, "pickUp", None)]
    assert journal(b) == [("incoming", a.wid, "pickUp", None)]


def test_accepting_a_call_from_a_contact(api_client: APIClient) -> None:
    a, _ = pair(a_phone="79330000101", b_phone="79330000102")
    id_call = emulator_events.contact_calls(a, phone=CONTACT, name="Bob")
    assert state(api_client, a)["info"] == {"id": id_call, "wid": CONTACT_WID, "name": "Bob"}
    assert call(api_client, a, "callsAccept", {}).status_code == 200  # an empty object is fine too
    assert state(api_client, a)["state"] == "on-call"
    tick()
    assert call_notifications(a) == [("offer", CONTACT_WID), ("pickUp", CONTACT_WID)]


def test_nothing_to_accept(api_client: APIClient) -> None:
    a, b = pair(a_phone="79330000111", b_phone="79330000112")
    refused(call(api_client, a, "callsAccept"), "there is no incoming call to accept")
    call(api_client, a, "callsDial", {"chatId": b.wid})
    # The caller cannot answer its own call, and an answered call cannot be answered again.
    refused(call(api_client, a, "callsAccept"), "there is no incoming call to accept")
    call(api_client, b, "callsAccept")
    refused(call(api_client, b, "callsAccept"), "there is no incoming call to accept")


def test_it_validates(api_client: APIClient) -> None:
    a = make_instance(authorized=True)
    assert_validation(call(api_client, a, "callsAccept", {"chatId": "1@c.us"}), "'chatId' is not allowed")


def test_it_needs_an_authorized_instance(api_client: APIClient) -> None:
    refused(call(api_client, make_instance(), "callsAccept"), "instance is starting or not authorized")


def test_wire_guards(api_client: APIClient) -> None:
    assert_wire_guards(api_client, make_instance(authorized=True), "callsAccept", "POST", {})


def test_the_control_api_cannot_answer_for_another_instance(api_client: APIClient) -> None:
    a, b = pair(a_phone="79330000121", b_phone="79330000122")
    call(api_client, a, "callsDial", {"chatId": b.wid})
    id_call = state(api_client, a)["info"]["id"]
    for outcome in ("pickUp", "declined", "hungUp"):
        with pytest.raises(emulator_events.EventError, match="is an instance"):
            emulator_events.call_ends(a, id_call=id_call, outcome=outcome)
    assert state(api_client, b)["state"] == "inc-call"
    emulator_events.call_ends(b, id_call=id_call, outcome="declined")  # B's own phone may
    assert state(api_client, a)["reason"] == "rejected"
