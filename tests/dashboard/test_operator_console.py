"""Operator console (/admin/): the overview, an instance's diagnosis and links, settings
as a form, masked secrets and the queue/webhook actions."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from engines.events import MessageEvent
from instances.models import Account, Instance
from instances.runner import Runner
from journals.models import Notification, NotificationState, WebhookAttempt, WebhookRedelivery
from journals.services import ingest_event
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import method_url
from tests.factories import AccountFactory, UserFactory, make_instance


@pytest.fixture
def admin_client(db: None) -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def queue_messages(instance: Instance, count: int) -> None:
    """Real sends through the API: an instance that is not authorized keeps them queued."""
    api = APIClient()
    for n in range(count):
        r = api.post(method_url(instance, "sendMessage"), {"chatId": "79001234567@c.us", "message": f"m{n}"}, format="json")
        assert r.status_code == 200


def notify(instance: Instance, count: int) -> list[Notification]:
    """Incoming-message notifications (the instance is switched to receive them)."""
    instance.settings["incomingWebhook"] = True
    instance.save(update_fields=["settings"])
    out = []
    for n in range(count):
        event = MessageEvent(
            direction="incoming", chat_id="79001234567@c.us", id_message=f"N{n}", sender="79001234567@c.us",
            sender_name="A", chat_name="A", sender_contact_name="A",
            message_data={"typeMessage": "textMessage", "textMessageData": {"textMessage": "hi"}},
            timestamp=timezone.now(),
        )
        notification = ingest_event(instance, event)
        assert notification is not None
        out.append(notification)
    return out


def failed_attempt(instance: Instance, notification: Notification, error: str = "connection refused") -> None:
    WebhookAttempt.objects.create(
        notification=notification, instance=instance, receipt_id=notification.receipt_id, attempt=1,
        url="http://hooks.example/x", ok=False, error=error,
    )


def run_action(client: Client, action: str, *instances: Instance) -> Any:
    return client.post(
        "/admin/instances/instance/", {"action": action, "_selected_action": [str(i.id) for i in instances]}, follow=True
    )


def test_overview_answers_what_runs_and_what_is_stuck(admin_client: Client) -> None:
    account = AccountFactory()
    stuck = make_instance(account)  # not authorized: its sends wait
    make_instance(account, authorized=True)
    make_instance(account, authorized=True)
    queue_messages(stuck, 3)
    hooked = make_instance(account, authorized=True)
    head = notify(hooked, 2)[0]
    Notification.objects.filter(pk=head.pk).update(attempts=4)
    failed_attempt(hooked, head)
    Runner(runner_id="runner-overview").acquire()

    page = admin_client.get("/admin/").content.decode()
    assert "Relay overview" in page
    # Instances by engine and state: 3 authorized, 1 not.
    assert "<th scope=\"row\"><a href=\"/admin/instances/instance/?engine__exact=emulator" in page
    assert f'href="/admin/instances/instance/{stuck.id}/change/">{stuck.id}</a>' in page
    assert "3 queued" in page
    assert f"?instance__id__exact={hooked.id}&amp;ok__exact=0" in page  # failing webhooks
    assert "Blocked notification queues" in page
    assert "runner-overview" in page
    assert "webhook redeliveries" in page.lower() and "redeliverys" not in page.lower()


def test_overview_says_when_no_runner_holds_a_lease(admin_client: Client) -> None:
    make_instance(AccountFactory())
    page = admin_client.get("/admin/").content.decode()
    assert "No runner holds a live lease." in page


def test_instance_page_diagnoses_and_links(admin_client: Client) -> None:
    account = AccountFactory(name="Acme")
    instance = make_instance(account)
    queue_messages(instance, 2)
    head = notify(instance, 1)[0]
    Notification.objects.filter(pk=head.pk).update(attempts=3)
    failed_attempt(instance, head, error="refused: loopback address")
    page = admin_client.get(f"/admin/instances/instance/{instance.id}/change/").content.decode()
    assert "2 queued, 0 sending" in page
    assert "head tried 3 time(s): webhook deliveries are blocked" in page
    assert "refused: loopback address" in page
    assert "no runner holds this instance&#x27;s lease" in page
    assert f"/admin/messaging/outgoingmessage/?instance__id__exact={instance.id}" in page
    assert f"/admin/journals/notification/?instance__id__exact={instance.id}" in page
    assert f"/admin/journals/webhookattempt/?instance__id__exact={instance.id}" in page
    assert f"/admin/instances/account/{account.pk}/change/" in page
    # The owner is told apart by username, and secrets never appear in full.
    assert f"{account.user.username} (Acme)" in page
    assert instance.api_token not in page
    assert instance.webhook_secret not in page
    assert instance.api_token[:4] + "…" in page


def test_changelist_shows_the_owners_username(admin_client: Client) -> None:
    a, b = AccountFactory(name="Same Co"), AccountFactory(name="Same Co")
    make_instance(a)
    make_instance(b)
    page = admin_client.get("/admin/instances/instance/").content.decode()
    assert f"{a.user.username} (Same Co)" in page
    assert f"{b.user.username} (Same Co)" in page


def _change_form(admin_client: Client, instance: Instance) -> dict[str, Any]:
    """The change form's current values, as a browser would submit them."""
    response = admin_client.get(f"/admin/instances/instance/{instance.id}/change/")
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = "on" if value is True else value
    data.update({"state_changes-TOTAL_FORMS": "0", "state_changes-INITIAL_FORMS": "0", "_save": "Save"})
    return data


def test_settings_are_a_form_and_use_the_apis_validation(admin_client: Client, account: Account) -> None:
    instance = make_instance(account)
    data = _change_form(admin_client, instance)
    assert "delaySendMessagesMilliseconds" in data and "webhookUrl" in data
    data.update({"delaySendMessagesMilliseconds": "2500", "incomingWebhook": "on", "name": "renamed"})
    r = admin_client.post(f"/admin/instances/instance/{instance.id}/change/", data)
    assert r.status_code == 302, r.content.decode()[:2000]
    instance.refresh_from_db()
    assert instance.setting("delaySendMessagesMilliseconds") == 2500
    assert instance.setting("incomingWebhook") is True
    assert instance.name == "renamed"

    data = _change_form(admin_client, instance)
    data["delaySendMessagesMilliseconds"] = "10"  # under GREEN-API's minimum
    r = admin_client.post(f"/admin/instances/instance/{instance.id}/change/", data)
    assert r.status_code == 200
    assert "delaySendMessagesMilliseconds" in r.content.decode()
    instance.refresh_from_db()
    assert instance.setting("delaySendMessagesMilliseconds") == 2500  # nothing saved


def test_clear_queue_action(admin_client: Client, account: Account) -> None:
    chosen, left = make_instance(account), make_instance(account)
    queue_messages(chosen, 2)
    queue_messages(left, 1)
    r = run_action(admin_client, "clear_queue", chosen)
    assert "Removed 2 queued message(s)" in r.content.decode()
    assert not OutgoingMessage.objects.filter(instance=chosen, status=OutgoingStatus.QUEUED).exists()
    assert OutgoingMessage.objects.filter(instance=left, status=OutgoingStatus.QUEUED).count() == 1


def test_redeliver_action_requeues_only_what_gave_up(admin_client: Client, account: Account) -> None:
    instance = make_instance(account, authorized=True)
    instance.settings["webhookUrl"] = "http://hooks.example/in"
    instance.save(update_fields=["settings"])
    n1, n2, n3, n4 = notify(instance, 4)
    Notification.objects.filter(pk__in=[n1.pk, n2.pk, n4.pk]).update(state=NotificationState.EXPIRED, attempts=5)
    Notification.objects.filter(pk=n3.pk).update(state=NotificationState.DONE, attempts=1)  # delivered
    r = run_action(admin_client, "redeliver_given_up", instance)
    assert "Re-queued 3 notification(s)" in r.content.decode()
    states = dict(Notification.objects.filter(instance=instance).values_list("receipt_id", "state"))
    assert states == {
        n1.receipt_id: NotificationState.QUEUED, n2.receipt_id: NotificationState.QUEUED,
        n3.receipt_id: NotificationState.DONE, n4.receipt_id: NotificationState.QUEUED,
    }
    assert sorted(WebhookRedelivery.objects.filter(instance=instance).values_list("receipt_from", "receipt_to")) == [
        (n1.receipt_id, n2.receipt_id), (n4.receipt_id, n4.receipt_id),
    ]


def test_redeliver_action_reports_an_instance_without_webhook(admin_client: Client, account: Account) -> None:
    instance = make_instance(account)
    n = notify(instance, 1)[0]
    Notification.objects.filter(pk=n.pk).update(state=NotificationState.EXPIRED, attempts=2)
    r = run_action(admin_client, "redeliver_given_up", instance)
    assert r.status_code == 200
    assert "has no webhookUrl" in r.content.decode()


def test_instances_are_not_added_from_the_admin(admin_client: Client) -> None:
    assert admin_client.get("/admin/instances/instance/add/").status_code == 403
