"""callsGetIceServers: the STUN/TURN servers the operator configured."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from config.settings import _ice_servers
from tests.factories import make_instance
from tests.journals.chat_helpers import assert_wire_guards
from tests.messaging.calls_helpers import call, refused

pytestmark = pytest.mark.django_db


def test_none_by_default(api_client: APIClient) -> None:
    r = call(api_client, make_instance(authorized=True), "callsGetIceServers")
    assert r.status_code == 200
    assert r.json() == []


def test_the_configured_servers(api_client: APIClient, settings: Any) -> None:
    settings.CALLS_ICE_SERVERS = _ice_servers(
        '[{"urls": "stun:stun.example:3478"}, {"urls": ["turn:turn.example:3478"], "username": "u", "credential": "p"}]'
    )
    r = call(api_client, make_instance(authorized=True), "callsGetIceServers")
    assert r.json() == [
        {"urls": ["stun:stun.example:3478"], "username": None, "credential": None},
        {"urls": ["turn:turn.example:3478"], "username": "u", "credential": "p"},
    ]


@pytest.mark.parametrize("raw", ["{", "{}", '[{"urls": []}]', '[{"username": "x"}]', "[1]"])
def test_a_bad_setting_fails_loudly(raw: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        _ice_servers(raw)


def test_it_needs_an_authorized_instance(api_client: APIClient) -> None:
    refused(call(api_client, make_instance(), "callsGetIceServers"), "instance is starting or not authorized")


def test_wire_guards(api_client: APIClient) -> None:
    assert_wire_guards(api_client, make_instance(authorized=True), "callsGetIceServers", "GET")
