"""Issue 19, customer side: webhooks that cannot arrive are explained, the log shows
the exact request and answer, the signing secret is the customer's, the
recommended notifications are one click, replies go out from the chat view, and
error pages lead back."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from django.test import Client
from django.urls import reverse

from instances import services
from instances.models import Account, Instance
from journals import webhooks
from journals.models import Notification, NotificationState, WebhookAttempt, WebhookRedelivery
from messaging.models import OutgoingMessage
from tests.dashboard.test_settings_page import form_data
from tests.factories import make_instance

REFUSED_URL = "http://127.0.0.1:9/hook"


def queued(instance: Instance, receipt_id: int) -> Notification:
    return Notification.objects.create(
        instance=instance, receipt_id=receipt_id, type_webhook="stateInstanceChanged",
        body={"typeWebhook": "stateInstanceChanged", "stateInstance": "authorized"}, state=NotificationState.QUEUED,
    )


# --- Webhooks that can never arrive ----------------------------------------------------


def test_saving_a_refused_webhook_url_warns_with_the_reason_and_the_setting(
    owner_client: Client, instance: Instance, settings: object
) -> None:
    url = reverse("dashboard:settings", args=[instance.id])
    page = owner_client.post(url, form_data(instance, webhookUrl=REFUSED_URL), follow=True).content.decode()
    assert "Settings saved, but webhooks cannot arrive yet." in page
    assert "127.0.0.1 is a loopback address" in page
    assert "WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32" in page and "WEBHOOK_ALLOW_PRIVATE=true" in page
    instance.refresh_from_db()
    assert instance.setting("webhookUrl") == REFUSED_URL  # saved: the operator may open it later
    assert "data-webhook-problem" in page  # and the settings page keeps saying so


def test_a_refused_host_name_is_explained_without_revealing_its_address(instance: Instance) -> None:
    from dashboard.webhook_check import reachability_problem

    problem = reachability_problem("http://localhost:8080/hook") or ""
    assert "localhost resolves to a loopback address" in problem and "WEBHOOK_ALLOWED_NETWORKS" in problem
    assert "127.0.0.1" not in problem and "::1" not in problem


def test_an_allowed_network_makes_the_warning_go_away(owner_client: Client, instance: Instance, settings: object) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # type: ignore[attr-defined]
    services.update_settings(instance, {"webhookUrl": REFUSED_URL})
    page = owner_client.get(reverse("dashboard:settings", args=[instance.id])).content.decode()
    assert "data-webhook-problem" not in page


def test_a_blocked_queue_is_announced_on_overview_notifications_and_log(owner_client: Client, instance: Instance) -> None:
    services.update_settings(instance, {"webhookUrl": REFUSED_URL})
    queued(instance, 1)
    queued(instance, 2)
    webhooks.deliver(instance.id)  # the real delivery path: the guard refuses loopback
    attempt = WebhookAttempt.objects.get(instance=instance)
    assert attempt.status_code is None and attempt.error.startswith("refused:")
    for name in ("instance", "notifications", "webhooks"):
        page = owner_client.get(reverse(f"dashboard:{name}", args=[instance.id])).content.decode()
        assert "Webhook deliveries are blocked." in page, name
        assert 'data-webhook-blocked="1"' in page and "failed 1 attempt" in page and "1 more wait" in page
        assert "Relay refused the address" in page
    log = owner_client.get(reverse("dashboard:webhooks", args=[instance.id])).content.decode()
    assert 'data-outcome="refused"' in log and "blocked by Relay" in log and "no answer" not in log


def test_no_banner_when_deliveries_flow_or_no_webhook(owner_client: Client, instance: Instance) -> None:
    queued(instance, 1)
    page = owner_client.get(reverse("dashboard:instance", args=[instance.id])).content.decode()
    assert "Webhook deliveries are blocked" not in page


def test_the_log_tells_timeouts_and_refusals_apart(owner_client: Client, instance: Instance) -> None:
    note = queued(instance, 5)
    common = {"notification": note, "instance": instance, "receipt_id": 5, "url": "https://x.example/h"}
    WebhookAttempt.objects.create(attempt=1, error="timeout: ReadTimeout", **common)
    WebhookAttempt.objects.create(attempt=2, error="ConnectionRefusedError: [Errno 111] Connection refused", **common)
    WebhookAttempt.objects.create(attempt=3, status_code=503, error="HTTP 503", response_excerpt="busy", **common)
    log = owner_client.get(reverse("dashboard:webhooks", args=[instance.id])).content.decode()
    assert 'data-outcome="timeout"' in log and "did not answer in time" in log
    assert 'data-outcome="connect"' in log and "connection refused" in log
    assert 'data-outcome="http"' in log and "HTTP 503" in log and "busy" in log


# --- The exact request, redeliveries, the signing secret ---------------------------------------


def test_log_rows_expand_to_the_exact_signed_request(owner_client: Client, instance: Instance, settings: object) -> None:
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # type: ignore[attr-defined]
    services.update_settings(instance, {"webhookUrl": REFUSED_URL, "webhookUrlToken": "tok-secret-1"})
    note = queued(instance, 1)
    webhooks.deliver(instance.id)  # nothing listens on port 9: a connection error, signed request recorded
    attempt = WebhookAttempt.objects.get(instance=instance)
    stamp = int(attempt.started_at.timestamp())
    body = webhooks.body_bytes(note.body)
    digest = hmac.new(instance.webhook_secret.encode(), str(stamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    assert attempt.signature == f"sha256={digest}"
    log = owner_client.get(reverse("dashboard:webhooks", args=[instance.id])).content.decode()
    assert f"X-Webhook-Timestamp: {stamp}" in log and f"X-Webhook-Signature: sha256={digest}" in log
    assert f"X-Webhook-Id: {instance.id}-1" in log
    assert body.decode().replace('"', "&quot;") in log
    assert "tok-secret-1" not in log and "Authorization: Bearer &lt;your webhookUrlToken&gt;" in log


def test_redeliveries_are_marked(owner_client: Client, instance: Instance) -> None:
    services.update_settings(instance, {"webhookUrl": "https://hooks.example/r"})
    note = queued(instance, 3)
    common = {"notification": note, "instance": instance, "receipt_id": 3, "url": "https://hooks.example/r"}
    WebhookAttempt.objects.create(attempt=1, ok=True, status_code=200, **common)
    note.state = NotificationState.DONE
    note.save(update_fields=["state"])
    owner_client.post(
        reverse("dashboard:webhook_redeliver", args=[instance.id]), {"range-receipt_from": 3, "range-receipt_to": 3}
    )
    assert WebhookRedelivery.objects.filter(instance=instance).count() == 1
    WebhookAttempt.objects.create(attempt=1, ok=True, status_code=200, **common)
    log = owner_client.get(reverse("dashboard:webhooks", args=[instance.id])).content.decode()
    assert log.count(">redelivery</span>") == 1


def test_the_customer_sees_copies_and_rotates_the_signing_secret(owner_client: Client, instance: Instance) -> None:
    page = owner_client.get(reverse("dashboard:settings", args=[instance.id])).content.decode()
    old = instance.webhook_secret
    assert f'<code id="webhook-secret" class="secret">{old}</code>' in page and 'data-copy="#webhook-secret"' in page
    owner_client.post(reverse("dashboard:rotate_webhook_secret", args=[instance.id]))
    instance.refresh_from_db()
    assert instance.webhook_secret != old and len(instance.webhook_secret) >= 32


def test_a_stranger_cannot_rotate_or_enable_anything(owner_client: Client, stranger_instance: Instance) -> None:
    old = stranger_instance.webhook_secret
    for name in ("rotate_webhook_secret", "recommended_settings"):
        assert owner_client.post(reverse(f"dashboard:{name}", args=[stranger_instance.id])).status_code == 404
    stranger_instance.refresh_from_db()
    assert stranger_instance.webhook_secret == old and stranger_instance.setting("incomingWebhook") in (False, "no")


# --- Recommended notifications ---------------------------------------------------------


def test_the_recommended_set_in_one_click(owner_client: Client, instance: Instance) -> None:
    page = owner_client.get(reverse("dashboard:settings", args=[instance.id])).content.decode()
    assert "Switch on the recommended set" in page
    assert '<span class="setting-title">Incoming messages and files</span> <code>incomingWebhook</code>' in page
    owner_client.post(reverse("dashboard:recommended_settings", args=[instance.id]))
    r = owner_client.get(f"/waInstance{instance.id}/getSettings/{instance.api_token}")
    wire = r.json()
    for name in ("incomingWebhook", "outgoingWebhook", "outgoingMessageWebhook", "outgoingAPIMessageWebhook",
                 "stateWebhook", "pollMessageWebhook", "incomingCallWebhook"):
        assert wire[name] == "yes", name
    assert wire["markIncomingMessagesReaded"] == "no" and wire["keepOnlineStatus"] == "no"
    assert wire["editedMessageWebhook"] == "no"  # not in the set: left alone


# --- Chats ------------------------------------------------------------------------------------------


@pytest.fixture
def paired(account: Account) -> Instance:
    return make_instance(account, authorized=True)


def test_reply_from_the_chat_view_is_a_real_send(owner_client: Client, paired: Instance) -> None:
    chat = "79005550404@c.us"
    url = reverse("dashboard:chat_reply", args=[paired.id, chat])
    r = owner_client.post(url, {"message": "On my way"}, HTTP_HX_REQUEST="true")
    assert r.status_code == 200 and "On my way" in r.content.decode()
    sent = OutgoingMessage.objects.get(instance=paired, chat_id=chat)
    assert sent.method == "sendMessage" and sent.request.get("message") == "On my way"


def test_a_refused_reply_says_why_in_a_sentence(owner_client: Client, paired: Instance) -> None:
    url = reverse("dashboard:chat_reply", args=[paired.id, "not-a-chat"])
    r = owner_client.post(url, {"message": "hi"}, HTTP_HX_REQUEST="true")
    body = r.content.decode()
    assert r["HX-Retarget"] == "#reply-error" and "The request was not accepted." in body
    assert not OutgoingMessage.objects.filter(instance=paired).exists()
    empty = owner_client.post(url, {"message": "   "}, HTTP_HX_REQUEST="true").content.decode()
    assert "Write a message first." in empty


def test_the_chat_header_names_the_contact_and_the_legend_explains_ticks(owner_client: Client, paired: Instance) -> None:
    from journals.models import ChatState

    ChatState.objects.create(instance=paired, chat_id="79005550505@c.us", name="Alice Example")
    page = owner_client.get(reverse("dashboard:chat", args=[paired.id, "79005550505@c.us"])).content.decode()
    assert "<h2 data-chat-name>Alice Example</h2>" in page
    assert "stays <strong>delivered</strong> until that instance reads the chat" in page
    assert 'id="reply"' in page and 'for="id_message"' in page


# --- Small things ---------------------------------------------------------------------------------


def test_the_scan_message_hides_once_paired(owner_client: Client) -> None:
    page = owner_client.post(reverse("dashboard:create"), {"name": "Shop", "engine": "emulator"}, follow=True)
    html = page.content.decode()
    assert 'data-show-when="notAuthorized">Instance' in html and "Scan the QR code" in html


def test_branded_404_for_people_plain_404_for_the_api(owner_client: Client, stranger_instance: Instance) -> None:
    page = owner_client.get(reverse("dashboard:instance", args=[stranger_instance.id]))
    assert page.status_code == 404
    html = page.content.decode()
    assert "Page not found" in html and "Back to your instances" in html and 'class="topbar"' in html
    api = owner_client.get("/waInstance1/noSuchMethod/abc")
    assert (api.status_code, api.content) == (404, b"Not Found")


def test_branded_403_and_500(client: Client, settings: object) -> None:
    settings.DASHBOARD_SIGNUP = False  # type: ignore[attr-defined]
    page = client.get(reverse("dashboard:signup"))
    assert page.status_code == 403 and "Sign-up is closed on this server" in page.content.decode()
    from django.test import RequestFactory

    from dashboard.errors import server_error

    crash = server_error(RequestFactory().get("/dashboard/"))
    assert crash.status_code == 500 and "Back to your instances" in crash.content.decode()


def test_settings_errors_lead_with_a_sentence(owner_client: Client, instance: Instance) -> None:
    url = reverse("dashboard:settings", args=[instance.id])
    page = owner_client.post(url, form_data(instance, delaySendMessagesMilliseconds=10)).content.decode()
    assert "Pause between sends was not accepted. The API says: " in page
