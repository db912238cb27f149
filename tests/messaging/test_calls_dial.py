"""callsDial: ring another instance on this server or a simulated contact."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuCall
from engines.emulator.services import add_simulated_contact
from tests.conftest import method_url
from tests.factories import make_instance
from tests.journals.chat_helpers import assert_validation, assert_wire_guards
from tests.messaging.calls_helpers import (
    CONTACT_WID,
    call,
    call_notifications,
    journal,
    pair,
    refused,
    state,
    tick,
    with_contact,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _contacts_answer_at_once(settings: Any) -> None:
    settings.EMULATOR_CALL_ANSWER_AFTER_SECONDS = 0


def test_the_other_instance_rings(api_client: APIClient) -> None:
    a, b = pair()
    r = call(api_client, a, "callsDial", {"chatId": b.wid})
    assert r.status_code == 200
    assert r.content == b""
    mine, theirs = state(api_client, a), state(api_client, b)
    assert mine["state"] == "out-call"
    assert theirs["state"] == "inc-call"
    assert mine["info"]["id"] == theirs["info"]["id"]
    assert mine["info"]["wid"] == b.wid and theirs["info"]["wid"] == a.wid
    assert theirs["info"]["name"] == "Test Phone"  # B's phone has no contact name for A
    assert mine["reason"] is None

    tick()  # the sessions take the call signals in

    assert call_notifications(b) == [("offer", a.wid)]
    assert call_notifications(a) == []  # GREEN-API has no outgoing-call notification
    assert journal(a) == [("outgoing", b.wid, "offer", None)]
    assert journal(b) == [("incoming", a.wid, "offer", None)]


def test_outgoing_calls_are_journalled_only_with_outgoing_call_webhook(api_client: APIClient) -> None:
    """lastOutgoingCalls "needs outgoingCallWebhook" (API.md §9.4): off, the call
    still rings the other side but leaves nothing in the caller's journal."""
    a, b = pair(a_phone="79330000031", b_phone="79330000032")
    a.settings["outgoingCallWebhook"] = False
    a.save(update_fields=["settings"])
    assert call(api_client, a, "callsDial", {"chatId": b.wid}).status_code == 200
    tick()
    assert call_notifications(b) == [("offer", a.wid)]
    assert journal(a) == []
    assert api_client.get(method_url(a, "lastOutgoingCalls")).json() == []
    assert call(api_client, a, "callsHangUp").status_code == 200
    tick()
    assert journal(a) == []

    r = api_client.post(f"/waInstance{a.id}/setSettings/{a.api_token}", {"outgoingCallWebhook": "yes"}, format="json")
    assert r.status_code == 200, r.content
    assert call(api_client, a, "callsDial", {"chatId": b.wid}).status_code == 200
    tick()
    assert [c["status"] for c in api_client.get(method_url(a, "lastOutgoingCalls")).json()] == ["offer"]


def test_a_contact_that_answers(api_client: APIClient) -> None:
    a, _ = pair(a_phone="79330000011", b_phone="79330000012")
    with_contact(a, rule="answer")
    assert call(api_client, a, "callsDial", {"chatId": CONTACT_WID}).status_code == 200
    assert state(api_client, a)["state"] == "out-call"
    tick()  # the contact answers by its rule
    now = state(api_client, a)
    assert now["state"] == "on-call"
    assert now["info"]["name"] == "Alice"
    tick()
    assert journal(a) == [("outgoing", CONTACT_WID, "pickUp", None)]


def test_a_contact_that_rejects(api_client: APIClient) -> None:
    a, _ = pair(a_phone="79330000021", b_phone="79330000022")
    with_contact(a, rule="reject")
    call(api_client, a, "callsDial", {"chatId": CONTACT_WID})
    tick()
    tick()
    assert state(api_client, a) == {"state": "idle", "info": None, "reason": "rejected"}
    assert journal(a) == [("outgoing", CONTACT_WID, "declined", None)]


def test_a_silent_contact_rings_until_the_timeout(api_client: APIClient, settings: Any) -> None:
    a, _ = pair(a_phone="79330000031", b_phone="79330000032")
    with_contact(a, rule="silent")
    call(api_client, a, "callsDial", {"chatId": CONTACT_WID})
    tick()
    assert state(api_client, a)["state"] == "out-call"
    EmuCall.objects.update(created_at=EmuCall.objects.get().created_at - timedelta(seconds=3600))
    tick()
    tick()
    assert state(api_client, a)["reason"] == "no-answer"
    assert journal(a) == [("outgoing", CONTACT_WID, "hungUp", None)]


def test_one_call_at_a_time(api_client: APIClient) -> None:
    a, b = pair(a_phone="79330000041", b_phone="79330000042")
    with_contact(a, rule="silent")
    call(api_client, a, "callsDial", {"chatId": b.wid})
    refused(call(api_client, a, "callsDial", {"chatId": CONTACT_WID}), "a call is already in progress")
    assert EmuCall.objects.count() == 1


def test_a_busy_callee(api_client: APIClient) -> None:
    a, b = pair(a_phone="79330000051", b_phone="79330000052")
    c = make_instance(authorized=True, phone="79330000053")
    call(api_client, a, "callsDial", {"chatId": b.wid})
    assert call(api_client, c, "callsDial", {"chatId": b.wid}).status_code == 200
    assert state(api_client, c) == {"state": "idle", "info": None, "reason": "busy"}
    assert state(api_client, b)["info"]["wid"] == a.wid  # still ringing from A
    tick()
    assert call_notifications(b) == [("offer", a.wid)]


def test_refusals(api_client: APIClient) -> None:
    a, _ = pair(a_phone="79330000061", b_phone="79330000062")
    refused(call(api_client, a, "callsDial", {"chatId": a.wid}), "an account cannot call itself")
    add_simulated_contact(owner_phone=a.phone, phone="79330000069", registered=False)
    refused(call(api_client, a, "callsDial", {"chatId": "79330000069@c.us"}), "+79330000069 has no WhatsApp account")
    assert EmuCall.objects.count() == 0


def test_it_needs_an_authorized_instance(api_client: APIClient) -> None:
    idle = make_instance()
    refused(call(api_client, idle, "callsDial", {"chatId": CONTACT_WID}), "instance is starting or not authorized")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'chatId' is required"),
        ({"chatId": "120363000000000000@g.us"}, "'chatId' must be one of the next formats: 'phone_number@c.us'"),
        ({"chatId": CONTACT_WID, "video": True}, "'video' is not allowed"),
    ],
)
def test_it_validates(api_client: APIClient, body: dict[str, Any], detail: str) -> None:
    a = make_instance(authorized=True)
    assert_validation(call(api_client, a, "callsDial", body), detail)


def test_wire_guards(api_client: APIClient) -> None:
    a = make_instance(authorized=True)
    assert_wire_guards(api_client, a, "callsDial", "POST", {"chatId": CONTACT_WID})
