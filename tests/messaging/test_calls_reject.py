"""callsReject: decline the call ringing the instance; the caller sees it."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from engines.emulator import triggers as emulator_events
from tests.factories import make_instance
from tests.journals.chat_helpers import assert_wire_guards
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


def test_rejecting_a_call_from_another_instance(api_client: APIClient) -> None:
    a, b = pair()
    call(api_client, a, "callsDial", {"chatId": b.wid})
    r = call(api_client, b, "callsReject")
    assert r.status_code == 200
    assert r.content == b""
    assert state(api_client, a) == {"state": "idle", "info": None, "reason": "rejected"}
    assert state(api_client, b) == {"state": "idle", "info": None, "reason": "rejected"}
    tick()
    assert call_notifications(b) == [("offer", a.wid), ("declined", a.wid)]
    assert journal(a) == [("outgoing", b.wid, "declined", None)]
    assert journal(b) == [("incoming", a.wid, "declined", None)]


def test_rejecting_a_contact(api_client: APIClient) -> None:
    a, _ = pair(a_phone="79330000201", b_phone="79330000202")
    emulator_events.contact_calls(a, phone=CONTACT)
    assert call(api_client, a, "callsReject").status_code == 200
    tick()
    assert call_notifications(a) == [("offer", CONTACT_WID), ("declined", CONTACT_WID)]


def test_nothing_to_reject(api_client: APIClient) -> None:
    a, b = pair(a_phone="79330000211", b_phone="79330000212")
    refused(call(api_client, a, "callsReject"), "there is no incoming call to reject")
    call(api_client, a, "callsDial", {"chatId": b.wid})
    refused(call(api_client, a, "callsReject"), "there is no incoming call to reject")  # A is calling
    call(api_client, b, "callsAccept")
    refused(call(api_client, b, "callsReject"), "there is no incoming call to reject")  # already on-call


def test_it_needs_an_authorized_instance(api_client: APIClient) -> None:
    refused(call(api_client, make_instance(), "callsReject"), "instance is starting or not authorized")


def test_wire_guards(api_client: APIClient) -> None:
    assert_wire_guards(api_client, make_instance(authorized=True), "callsReject", "POST", {})
