"""Meta's webhook deliveries are committed (CloudInbox) and answered at once, then
taken in off the request path: in Meta's order per instance, again after a broker
outage or a failed attempt, and a delivery that keeps failing is set aside instead
of holding the instance's later messages back."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from engines.cloud import inbound, tasks
from engines.cloud.inbound import our_id
from engines.cloud.models import CloudInbox
from instances import services
from instances.models import Instance
from journals.models import JournalMessage
from tests.engines.cloud.conftest import post_webhook, text_message


@pytest.fixture
def notifying(cloud_instance: Instance) -> Instance:
    services.update_settings(cloud_instance, {"incomingWebhook": True})
    return cloud_instance


def journaled(instance: Instance) -> list[str]:
    return list(JournalMessage.objects.filter(instance=instance).order_by("id").values_list("id_message", flat=True))


def test_a_delivery_is_committed_before_meta_hears_200_and_survives_a_broker_outage(
    client: Client, notifying: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broker_down(*_args: Any, **_kwargs: Any) -> None:
        raise ConnectionError("broker unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(tasks.take_in_inbox_task, "delay", broker_down)
        r = post_webhook(client, notifying, text_message("wamid.Q1", "kept"))
    assert r.status_code == 200
    assert CloudInbox.objects.filter(instance=notifying).count() == 1
    assert journaled(notifying) == []  # not taken in yet: nothing ran

    assert tasks.offer_inboxes_task() == 1  # the beat offers it again
    assert journaled(notifying) == [our_id("wamid.Q1")]
    assert not CloudInbox.objects.exists()


def test_a_failing_delivery_holds_later_ones_in_order_then_is_set_aside(
    client: Client, notifying: Instance, settings: Any
) -> None:
    settings.CLOUD_INBOX_MAX_ATTEMPTS = 3
    # A payload our take-in cannot walk (a bug's stand-in: ``entry`` is not a list).
    # Before the inbox this was a 500 to Meta, re-posted for days.
    assert post_webhook(client, notifying, {"object": "whatsapp_business_account", "entry": 5}).status_code == 200
    # Its offer to the worker retries the head first (attempt 2), the second waits.
    assert post_webhook(client, notifying, text_message("wamid.Q2", "second")).status_code == 200
    first = CloudInbox.objects.get(instance=notifying, attempts=2)
    assert "TypeError" in first.last_error and not first.dead
    assert journaled(notifying) == []  # held behind the first, in Meta's order

    inbound.take_in_queued(notifying.pk)  # the beat's retry: the third failure sets it aside
    first.refresh_from_db()
    assert first.dead and first.attempts == 3
    assert journaled(notifying) == [our_id("wamid.Q2")]
    assert list(CloudInbox.objects.values_list("pk", flat=True)) == [first.pk]  # kept for the operator
    assert tasks.offer_inboxes_task() == 0  # set aside: not offered again


def test_deliveries_are_taken_in_in_the_order_meta_posted_them(
    client: Client, notifying: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(tasks, "offer_inbox", lambda _instance_id: None)  # no worker yet
        for n in range(5):
            assert post_webhook(client, notifying, text_message(f"wamid.O{n}", str(n))).status_code == 200
    assert inbound.take_in_queued(notifying.pk) == 5
    assert journaled(notifying) == [our_id(f"wamid.O{n}") for n in range(5)]
    assert inbound.take_in_queued(notifying.pk) == 0  # twice is harmless


def test_a_nul_character_is_a_400_not_a_500(client: Client, notifying: Instance) -> None:
    r = post_webhook(client, notifying, text_message("wamid.NUL", "a\u0000b"))
    assert r.status_code == 400
    assert not CloudInbox.objects.exists()
