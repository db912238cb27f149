"""Partner API (getInstances, createInstance, deleteInstanceAccount)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from instances.models import Account, Instance, State
from tests.conftest import method_url, partner_url
from tests.factories import AccountFactory, make_instance

UNAUTHORIZED = {"code": 401, "description": "Unauthorized"}
BAD_TOKEN = "gac." + "0" * 46


def create(api_client: APIClient, account: Account, body: Any = None) -> Any:
    return api_client.post(partner_url("createInstance", account.partner_token), body or {}, format="json")


def assert_validation_failed(r: Any, detail: str) -> None:
    assert r.status_code == 400
    body = r.json()
    assert body["statusCode"] == 400
    assert body["message"] == f"Validation failed. Details: {detail}"
    assert body["path"] == r.wsgi_request.path
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])


# --- createInstance -------------------------------------------------------------------


def test_create_instance_returns_credentials(api_client: APIClient, account: Account) -> None:
    r = create(api_client, account, {"name": "shop bot"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"idInstance", "apiTokenInstance", "typeInstance"}
    assert isinstance(body["idInstance"], int) and len(str(body["idInstance"])) == 10
    assert re.fullmatch(r"[0-9a-f]{50}", body["apiTokenInstance"])
    assert body["typeInstance"] == "whatsapp"
    instance = Instance.objects.get(pk=body["idInstance"])
    assert instance.account_id == account.id
    assert instance.name == "shop bot"
    assert instance.api_token == body["apiTokenInstance"]


def test_created_instance_answers_its_wire_api(api_client: APIClient, account: Account) -> None:
    body = create(api_client, account).json()
    instance = Instance.objects.get(pk=body["idInstance"])
    r = api_client.get(method_url(instance, "getStateInstance"))
    assert r.status_code == 200
    assert r.json() == {"stateInstance": "notAuthorized"}
    assert instance.name == f"Instance {instance.id}"
    assert instance.engine == "emulator"


def test_settings_given_at_creation_show_in_get_settings(api_client: APIClient, account: Account) -> None:
    r = create(
        api_client,
        account,
        {
            "webhookUrl": "https://example.com/hook",
            "webhookUrlToken": "secret",
            "delaySendMessagesMilliseconds": 1500,
            "incomingWebhook": "yes",
            "stateWebhook": "yes",
            "outgoingWebhook": "no",
            "autoTyping": 2,
        },
    )
    assert r.status_code == 200
    instance = Instance.objects.get(pk=r.json()["idInstance"])
    settings = api_client.get(method_url(instance, "getSettings")).json()
    assert settings["webhookUrl"] == "https://example.com/hook"
    assert settings["webhookUrlToken"] == "secret"
    assert settings["delaySendMessagesMilliseconds"] == 1500
    assert settings["incomingWebhook"] == "yes"
    assert settings["stateWebhook"] == "yes"
    assert settings["outgoingWebhook"] == "no"
    assert settings["pollMessageWebhook"] == "no"  # untouched flags keep the default
    assert settings["autoTyping"] == 2
    assert instance.settings["incomingWebhook"] is True  # stored as a boolean


def test_create_instance_accepts_engine_extension(api_client: APIClient, account: Account) -> None:
    r = create(api_client, account, {"engine": "emulator"})
    assert r.status_code == 200
    assert Instance.objects.get(pk=r.json()["idInstance"]).engine == "emulator"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"name": 5}, "'name' must be a string"),
        ({"nickname": "x"}, "'nickname' is not allowed"),
        ({"delaySendMessagesMilliseconds": 100}, "'delaySendMessagesMilliseconds' must be larger than or equal to 500"),
        ({"delaySendMessagesMilliseconds": "soon"}, "'delaySendMessagesMilliseconds' must be a number"),
        ({"incomingWebhook": True}, "'incomingWebhook' must be one of [yes, no]"),
        ({"incomingWebhook": "maybe"}, "'incomingWebhook' must be one of [yes, no]"),
        ({"webhookUrl": "not a url"}, "'webhookUrl' must be a valid uri"),
        ({"engine": "telegram"}, "'engine' must be one of [emulator, waweb, cloud]"),
        ({"typeAccount": "x"}, "'typeAccount' is not allowed"),
        ([1, 2], "'value' must be of type object"),
    ],
)
def test_create_instance_rejects_invalid_input(api_client: APIClient, account: Account, body: Any, detail: str) -> None:
    r = api_client.post(partner_url("createInstance", account.partner_token), body, format="json")
    assert_validation_failed(r, detail)
    assert not Instance.objects.filter(account=account).exists()


def test_create_instance_rejects_malformed_json(api_client: APIClient, account: Account) -> None:
    r = api_client.generic(
        "POST", partner_url("createInstance", account.partner_token), b'{"name": }', content_type="application/json"
    )
    assert r.status_code == 400
    assert r.json()["message"] == "Unexpected token } in JSON at position 9"


def test_create_instance_rejects_bad_partner_token(api_client: APIClient, account: Account) -> None:
    r = api_client.post(partner_url("createInstance", BAD_TOKEN), {}, format="json")
    assert r.status_code == 401
    assert r.json() == UNAUTHORIZED
    assert not Instance.objects.exists()


def test_create_instance_with_get_is_404(api_client: APIClient, account: Account) -> None:
    r = api_client.get(partner_url("createInstance", account.partner_token))
    assert r.status_code == 404
    assert not Instance.objects.exists()


def test_partner_method_is_case_insensitive(api_client: APIClient, account: Account) -> None:
    r = api_client.post(partner_url("CreateInstance", account.partner_token), {}, format="json")
    assert r.status_code == 200
    assert api_client.get(partner_url("getinstances", account.partner_token)).status_code == 200


def test_partner_options_is_204(api_client: APIClient, account: Account) -> None:
    r = api_client.options(partner_url("createInstance", account.partner_token))
    assert r.status_code == 204
    assert r["Access-Control-Allow-Origin"] == "*"


# --- getInstances ---------------------------------------------------------------------


def test_get_instances_lists_the_accounts_instances(api_client: APIClient, account: Account) -> None:
    first = make_instance(account, name="one")
    second = make_instance(account, authorized=True, name="two")
    r = api_client.get(partner_url("getInstances", account.partner_token))
    assert r.status_code == 200
    rows = r.json()
    assert [row["idInstance"] for row in rows] == [first.id, second.id]
    row = rows[1]
    assert row["name"] == "two"
    assert row["typeInstance"] == "whatsapp"
    assert row["apiTokenInstance"] == second.api_token
    assert row["deleted"] is False
    assert row["timeDeleted"] == "0001-01-01T00:00:00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row["timeCreated"])
    assert row["stateInstance"] == "authorized"
    assert row["engine"] == "emulator"
    for key in ("typeAccount", "partnerUserUiid", "tariff", "isFree", "isPartner", "expirationDate", "isExpired"):
        assert key in row


def test_get_instances_is_empty_for_a_new_account(api_client: APIClient, account: Account) -> None:
    r = api_client.get(partner_url("getInstances", account.partner_token))
    assert r.status_code == 200
    assert r.json() == []


def test_get_instances_query_count_does_not_grow(api_client: APIClient, account: Account) -> None:
    make_instance(account)
    url = partner_url("getInstances", account.partner_token)
    with CaptureQueriesContext(connection) as few:
        api_client.get(url)
    for _ in range(4):
        make_instance(account)
    with CaptureQueriesContext(connection) as many:
        assert len(api_client.get(url).json()) == 5
    assert len(many.captured_queries) == len(few.captured_queries)


def test_get_instances_rejects_bad_partner_token(api_client: APIClient, account: Account) -> None:
    make_instance(account)
    r = api_client.get(partner_url("getInstances", BAD_TOKEN))
    assert r.status_code == 401
    assert r.json() == UNAUTHORIZED


def test_instance_token_is_not_a_partner_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(partner_url("getInstances", instance.api_token))
    assert r.status_code == 401


def test_get_instances_with_post_is_404(api_client: APIClient, account: Account) -> None:
    r = api_client.post(partner_url("getInstances", account.partner_token), {}, format="json")
    assert r.status_code == 404


# --- deleteInstanceAccount ------------------------------------------------------------


def delete(api_client: APIClient, account: Account, id_instance: Any) -> Any:
    return api_client.post(
        partner_url("deleteInstanceAccount", account.partner_token), {"idInstance": id_instance}, format="json"
    )


def test_delete_instance_account_soft_deletes(api_client: APIClient, authorized_instance: Instance) -> None:
    account = authorized_instance.account
    r = delete(api_client, account, authorized_instance.id)
    assert r.status_code == 200
    assert r.json() == {"deleteInstanceAccount": True}
    authorized_instance.refresh_from_db()
    assert authorized_instance.is_deleted is True
    assert authorized_instance.deleted_at is not None
    assert authorized_instance.state == State.NOT_AUTHORIZED
    assert authorized_instance.lease.runner_id == ""


def test_deleted_instance_answers_403(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(method_url(instance, "getStateInstance")).status_code == 200
    delete(api_client, instance.account, instance.id)
    r = api_client.get(method_url(instance, "getStateInstance"))
    assert r.status_code == 403
    assert r.content == b"Forbidden"


def test_get_instances_shows_deleted_instances(api_client: APIClient, instance: Instance) -> None:
    delete(api_client, instance.account, instance.id)
    rows = api_client.get(partner_url("getInstances", instance.account.partner_token)).json()
    assert len(rows) == 1
    assert rows[0]["idInstance"] == instance.id
    assert rows[0]["deleted"] is True
    assert rows[0]["timeDeleted"] != "0001-01-01T00:00:00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", rows[0]["timeDeleted"])


def test_deleting_twice_answers_false(api_client: APIClient, instance: Instance) -> None:
    assert delete(api_client, instance.account, instance.id).json() == {"deleteInstanceAccount": True}
    instance.refresh_from_db()
    deleted_at = instance.deleted_at
    assert delete(api_client, instance.account, instance.id).json() == {"deleteInstanceAccount": False}
    instance.refresh_from_db()
    assert instance.deleted_at == deleted_at


def test_deleting_an_unknown_id_answers_false(api_client: APIClient, account: Account) -> None:
    r = delete(api_client, account, 1234567890)
    assert r.status_code == 200
    assert r.json() == {"deleteInstanceAccount": False}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'idInstance' is required"),
        ({"idInstance": "abc"}, "'idInstance' must be a number"),
        ({"idInstance": True}, "'idInstance' must be a number"),
        ({"idInstance": 0}, "'idInstance' must be larger than or equal to 1"),
        ({"idInstance": 1, "force": True}, "'force' is not allowed"),
    ],
)
def test_delete_instance_account_rejects_invalid_input(
    api_client: APIClient, instance: Instance, body: dict[str, Any], detail: str
) -> None:
    r = api_client.post(partner_url("deleteInstanceAccount", instance.account.partner_token), body, format="json")
    assert_validation_failed(r, detail)
    instance.refresh_from_db()
    assert instance.is_deleted is False


def test_delete_instance_account_rejects_bad_partner_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.post(partner_url("deleteInstanceAccount", BAD_TOKEN), {"idInstance": instance.id}, format="json")
    assert r.status_code == 401
    assert r.json() == UNAUTHORIZED
    instance.refresh_from_db()
    assert instance.is_deleted is False


def test_delete_instance_account_with_get_is_404(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(partner_url("deleteInstanceAccount", instance.account.partner_token))
    assert r.status_code == 404


# --- tenant isolation -----------------------------------------------------------------


def test_account_cannot_delete_another_accounts_instance(api_client: APIClient, instance: Instance) -> None:
    other = AccountFactory()
    r = delete(api_client, other, instance.id)
    assert r.status_code == 200
    assert r.json() == {"deleteInstanceAccount": False}
    instance.refresh_from_db()
    assert instance.is_deleted is False
    assert instance.deleted_at is None
    assert api_client.get(method_url(instance, "getStateInstance")).status_code == 200


def test_account_lists_only_its_own_instances(api_client: APIClient, account: Account) -> None:
    mine = make_instance(account)
    other = AccountFactory()
    theirs = make_instance(other)
    mine_ids = [row["idInstance"] for row in api_client.get(partner_url("getInstances", account.partner_token)).json()]
    their_rows = api_client.get(partner_url("getInstances", other.partner_token)).json()
    assert mine_ids == [mine.id]
    assert [row["idInstance"] for row in their_rows] == [theirs.id]
    assert mine.api_token not in str(their_rows)


def test_created_instance_belongs_to_the_calling_account(api_client: APIClient, account: Account) -> None:
    other = AccountFactory()
    new_id = create(api_client, other).json()["idInstance"]
    assert api_client.get(partner_url("getInstances", account.partner_token)).json() == []
    assert delete(api_client, account, new_id).json() == {"deleteInstanceAccount": False}
    assert delete(api_client, other, new_id).json() == {"deleteInstanceAccount": True}
