"""Calls over real processes: the HTTP API in this process, a real ``manage.py
runsessions`` runner carrying the call to both sides' journals and notifications and
playing the simulated contacts (answer, reject, ring out), against the test database."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.messaging.calls_helpers import (
    CONTACT_WID,
    call,
    call_notifications,
    journal,
    pair,
    state,
    with_contact,
)
from tests.processes import running, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

RUNNER = ["manage.py", "runsessions", "--tick", "0.2"]
ENV = {"EMULATOR_CALL_ANSWER_AFTER_SECONDS": "0.3", "EMULATOR_CALL_RING_SECONDS": "8"}


def test_a_call_between_instances_and_with_contacts(tmp_path: Path) -> None:
    client = APIClient()
    a, b = pair(a_phone="79330000701", b_phone="79330000702")
    with running(RUNNER, tmp_path / "runner.log", **ENV):
        # Instance to instance: A rings B, B answers, A hangs up.
        assert call(client, a, "callsDial", {"chatId": b.wid}).status_code == 200
        wait_for(lambda: call_notifications(b) == [("offer", a.wid)], timeout=30, what="B's offer")
        assert state(client, b)["state"] == "inc-call"
        assert call(client, b, "callsAccept").status_code == 200
        assert state(client, a)["state"] == "on-call"
        assert call(client, a, "callsHangUp").status_code == 200
        wait_for(
            lambda: journal(b) == [("incoming", a.wid, "pickUp", 0)] and journal(a) == [("outgoing", b.wid, "pickUp", 0)],
            timeout=30,
            what="both journals to record the answered call",
        )
        assert call_notifications(b) == [("offer", a.wid), ("pickUp", a.wid)]

        # A contact that answers by rule, in the runner process.
        with_contact(a, rule="answer")
        call(client, a, "callsDial", {"chatId": CONTACT_WID})
        wait_for(lambda: state(client, a)["state"] == "on-call", timeout=30, what="the contact to answer")
        call(client, a, "callsHangUp")

        # A contact that lets it ring: the runner ends it as no-answer.
        with_contact(a, rule="silent", phone="79005550002")
        call(client, a, "callsDial", {"chatId": "79005550002@c.us"})
        assert state(client, a)["state"] == "out-call"
        wait_for(lambda: state(client, a)["reason"] == "no-answer", timeout=30, what="the ring timeout")
        wait_for(
            lambda: journal(a)[-1] == ("outgoing", "79005550002@c.us", "hungUp", None),
            timeout=30,
            what="the unanswered call in A's journal",
        )
    outgoing = client.get(f"/waInstance{a.id}/lastOutgoingCalls/{a.api_token}").json()
    assert [(c["chatId"], c["status"]) for c in outgoing] == [
        ("79005550002@c.us", "hungUp"),
        (CONTACT_WID, "pickUp"),
        (b.wid, "pickUp"),
    ]


