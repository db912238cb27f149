"""The webhook delivery API: /api/v1/webhooks/{attempts,notifications,redeliver}."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from instances.models import Account, Instance
from journals import webhooks
from journals.models import Notification, WebhookAttempt, WebhookRedelivery
from tests.factories import AccountFactory, make_instance
from tests.journals.test_webhooks import Receiver, ingest, make_due, receipt_of, states

ATTEMPTS = "/api/v1/webhooks/attempts"
NOTIFICATIONS = "/api/v1/webhooks/notifications"
REDELIVER = "/api/v1/webhooks/redeliver"


@pytest.fixture(autouse=True)
def _loopback_allowed(settings: Any) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.WEBHOOK_RETRY_SCHEDULE = [5.0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def webhook_instance(account: Account, url: str) -> Instance:
    instance = make_instance(account, authorized=True)
    instance.settings.update({"incomingWebhook": True, "webhookUrl": url})
    instance.save(update_fields=["settings"])
    return instance


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def world(db: None, receiver: Receiver) -> dict[str, Any]:
    """Account 1 with instances a (3 delivered after 2 failures) and b (2 delivered);
    account 2 with instance c (1 delivered)."""
    one, two = AccountFactory(), AccountFactory()
    a = webhook_instance(one, receiver.url)
    b = webhook_instance(one, receiver.url)
    c = webhook_instance(two, receiver.url)
    a_notes = ingest(a, 3, "a")
    receiver.status = 500
    webhooks.deliver(a.id)
    make_due(a)
    webhooks.deliver(a.id)
    receiver.status = 200
    make_due(a)
    webhooks.deliver(a.id)
    ingest(b, 2, "b")
    webhooks.deliver(b.id)
    ingest(c, 1, "c")
    webhooks.deliver(c.id)
    return {"one": one, "two": two, "a": a, "b": b, "c": c, "a_notes": a_notes}


def get(url: str, token: str | None, **params: Any) -> Any:
    headers = bearer(token) if token is not None else {}
    return APIClient().get(url, params, **headers)


# --- Authorization ------------------------------------------------------------------------


def test_no_token_is_401(world: dict[str, Any]) -> None:
    r = get(ATTEMPTS, None, idInstance=world["a"].id)
    assert r.status_code == 401


@pytest.mark.parametrize("url", [ATTEMPTS, NOTIFICATIONS])
def test_tokens_only_open_their_own_instances(world: dict[str, Any], url: str) -> None:
    a, c = world["a"], world["c"]
    assert get(url, a.api_token, idInstance=a.id).status_code == 200
    assert get(url, a.api_token, idInstance=c.id).status_code == 403  # another tenant's instance
    assert get(url, c.api_token, idInstance=a.id).status_code == 403
    assert get(url, a.api_token).status_code == 403  # an instance token needs idInstance
    assert get(url, "wrong", idInstance=a.id).status_code == 403
    assert get(url, a.api_token, idInstance=999_999_999).status_code == 403  # same answer as not ours
    assert get(url, world["two"].partner_token, idInstance=a.id).status_code == 403
    assert get(url, world["one"].partner_token, idInstance=a.id).status_code == 200


def test_instance_token_sees_only_its_instance(world: dict[str, Any]) -> None:
    a = world["a"]
    attempts = get(ATTEMPTS, a.api_token, idInstance=a.id).json()["attempts"]
    assert {x["idInstance"] for x in attempts} == {a.id}
    assert len(attempts) == 5  # 2 failures + 3 deliveries


def test_partner_token_sees_its_account_not_others(world: dict[str, Any]) -> None:
    body = get(ATTEMPTS, world["one"].partner_token).json()
    assert {x["idInstance"] for x in body["attempts"]} == {world["a"].id, world["b"].id}
    body = get(NOTIFICATIONS, world["two"].partner_token).json()
    assert {x["idInstance"] for x in body["notifications"]} == {world["c"].id}


# --- Attempts -----------------------------------------------------------------------------


def test_attempt_fields_and_status_filters(world: dict[str, Any], receiver: Receiver) -> None:
    a = world["a"]
    token = a.api_token
    newest = get(ATTEMPTS, token, idInstance=a.id).json()["attempts"]
    assert [x["id"] for x in newest] == sorted((x["id"] for x in newest), reverse=True)
    first = newest[-1]
    head = world["a_notes"][0].receipt_id
    assert first == {
        "id": first["id"],
        "idInstance": a.id,
        "receiptId": head,
        "attempt": 1,
        "startedAt": first["startedAt"],
        "url": receiver.url,
        "ok": False,
        "statusCode": 500,
        "latencyMs": first["latencyMs"],
        "error": "HTTP 500",
        "responseExcerpt": '{"ok":true}',
    }
    failed = get(ATTEMPTS, token, idInstance=a.id, status="failed").json()["attempts"]
    assert [(x["receiptId"], x["attempt"]) for x in failed] == [(head, 2), (head, 1)]
    assert len(get(ATTEMPTS, token, idInstance=a.id, status="500").json()["attempts"]) == 2
    ok = get(ATTEMPTS, token, idInstance=a.id, status="ok").json()["attempts"]
    assert len(ok) == 3 and all(x["ok"] and x["statusCode"] == 200 for x in ok)
    assert get(ATTEMPTS, token, idInstance=a.id, status="error").json()["attempts"] == []
    assert get(ATTEMPTS, token, idInstance=a.id, status="bogus").status_code == 400


def test_attempt_range_time_filters_and_paging(world: dict[str, Any]) -> None:
    a = world["a"]
    token = a.api_token
    receipts = [n.receipt_id for n in world["a_notes"]]
    body = get(ATTEMPTS, token, idInstance=a.id, receiptIdFrom=receipts[1], receiptIdTo=receipts[2]).json()
    assert sorted(x["receiptId"] for x in body["attempts"]) == receipts[1:]
    WebhookAttempt.objects.filter(instance=a, receipt_id=receipts[0]).update(
        started_at=timezone.now() - timedelta(hours=2)
    )
    hour_ago = (timezone.now() - timedelta(hours=1)).isoformat()
    recent = get(ATTEMPTS, token, idInstance=a.id, since=hour_ago).json()["attempts"]
    assert {x["receiptId"] for x in recent} == set(receipts[1:])
    older = get(ATTEMPTS, token, idInstance=a.id, until=hour_ago).json()["attempts"]
    assert {x["receiptId"] for x in older} == {receipts[0]} and len(older) == 3
    page1 = get(ATTEMPTS, token, idInstance=a.id, limit=2).json()
    assert len(page1["attempts"]) == 2 and page1["nextBeforeId"] == page1["attempts"][-1]["id"]
    page2 = get(ATTEMPTS, token, idInstance=a.id, limit=2, beforeId=page1["nextBeforeId"]).json()
    page3 = get(ATTEMPTS, token, idInstance=a.id, limit=2, beforeId=page2["nextBeforeId"]).json()
    ids = [x["id"] for p in (page1, page2, page3) for x in p["attempts"]]
    assert len(ids) == 5 == len(set(ids)) and page3["nextBeforeId"] is None
    assert get(ATTEMPTS, token, idInstance=a.id, limit=501).status_code == 400


# --- Notifications ------------------------------------------------------------------------


def test_notifications_with_their_delivery_state(world: dict[str, Any], receiver: Receiver) -> None:
    a = world["a"]
    receiver.status = 503
    [pending] = ingest(a, 1, "late")
    webhooks.deliver(a.id)
    body = get(NOTIFICATIONS, a.api_token, idInstance=a.id).json()
    rows = body["notifications"]
    assert [x["receiptId"] for x in rows] == [n.receipt_id for n in world["a_notes"]] + [pending.receipt_id]
    assert [x["state"] for x in rows] == ["done", "done", "done", "queued"]
    assert rows[0]["attempts"] == 3 and rows[0]["lastAttempt"]["ok"] is True
    assert rows[0]["typeWebhook"] == "incomingMessageReceived"
    assert rows[-1]["attempts"] == 1 and rows[-1]["nextAttemptAt"] is not None
    assert rows[-1]["lastAttempt"]["statusCode"] == 503 and rows[-1]["lastAttempt"]["ok"] is False
    assert "body" not in rows[0]
    queued = get(NOTIFICATIONS, a.api_token, idInstance=a.id, state="queued").json()["notifications"]
    assert [x["receiptId"] for x in queued] == [pending.receipt_id]
    ranged = get(
        NOTIFICATIONS,
        a.api_token,
        idInstance=a.id,
        receiptIdFrom=rows[1]["receiptId"],
        receiptIdTo=rows[2]["receiptId"],
    ).json()["notifications"]
    assert [x["receiptId"] for x in ranged] == [rows[1]["receiptId"], rows[2]["receiptId"]]
    page = get(NOTIFICATIONS, a.api_token, idInstance=a.id, limit=3).json()
    assert page["nextAfterId"] == page["notifications"][-1]["id"]
    rest = get(NOTIFICATIONS, a.api_token, idInstance=a.id, afterId=page["nextAfterId"]).json()
    assert [x["receiptId"] for x in rest["notifications"]] == [pending.receipt_id]


# --- Redelivery ---------------------------------------------------------------------------


def post(token: str, body: dict[str, Any]) -> Any:
    return APIClient().post(REDELIVER, body, format="json", **bearer(token))


def test_redeliver_one(
    world: dict[str, Any], receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    a = world["a"]
    second = world["a_notes"][1]
    before = len(receiver.ok())
    with django_capture_on_commit_callbacks(execute=True):  # the wake-up runs (eager)
        r = post(a.api_token, {"idInstance": a.id, "receiptId": second.receipt_id})
    assert r.status_code == 200 and r.json() == {"redelivered": 1}
    again = receiver.ok()[before:]
    assert [receipt_of(x) for x in again] == [second.receipt_id]
    assert again[0].headers["X-Webhook-Id"] == f"{a.id}-{second.receipt_id}"
    assert again[0].json == Notification.objects.get(pk=second.pk).body
    last = WebhookAttempt.objects.filter(notification_id=second.pk).order_by("-id").first()
    assert last is not None and last.attempt == 1 and last.ok
    redelivery = WebhookRedelivery.objects.get(instance=a)
    assert (redelivery.receipt_from, redelivery.receipt_to, redelivery.requested_by, redelivery.count) == (
        second.receipt_id,
        second.receipt_id,
        "instance token",
        1,
    )


def test_redeliver_a_range_with_the_partner_token(world: dict[str, Any], receiver: Receiver) -> None:
    a = world["a"]
    receipts = [n.receipt_id for n in world["a_notes"]]
    before = len(receiver.ok())
    r = post(
        world["one"].partner_token,
        {"idInstance": a.id, "receiptIdFrom": receipts[0], "receiptIdTo": receipts[2]},
    )
    assert r.json() == {"redelivered": 3}
    assert states(a) == ["queued"] * 3
    assert webhooks.deliver(a.id) is None
    assert [receipt_of(x) for x in receiver.ok()[before:]] == receipts  # in order again
    # A range over notifications still queued leaves them alone.
    receiver.status = 500
    [late] = ingest(a, 1, "late")
    webhooks.deliver(a.id)
    r = post(
        a.api_token, {"idInstance": a.id, "receiptIdFrom": late.receipt_id, "receiptIdTo": late.receipt_id}
    )
    assert r.json() == {"redelivered": 0}
    assert Notification.objects.get(pk=late.pk).attempts == 1


def test_redeliver_refusals(world: dict[str, Any]) -> None:
    a, c = world["a"], world["c"]
    receipt = world["a_notes"][0].receipt_id
    assert post(c.api_token, {"idInstance": a.id, "receiptId": receipt}).status_code == 403
    assert post(world["two"].partner_token, {"idInstance": a.id, "receiptId": receipt}).status_code == 403
    assert (
        APIClient().post(REDELIVER, {"idInstance": a.id, "receiptId": receipt}, format="json").status_code
        == 401
    )
    for body in (
        {"idInstance": a.id},
        {"idInstance": a.id, "receiptId": receipt, "receiptIdFrom": 1, "receiptIdTo": 2},
        {"idInstance": a.id, "receiptIdFrom": 1},
        {"idInstance": a.id, "receiptIdFrom": 5, "receiptIdTo": 2},
        {"idInstance": a.id, "receiptId": "x"},
        {"idInstance": a.id, "receiptId": receipt, "extra": 1},
    ):
        assert post(a.api_token, body).status_code == 400, body
    a.settings["webhookUrl"] = ""
    a.save(update_fields=["settings"])
    r = post(a.api_token, {"idInstance": a.id, "receiptId": receipt})
    assert r.status_code == 400 and "webhookUrl" in r.json()["message"]
    assert states(a) == ["done"] * 3


def test_in_the_openapi_schema(db: None) -> None:
    schema = Client().get("/api/schema/?format=json").json()
    for path, verb in ((ATTEMPTS, "get"), (NOTIFICATIONS, "get"), (REDELIVER, "post")):
        assert verb in schema["paths"][path], path
    params = {p["name"] for p in schema["paths"][ATTEMPTS]["get"]["parameters"]}
    assert {
        "idInstance",
        "receiptIdFrom",
        "receiptIdTo",
        "status",
        "since",
        "until",
        "limit",
        "beforeId",
    } <= params
