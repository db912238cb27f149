"""The webhook delivery log: filters, pages, and redelivery through the same
service as POST /api/v1/webhooks/redeliver."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from instances import services
from instances.models import Instance
from journals.models import Notification, NotificationState, WebhookAttempt, WebhookRedelivery

HOOK = "https://hooks.example/relay"


def notification(instance: Instance, receipt_id: int, state: str = NotificationState.DONE) -> Notification:
    return Notification.objects.create(
        instance=instance, receipt_id=receipt_id, type_webhook="stateInstanceChanged", body={}, state=state, attempts=1
    )


def attempt(note: Notification, ok: bool = True, **fields: object) -> WebhookAttempt:
    return WebhookAttempt.objects.create(
        notification=note, instance_id=note.instance_id, receipt_id=note.receipt_id, attempt=1, url=HOOK, ok=ok,
        status_code=200 if ok else 500, latency_ms=12, **fields,
    )


def with_webhook(instance: Instance) -> Instance:
    services.update_settings(instance, {"webhookUrl": HOOK})
    return instance


def test_filters_and_redeliver_buttons(owner_client: Client, instance: Instance) -> None:
    with_webhook(instance)
    attempt(notification(instance, 1), ok=True)
    attempt(notification(instance, 2, NotificationState.EXPIRED), ok=False, error="connection refused")
    attempt(notification(instance, 3, NotificationState.QUEUED), ok=False)
    url = reverse("dashboard:webhooks", args=[instance.id])
    body = owner_client.get(url).content.decode()
    assert body.count('data-attempt="') == 3
    assert 'aria-label="Redeliver receiptId 1"' in body and 'aria-label="Redeliver receiptId 2"' in body
    assert 'aria-label="Redeliver receiptId 3"' not in body  # still queued: retried on its own
    assert "given up" in body and "connection refused" in body
    assert owner_client.get(url + "?status=ok").content.decode().count('data-attempt="') == 1
    failed = owner_client.get(url + "?status=failed").content.decode()
    assert failed.count('data-attempt="') == 2 and 'data-receipt-id="1"' not in failed
    partial = owner_client.get(url + "?partial=rows", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and partial.count('data-attempt="') == 3


def test_pages_of_fifty(owner_client: Client, instance: Instance) -> None:
    with_webhook(instance)
    note = notification(instance, 1)
    for _ in range(55):
        attempt(note)
    url = reverse("dashboard:webhooks", args=[instance.id])
    body = owner_client.get(url).content.decode()
    assert body.count('data-attempt="') == 50 and "Older →" in body
    oldest_shown = min(WebhookAttempt.objects.order_by("-pk").values_list("pk", flat=True)[:50])
    older = owner_client.get(url + f"?before={oldest_shown}").content.decode()
    assert older.count('data-attempt="') == 5 and "← Newest" in older and "Older →" not in older


def test_redeliver_one(owner_client: Client, instance: Instance) -> None:
    with_webhook(instance)
    note = notification(instance, 7)
    attempt(note)
    url = reverse("dashboard:webhook_redeliver", args=[instance.id])
    response = owner_client.post(url, {"range-receipt_from": "7", "range-receipt_to": "7", "status": "ok"}, follow=True)
    assert response.redirect_chain[-1][0].endswith("/webhooks/?status=ok")
    assert "1 notification (receiptId 7) queued again" in response.content.decode()
    note.refresh_from_db()
    assert note.state == NotificationState.QUEUED and note.attempts == 0
    redelivery = WebhookRedelivery.objects.get(instance=instance)
    assert (redelivery.receipt_from, redelivery.receipt_to, redelivery.requested_by) == (7, 7, "dashboard")


def test_redeliver_a_range_leaves_queued_ones_alone(owner_client: Client, instance: Instance) -> None:
    with_webhook(instance)
    for receipt_id, state in ((1, "done"), (2, "expired"), (3, "queued"), (4, "done")):
        notification(instance, receipt_id, state)
    url = reverse("dashboard:webhook_redeliver", args=[instance.id])
    body = owner_client.post(url, {"range-receipt_from": "1", "range-receipt_to": "3"}, follow=True).content.decode()
    assert "2 notifications (receiptIds 1–3) queued again" in body
    states = dict(Notification.objects.filter(instance=instance).values_list("receipt_id", "state"))
    assert states == {1: "queued", 2: "queued", 3: "queued", 4: "done"}
    body = owner_client.post(url, {"range-receipt_from": "3"}, follow=True).content.decode()
    assert "Nothing to redeliver for receiptId 3" in body


def test_redeliver_explains_what_is_wrong(owner_client: Client, instance: Instance) -> None:
    notification(instance, 1)
    url = reverse("dashboard:webhook_redeliver", args=[instance.id])
    body = owner_client.post(url, {"range-receipt_from": "1"}, follow=True).content.decode()
    assert "Cannot redeliver: the instance has no webhookUrl. Set a webhook URL in Settings first." in body
    with_webhook(instance)
    response = owner_client.post(url, {"range-receipt_from": "5", "range-receipt_to": "2"})
    assert response.status_code == 422
    assert "must not be lower than" in response.content.decode()
    response = owner_client.post(url, {"range-receipt_from": "abc"})
    assert response.status_code == 422 and "Enter a whole number" in response.content.decode()
    assert Notification.objects.get(instance=instance).state == NotificationState.DONE


def test_someone_elses_log_and_redelivery_are_404(owner_client: Client, stranger_instance: Instance) -> None:
    with_webhook(stranger_instance)
    notification(stranger_instance, 1)
    assert owner_client.get(reverse("dashboard:webhooks", args=[stranger_instance.id])).status_code == 404
    url = reverse("dashboard:webhook_redeliver", args=[stranger_instance.id])
    assert owner_client.post(url, {"range-receipt_from": "1"}).status_code == 404
    assert Notification.objects.get(instance=stranger_instance).state == NotificationState.DONE


def test_redeliver_needs_post_and_csrf(instance: Instance) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(instance.account.user)
    url = reverse("dashboard:webhook_redeliver", args=[instance.id])
    assert client.get(url).status_code == 405
    assert client.post(url, {"range-receipt_from": "1"}).status_code == 403
