"""Throttles keyed on the client: failed instance/partner authentications get 429
past AUTH_FAILURE_LIMIT (GREEN-API's 401/403 below it), /admin/login/ shares the
cabinet's lockout, and behind a trusted proxy the key is the forwarded client, so
one attacker cannot lock everyone out."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from django.test import Client
from rest_framework.test import APIClient

from dashboard import throttle
from instances import authfail
from instances.clients import client_address
from instances.models import Instance
from tests.conftest import LiveServer, method_url, partner_url
from tests.dashboard.conftest import PASSWORD
from tests.factories import UserFactory, make_instance

pytestmark = pytest.mark.django_db


ADDRESSES = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "6.6.6.6", "7.7.7.7", "127.0.0.1"]


def forget_failures() -> None:
    # Counters may live in a Redis other test workers share: delete only ours.
    for address in ADDRESSES:
        authfail.reset({"REMOTE_ADDR": address})


@pytest.fixture
def limit(settings: Any) -> Any:
    settings.AUTH_FAILURE_LIMIT = 3
    settings.AUTH_FAILURE_WINDOW_SECONDS = 3600
    forget_failures()
    yield 3
    forget_failures()


def test_wrong_tokens_get_401_then_429(api_client: APIClient, instance: Instance, limit: int) -> None:
    url = method_url(instance, "getSettings", token="0" * 50)
    codes = [api_client.get(url, REMOTE_ADDR="10.0.0.1").status_code for _ in range(limit + 2)]
    assert codes == [401] * limit + [429, 429]
    # GREEN-API's answers stay for other clients, and the right token still works.
    assert api_client.get(url, REMOTE_ADDR="10.0.0.2").status_code == 401
    assert api_client.get(method_url(instance, "getSettings"), REMOTE_ADDR="10.0.0.1").status_code == 200


def test_unknown_instances_count_too(api_client: APIClient, limit: int) -> None:
    codes = [
        api_client.get(f"/waInstance{n}/getSettings/{'0' * 50}", REMOTE_ADDR="10.0.0.3").status_code
        for n in range(1, limit + 3)
    ]
    assert codes == [403] * limit + [429, 429]


def test_wrong_partner_tokens_are_throttled(api_client: APIClient, limit: int) -> None:
    codes = [
        api_client.get(partner_url("getInstances", f"gac.{n}"), REMOTE_ADDR="10.0.0.4").status_code
        for n in range(limit + 1)
    ]
    assert codes[-1] == 429
    assert set(codes[:-1]) <= {401, 403}


def test_the_limit_can_be_turned_off(api_client: APIClient, instance: Instance, settings: Any) -> None:
    settings.AUTH_FAILURE_LIMIT = 0
    url = method_url(instance, "getSettings", token="0" * 50)
    assert {api_client.get(url, REMOTE_ADDR="10.0.0.5").status_code for _ in range(10)} == {401}


@pytest.mark.django_db(transaction=True)
def test_the_fast_lane_throttles_failures_too(live_asgi: LiveServer, settings: Any) -> None:
    settings.AUTH_FAILURE_LIMIT = 3
    settings.AUTH_FAILURE_WINDOW_SECONDS = 3600
    forget_failures()
    instance = make_instance(authorized=True)
    url = f"{live_asgi.url}{method_url(instance, 'sendMessage', token='f' * 50)}"
    body = {"chatId": "79001234567@c.us", "message": "x"}
    codes = [httpx.post(url, json=body, timeout=30).status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    good = httpx.post(f"{live_asgi.url}{method_url(instance, 'sendMessage')}", json=body, timeout=30)
    assert good.status_code == 200
    forget_failures()


# --- Client address behind a proxy --------------------------------------------------


def test_forwarded_for_is_ignored_without_trusted_proxies(settings: Any) -> None:
    settings.TRUSTED_PROXIES = []
    assert client_address({"REMOTE_ADDR": "10.1.1.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6"}) == "10.1.1.1"


def test_a_trusted_proxy_forwards_the_client_it_saw(settings: Any) -> None:
    settings.TRUSTED_PROXIES = ["10.1.0.0/16"]
    meta = {"REMOTE_ADDR": "10.1.1.1", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 2.2.2.2, 10.1.2.2"}
    # 1.1.1.1 was written by the client itself; 2.2.2.2 is what our proxies saw.
    assert client_address(meta) == "2.2.2.2"
    # A direct client cannot forge the header.
    assert client_address({"REMOTE_ADDR": "3.3.3.3", "HTTP_X_FORWARDED_FOR": "2.2.2.2"}) == "3.3.3.3"


def test_behind_a_proxy_one_attacker_does_not_lock_out_everyone(
    api_client: APIClient, instance: Instance, limit: int, settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    url = method_url(instance, "getSettings", token="0" * 50)
    for _ in range(limit + 1):
        api_client.get(url, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert api_client.get(url, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6").status_code == 429
    assert api_client.get(url, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="7.7.7.7").status_code == 401


# --- /admin/login/ shares the cabinet's lockout -------------------------------------


def test_admin_login_is_locked_after_repeated_failures(db: None, settings: Any) -> None:
    settings.LOGIN_MAX_FAILURES = 3
    user = UserFactory(username=f"op-{uuid.uuid4().hex[:8]}", is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR="10.2.0.1")
    throttle.clear(user.username, "10.2.0.1")
    for _ in range(3):
        client.post("/admin/login/", {"username": user.username, "password": "wrong"})
    response = client.post("/admin/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    # The lockout is the cabinet's too: one counter for both doors.
    cabinet = client.post("/dashboard/login/", {"username": user.username, "password": PASSWORD})
    assert "Too many failed attempts" in cabinet.content.decode()
    other = Client(REMOTE_ADDR="10.2.0.2")
    assert other.post("/admin/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    throttle.clear(user.username, "10.2.0.1")


def test_admin_login_behind_a_trusted_proxy_keys_on_the_client(db: None, settings: Any) -> None:
    settings.LOGIN_MAX_FAILURES = 2
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    user = UserFactory(username=f"op-{uuid.uuid4().hex[:8]}", is_staff=True)
    attacker = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6")
    for _ in range(3):
        attacker.post("/admin/login/", {"username": user.username, "password": "wrong"})
    operator = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="7.7.7.7")
    assert operator.post("/admin/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    throttle.clear(user.username, "6.6.6.6")
