"""callsHangUp: end the current call, whatever its state; durations are journaled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuCall
from tests.factories import make_instance
from tests.journals.chat_helpers import assert_wire_guards, get
from tests.messaging.calls_helpers import call, call_notifications, journal, pair, refused, state, tick

pytestmark = pytest.mark.django_db


def test_hanging_up_an_answered_call_records_its_duration(api_client: APIClient) -> None:
    a, b = pair()
    call(api_client, a, "callsDial", {"chatId": b.wid})
    call(api_client, b, "callsAccept")
    answered = EmuCall.objects.get()
    EmuCall.objects.filter(pk=answered.pk).update(answered_at=answered.answered_at - timedelta(seconds=42))
    r = call(api_client, b, "callsHangUp")
    assert r.status_code == 200
    assert r.content == b""
    assert state(api_client, a) == {"state": "idle", "info": None, "reason": "hangup"}
    assert state(api_client, b)["reason"] == "hangup"
    tick()
    # Two notifications per call: the offer and its outcome; the hang-up adds none.
    assert call_notifications(b) == [("offer", a.wid), ("pickUp", a.wid)]
    assert journal(a) == [("outgoing", b.wid, "pickUp", 42)]
    assert journal(b) == [("incoming", a.wid, "pickUp", 42)]
    outgoing = get(api_client, a, "lastOutgoingCalls").json()
    assert outgoing[0]["duration"] == 42 and outgoing[0]["status"] == "pickUp"
    incoming = get(api_client, b, "lastIncomingCalls").json()
    assert incoming[0]["duration"] == 42 and incoming[0]["chatId"] == a.wid


def test_the_caller_cancels_a_ringing_call(api_client: APIClient) -> None:
    a, b = pair(a_phone="79330000301", b_phone="79330000302")
    call(api_client, a, "callsDial", {"chatId": b.wid})
    assert call(api_client, a, "callsHangUp").status_code == 200
    assert state(api_client, b) == {"state": "idle", "info": None, "reason": "cancelled"}
    tick()
    assert call_notifications(b) == [("offer", a.wid), ("hungUp", a.wid)]
    assert journal(a) == [("outgoing", b.wid, "hungUp", None)]


def test_the_callee_hanging_up_a_ringing_call_declines_it(api_client: APIClient) -> None:
    a, b = pair(a_phone="79330000311", b_phone="79330000312")
    call(api_client, a, "callsDial", {"chatId": b.wid})
    call(api_client, b, "callsHangUp")
    assert state(api_client, a)["reason"] == "rejected"


def test_nothing_to_hang_up(api_client: APIClient) -> None:
    a, b = pair(a_phone="79330000321", b_phone="79330000322")
    refused(call(api_client, a, "callsHangUp"), "there is no call to hang up")
    call(api_client, a, "callsDial", {"chatId": b.wid})
    call(api_client, a, "callsHangUp")
    refused(call(api_client, b, "callsHangUp"), "there is no call to hang up")


def test_it_needs_an_authorized_instance(api_client: APIClient) -> None:
    refused(call(api_client, make_instance(), "callsHangUp"), "instance is starting or not authorized")


def test_wire_guards(api_client: APIClient) -> None:
    assert_wire_guards(api_client, make_instance(authorized=True), "callsHangUp", "POST", {})
