"""Operator console: changelists load, instance actions do what they say."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from engines.emulator.models import EmuPhone
from engines.emulator.services import add_simulated_contact
from instances.models import Instance, LeaseGrant, SessionLease, State
from instances.runner import Runner
from tests.conftest import method_url
from tests.factories import AccountFactory, UserFactory, make_instance

CHANGELISTS = ["account", "instance", "sessionlease", "leasegrant", "emuphone"]
# The emulated network's phones are the emulator engine's (app label "emulator").
APP = {"emuphone": "emulator"}


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def run_action(admin_client: Client, action: str, *instances: Instance) -> Any:
    return admin_client.post(
        "/admin/instances/instance/",
        {"action": action, "_selected_action": [str(i.id) for i in instances]},
        follow=True,
    )


@pytest.fixture
def leased_instance(authorized_instance: Instance) -> Instance:
    """An authorized instance whose lease a runner holds (fills the lease tables)."""
    Runner(runner_id="runner-a").acquire()
    add_simulated_contact(owner_phone=authorized_instance.phone, phone="79005550000", name="Bob")
    return authorized_instance


@pytest.mark.parametrize("model", CHANGELISTS)
def test_superuser_sees_changelist(admin_client: Client, leased_instance: Instance, model: str) -> None:
    r = admin_client.get(f"/admin/{APP.get(model, 'instances')}/{model}/")
    assert r.status_code == 200
    assert b"0 results" not in r.content  # every table has a row here


def test_changelist_shows_lease_owner(admin_client: Client, leased_instance: Instance) -> None:
    r = admin_client.get("/admin/instances/instance/")
    assert b"runner-a" in r.content
    r = admin_client.get("/admin/instances/leasegrant/")
    assert b"runner-a" in r.content


@pytest.mark.parametrize("model", CHANGELISTS)
def test_change_page_loads(admin_client: Client, leased_instance: Instance, model: str) -> None:
    pk = {
        "account": leased_instance.account_id,
        "instance": leased_instance.id,
        "sessionlease": leased_instance.id,
        "leasegrant": LeaseGrant.objects.get(instance=leased_instance).pk,
        "emuphone": EmuPhone.objects.get(phone=leased_instance.phone).pk,
    }[model]
    r = admin_client.get(f"/admin/{APP.get(model, 'instances')}/{model}/{pk}/change/")
    assert r.status_code == 200


@pytest.mark.parametrize("model", CHANGELISTS)
def test_anonymous_is_sent_to_login(db: None, model: str) -> None:
    r = Client().get(f"/admin/{APP.get(model, 'instances')}/{model}/")
    assert r.status_code == 302
    assert "/admin/login/" in r["Location"]


def test_non_staff_user_is_refused(db: None) -> None:
    client = Client()
    client.force_login(UserFactory())
    assert client.get("/admin/instances/instance/").status_code == 302


def test_lease_audit_is_read_only(admin_client: Client, leased_instance: Instance) -> None:
    lease = SessionLease.objects.get(instance=leased_instance)
    grant = LeaseGrant.objects.get(instance=leased_instance)
    assert admin_client.get("/admin/instances/sessionlease/add/").status_code == 403
    assert admin_client.post(f"/admin/instances/sessionlease/{lease.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.post(f"/admin/instances/leasegrant/{grant.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SessionLease.objects.filter(pk=lease.pk).exists()
    assert LeaseGrant.objects.filter(pk=grant.pk).exists()


def test_instance_changelist_query_count_does_not_grow(admin_client: Client, leased_instance: Instance) -> None:
    with CaptureQueriesContext(connection) as few:
        admin_client.get("/admin/instances/instance/")
    for _ in range(5):
        make_instance(leased_instance.account)
    Runner(runner_id="runner-b").acquire()
    with CaptureQueriesContext(connection) as many:
        admin_client.get("/admin/instances/instance/")
    assert len(many.captured_queries) == len(few.captured_queries)


@pytest.mark.parametrize("model", ["account", "sessionlease", "leasegrant"])
def test_other_changelists_query_count_does_not_grow(admin_client: Client, leased_instance: Instance, model: str) -> None:
    with CaptureQueriesContext(connection) as few:
        admin_client.get(f"/admin/instances/{model}/")
    for _ in range(3):
        make_instance(AccountFactory())
    Runner(runner_id="runner-b").acquire()
    with CaptureQueriesContext(connection) as many:
        admin_client.get(f"/admin/instances/{model}/")
    assert len(many.captured_queries) == len(few.captured_queries)


# --- actions --------------------------------------------------------------------------


def test_reboot_action_puts_instance_in_starting(admin_client: Client, authorized_instance: Instance) -> None:
    r = run_action(admin_client, "reboot", authorized_instance)
    assert r.status_code == 200
    assert b"Rebooting 1 instance" in r.content
    authorized_instance.refresh_from_db()
    assert authorized_instance.state == State.STARTING
    assert authorized_instance.wid  # still linked: the runner brings it back to authorized


def test_logout_action_unlinks(admin_client: Client, authorized_instance: Instance) -> None:
    run_action(admin_client, "logout", authorized_instance)
    authorized_instance.refresh_from_db()
    assert authorized_instance.state == State.NOT_AUTHORIZED
    assert authorized_instance.wid == ""
    assert authorized_instance.phone == ""


def test_rotate_token_action_kills_old_token(admin_client: Client, instance: Instance) -> None:
    api = APIClient()
    old = instance.api_token
    assert api.get(method_url(instance, "getStateInstance")).status_code == 200
    r = run_action(admin_client, "rotate_token", instance)
    assert b"New tokens for 1 instance" in r.content
    instance.refresh_from_db()
    assert instance.api_token != old
    r = api.get(method_url(instance, "getStateInstance", token=old))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    assert api.get(method_url(instance, "getStateInstance")).status_code == 200


def test_suspend_and_unsuspend_actions(admin_client: Client, instance: Instance) -> None:
    api = APIClient()
    run_action(admin_client, "suspend", instance)
    instance.refresh_from_db()
    assert instance.is_suspended is True
    assert api.get(method_url(instance, "getStateInstance")).status_code == 403
    run_action(admin_client, "unsuspend", instance)
    instance.refresh_from_db()
    assert instance.is_suspended is False
    assert api.get(method_url(instance, "getStateInstance")).status_code == 200


def test_action_touches_only_selected_instances(admin_client: Client, account: Any) -> None:
    chosen = make_instance(account)
    left = make_instance(account)
    run_action(admin_client, "suspend", chosen)
    chosen.refresh_from_db()
    left.refresh_from_db()
    assert chosen.is_suspended is True
    assert left.is_suspended is False


def test_reboot_action_reports_engine_errors(admin_client: Client, account: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "neonize", None)  # this server without neonize: waweb is not installed
    instance = make_instance(account, engine="waweb")
    r = run_action(admin_client, "reboot", instance)
    assert r.status_code == 200
    assert b"not supported" in r.content
    instance.refresh_from_db()
    assert instance.state == State.NOT_AUTHORIZED
