"""Creation and reboot check the credentials with GET /{phoneNumberId} on the fake
Graph API: authorized with the number's wid, or notAuthorized with Meta's reason."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.cloud.models import CloudAccount
from instances import services
from instances.models import Account, Instance, InstanceStateChange
from tests.conftest import method_url, partner_url
from tests.engines.cloud.conftest import CREDENTIALS, PHONE_NUMBER_ID, TOKEN
from tests.engines.cloud.fakegraph import FakeGraph


def test_good_credentials_authorize_with_the_numbers_wid(cloud_instance: Instance, graph: FakeGraph) -> None:
    assert cloud_instance.wid == "15550100200@c.us"
    assert cloud_instance.profile_name == "Acme Support"
    assert ("GET", f"/{graph.version}/{PHONE_NUMBER_ID}") in graph.requests
    assert CloudAccount.objects.get(instance=cloud_instance).problem == ""


def test_a_refused_token_leaves_it_not_authorized_with_the_reason(graph: FakeGraph, account: Account) -> None:
    instance = services.create_instance(account=account, engine="cloud", engine_options={**CREDENTIALS, "accessToken": "wrong"})
    instance.refresh_from_db()
    assert instance.state == "notAuthorized"
    problem = CloudAccount.objects.get(instance=instance).problem
    assert "refused the access token" in problem and "190" in problem
    # The state history keeps the reason too (the admin shows it).
    latest = InstanceStateChange.objects.filter(instance=instance).latest("created_at", "id")
    assert latest.state == "notAuthorized" and latest.reason == problem


def test_an_unknown_phone_number_id_says_so(graph: FakeGraph, account: Account) -> None:
    instance = services.create_instance(account=account, engine="cloud", engine_options={**CREDENTIALS, "phoneNumberId": "999"})
    instance.refresh_from_db()
    assert instance.state == "notAuthorized"
    assert "does not know this phoneNumberId" in CloudAccount.objects.get(instance=instance).problem


def test_an_unreachable_graph_is_a_state_not_a_500(settings: Any, account: Account) -> None:
    settings.CLOUD_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens (discard port)
    instance = services.create_instance(account=account, engine="cloud", engine_options=CREDENTIALS)
    instance.refresh_from_db()
    assert instance.state == "notAuthorized"
    assert "could not be reached" in CloudAccount.objects.get(instance=instance).problem


def test_credentials_are_encrypted_at_rest(cloud_instance: Instance) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, app_secret, verify_token FROM cloud_cloudaccount WHERE instance_id = %s",
                       [cloud_instance.pk])
        stored = cursor.fetchone()
    assert TOKEN not in stored[0] and stored[0].startswith("gAAAA")
    assert all(value and value not in CREDENTIALS.values() for value in stored)
    assert CloudAccount.objects.get(instance=cloud_instance).access_token == TOKEN


def test_reboot_checks_again(cloud_instance: Instance, graph: FakeGraph, api_client: APIClient) -> None:
    graph.numbers[PHONE_NUMBER_ID].token = "rotated"  # the token was revoked in Meta's settings
    r = api_client.get(method_url(cloud_instance, "reboot"))
    assert r.status_code == 200 and r.json() == {"isReboot": True}
    cloud_instance.refresh_from_db()
    assert cloud_instance.state == "notAuthorized"
    states = list(InstanceStateChange.objects.filter(instance=cloud_instance).order_by("id").values_list("state", flat=True))
    assert states[-3:] == ["authorized", "starting", "notAuthorized"]
    graph.numbers[PHONE_NUMBER_ID].token = TOKEN
    assert api_client.get(method_url(cloud_instance, "reboot")).status_code == 200
    cloud_instance.refresh_from_db()
    assert cloud_instance.state == "authorized"


def test_partner_create_instance_takes_cloud_credentials(graph: FakeGraph, account: Account, api_client: APIClient) -> None:
    r = api_client.post(partner_url("createInstance", account.partner_token),
                        {"name": "support", "engine": "cloud", "cloud": CREDENTIALS}, format="json")
    assert r.status_code == 200, r.content
    instance = Instance.objects.get(pk=r.json()["idInstance"])
    assert instance.engine == "cloud" and instance.state == "authorized"
    state = api_client.get(method_url(instance, "getStateInstance"))
    assert state.json() == {"stateInstance": "authorized"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"engine": "cloud"}, "the cloud engine needs 'cloud'"),
        ({"engine": "cloud", "cloud": {**CREDENTIALS, "accessToken": ""}}, "'cloud.accessToken' is required"),
        ({"engine": "cloud", "cloud": {**CREDENTIALS, "phoneNumberId": "abc"}}, "'cloud.phoneNumberId' must be"),
        ({"engine": "cloud", "cloud": {**CREDENTIALS, "extra": "x"}}, "'cloud.extra' is not allowed"),
        ({"engine": "emulator", "cloud": CREDENTIALS}, "the emulator engine takes no engine options"),
    ],
)
def test_partner_create_instance_refuses_bad_credentials(
    graph: FakeGraph, account: Account, api_client: APIClient, body: dict[str, Any], message: str
) -> None:
    r = api_client.post(partner_url("createInstance", account.partner_token), body, format="json")
    assert r.status_code == 400
    assert message in r.content.decode()
    assert not Instance.objects.filter(account=account).exists()


def test_qr_explains_cloud_instances_are_linked_by_credentials(cloud_instance: Instance, api_client: APIClient) -> None:
    r = api_client.get(method_url(cloud_instance, "qr"))
    assert r.status_code == 400
    assert "cloud engine" in r.content.decode() and "credentials" in r.content.decode()
