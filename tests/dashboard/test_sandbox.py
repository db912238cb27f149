"""The emulator sandbox panel: contacts, send as contact, calls, blocks, states."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from instances.models import EmuContact, EmuMessage, EmuSignal, Engine, Instance, State
from instances.runner import Runner
from journals.models import JournalMessage


def test_unpaired_instance_explains_what_to_do(owner_client: Client, instance: Instance) -> None:
    body = owner_client.get(reverse("dashboard:sandbox", args=[instance.id])).content.decode()
    assert "Pair the instance first" in body


def test_sandbox_is_only_for_emulator_instances(owner_client: Client, instance: Instance) -> None:
    Instance.objects.filter(pk=instance.pk).update(engine=Engine.WAWEB)
    assert owner_client.get(reverse("dashboard:sandbox", args=[instance.id])).status_code == 404
    body = owner_client.get(reverse("dashboard:instance", args=[instance.id])).content.decode()
    assert "Scan with phone number" not in body


def test_add_and_list_contacts(owner_client: Client, authorized_instance: Instance) -> None:
    url = reverse("dashboard:sandbox_contact", args=[authorized_instance.id])
    response = owner_client.post(url, {"contact-phone": "79005550111", "contact-name": "Dora", "contact-registered": "on"})
    assert response.status_code == 302
    contact = EmuContact.objects.get(owner__phone=authorized_instance.phone)
    assert contact.contact.phone == "79005550111" and contact.contact.registered
    body = owner_client.get(reverse("dashboard:sandbox", args=[authorized_instance.id])).content.decode()
    assert "Dora" in body and "+79005550111" in body


def test_contact_form_errors(owner_client: Client, authorized_instance: Instance) -> None:
    url = reverse("dashboard:sandbox_contact", args=[authorized_instance.id])
    response = owner_client.post(url, {"contact-phone": "12"})
    assert response.status_code == 422
    assert "Enter the number with country code" in response.content.decode()


def test_send_as_contact_reaches_the_chat(owner_client: Client, authorized_instance: Instance) -> None:
    url = reverse("dashboard:sandbox_send", args=[authorized_instance.id])
    response = owner_client.post(
        url, {"send-phone": "79005550112", "send-name": "Eve", "send-kind": "textMessage", "send-message": "Hello there"}
    )
    assert response.status_code == 302
    message = EmuMessage.objects.get(sender="79005550112")
    assert message.message_data == {"typeMessage": "textMessage", "textMessageData": {"textMessage": "Hello there"}}
    Runner().tick()
    Runner().tick()
    assert JournalMessage.objects.filter(instance=authorized_instance, chat_id="79005550112@c.us").exists()
    chat = owner_client.get(reverse("dashboard:chat", args=[authorized_instance.id, "79005550112@c.us"]))
    assert "Hello there" in chat.content.decode()


def test_send_a_poll_and_a_picture(owner_client: Client, authorized_instance: Instance) -> None:
    url = reverse("dashboard:sandbox_send", args=[authorized_instance.id])
    owner_client.post(url, {"send-phone": "79005550113", "send-kind": "pollMessage", "send-message": "Tea?",
                            "send-options": "Yes\nNo"})
    owner_client.post(url, {"send-phone": "79005550113", "send-kind": "imageMessage", "send-message": "A view"})
    kinds = list(EmuMessage.objects.filter(sender="79005550113").order_by("id").values_list("type_message", flat=True))
    assert kinds == ["pollMessage", "imageMessage"]


def test_send_form_errors(owner_client: Client, authorized_instance: Instance) -> None:
    url = reverse("dashboard:sandbox_send", args=[authorized_instance.id])
    body = owner_client.post(url, {"send-phone": "79005550114", "send-kind": "textMessage"}).content.decode()
    assert "Write the text of the message" in body
    body = owner_client.post(
        url, {"send-phone": "79005550114", "send-kind": "pollMessage", "send-message": "Q", "send-options": "Only"}
    ).content.decode()
    assert "between 2 and 12 options" in body
    assert not EmuMessage.objects.filter(sender="79005550114").exists()


def test_send_as_contact_needs_a_paired_instance(owner_client: Client, instance: Instance) -> None:
    url = reverse("dashboard:sandbox_send", args=[instance.id])
    body = owner_client.post(
        url, {"send-phone": "79005550115", "send-kind": "textMessage", "send-message": "x"}
    ).content.decode()
    assert "must be authorized" in body


def test_calls_blocks_and_states(owner_client: Client, authorized_instance: Instance) -> None:
    owner_client.post(reverse("dashboard:sandbox_call", args=[authorized_instance.id]),
                      {"call-phone": "79005550116", "call-outcome": "declined"})
    assert EmuSignal.objects.filter(kind="call", from_phone="79005550116").count() == 2
    owner_client.post(reverse("dashboard:sandbox_block", args=[authorized_instance.id]), {"phone": "79005550116"})
    assert EmuSignal.objects.filter(kind="block", from_phone="79005550116").exists()
    owner_client.post(reverse("dashboard:sandbox_state", args=[authorized_instance.id]), {"state-state": State.YELLOW_CARD})
    authorized_instance.refresh_from_db()
    assert authorized_instance.state == State.YELLOW_CARD


def test_state_form_rejects_unknown_states(owner_client: Client, authorized_instance: Instance) -> None:
    response = owner_client.post(reverse("dashboard:sandbox_state", args=[authorized_instance.id]), {"state-state": "evil"})
    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()
