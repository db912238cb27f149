"""callsState: idle / inc-call / out-call / on-call, with info and reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from engines.emulator.models import EmuCall
from instances.models import Engine
from tests.factories import make_instance
from tests.journals.chat_helpers import assert_wire_guards
from tests.messaging.calls_helpers import call, pair, refused, state

pytestmark = pytest.mark.django_db


def test_a_fresh_instance_is_idle(api_client: APIClient) -> None:
    assert state(api_client, make_instance(authorized=True)) == {"state": "idle", "info": None, "reason": None}


def test_it_follows_a_call_through_every_state(api_client: APIClient) -> None:
    a, b = pair()
    call(api_client, a, "callsDial", {"chatId": b.wid})
    ringing = state(api_client, b)
    assert ringing["state"] == "inc-call"
    assert set(ringing["info"]) == {"id", "wid", "name"}
    assert ringing["reason"] is None
    call(api_client, b, "callsAccept")
    assert state(api_client, a)["state"] == "on-call"
    call(api_client, a, "callsHangUp")
    assert state(api_client, a) == {"state": "idle", "info": None, "reason": "hangup"}


def test_the_reason_fades(api_client: APIClient) -> None:
    a, b = pair(a_phone="79330000401", b_phone="79330000402")
    call(api_client, a, "callsDial", {"chatId": b.wid})
    call(api_client, b, "callsReject")
    EmuCall.objects.update(ended_at=EmuCall.objects.get().ended_at - timedelta(minutes=5))
    assert state(api_client, a) == {"state": "idle", "info": None, "reason": None}


def test_it_needs_an_authorized_instance(api_client: APIClient) -> None:
    refused(call(api_client, make_instance(), "callsState"), "instance is starting or not authorized")


def test_an_engine_without_calls(api_client: APIClient) -> None:
    other = make_instance(authorized=True)
    other.engine = Engine.CLOUD
    other.save(update_fields=["engine"])
    for method, body in (("callsState", None), ("callsDial", {"chatId": "79001112233@c.us"})):
        r = call(api_client, other, method, body)
        assert r.status_code == 400, r.content
        assert r.json()["message"].startswith(f"{method} is not supported by the cloud engine")


def test_wire_guards(api_client: APIClient) -> None:
    assert_wire_guards(api_client, make_instance(authorized=True), "callsState", "GET")
