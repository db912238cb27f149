"""The cabinet's calls: the sandbox call panel (live state, dial a contact, act as
the instance or as the contact) and calls in the chat view."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from engines.emulator.models import EmuCall, EmuPhone
from engines.emulator.services import add_simulated_contact
from instances import services as instance_services
from instances.models import Instance
from instances.runner import Runner
from tests.factories import make_instance

CONTACT = "79005550300"


def panel(client: Client, instance: Instance) -> str:
    return client.get(reverse("dashboard:sandbox", args=[instance.id]) + "?partial=call").content.decode()


def act(client: Client, instance: Instance, action: str) -> Any:
    return client.post(reverse("dashboard:sandbox_call_act", args=[instance.id]), {"action": action})


def test_dial_a_contact_and_follow_the_call(owner_client: Client, authorized_instance: Instance) -> None:
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=CONTACT, name="Dora", call_rule="silent")
    assert 'data-call-state="idle"' in panel(owner_client, authorized_instance)
    dial = reverse("dashboard:sandbox_dial", args=[authorized_instance.id])
    assert owner_client.post(dial, {"dial-phone": CONTACT}).status_code == 302
    body = panel(owner_client, authorized_instance)
    assert 'data-call-state="out-call"' in body and "Calling +79005550300 (Dora)" in body
    assert act(owner_client, authorized_instance, "contact-answer").status_code == 302
    assert 'data-call-state="on-call"' in panel(owner_client, authorized_instance)
    assert act(owner_client, authorized_instance, "hangup").status_code == 302
    body = panel(owner_client, authorized_instance)
    assert 'data-call-state="idle"' in body and "Last call ended: hangup" in body
    response = act(owner_client, authorized_instance, "hangup")
    assert response.status_code == 409 and "There is no call to hang up" in response.content.decode()


def test_the_contact_form_sets_the_call_rule(owner_client: Client, authorized_instance: Instance) -> None:
    url = reverse("dashboard:sandbox_contact", args=[authorized_instance.id])
    owner_client.post(url, {"contact-phone": CONTACT, "contact-registered": "on", "contact-call_rule": "reject"})
    assert EmuPhone.objects.get(phone=CONTACT).call_rule == "reject"


def test_answering_an_incoming_call_from_another_instance(owner_client: Client, authorized_instance: Instance) -> None:
    caller = make_instance(authorized=True, phone="79005550301")
    from messaging import calls

    calls.calls_dial(caller, chat_id=authorized_instance.wid)
    body = panel(owner_client, authorized_instance)
    assert 'data-call-state="inc-call"' in body and "Contact hangs up" not in body  # the peer is an instance
    assert act(owner_client, authorized_instance, "accept").status_code == 302
    assert EmuCall.objects.get().state == "active"
    response = act(owner_client, authorized_instance, "contact-hangup")
    assert response.status_code == 409 and "answers through the api" in response.content.decode().lower()


def test_the_chat_view_shows_calls(owner_client: Client, authorized_instance: Instance) -> None:
    # The account's own calls are journalled with outgoingCallWebhook on (API.md §9.4).
    instance_services.update_settings(authorized_instance, {"outgoingCallWebhook": True})
    add_simulated_contact(owner_phone=authorized_instance.phone, phone=CONTACT, call_rule="silent")
    owner_client.post(reverse("dashboard:sandbox_dial", args=[authorized_instance.id]), {"dial-phone": CONTACT})
    act(owner_client, authorized_instance, "contact-reject")
    runner = Runner()
    runner.tick()
    runner.shutdown()
    body = owner_client.get(reverse("dashboard:chat", args=[authorized_instance.id, f"{CONTACT}@c.us"])).content.decode()
    assert "Outgoing call · declined" in body
