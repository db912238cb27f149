"""The emulator sandbox panel: contacts, send as contact (every typeMessage), calls,
poll votes, receipts, blocks, states."""

from __future__ import annotations

import io
import json
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from dashboard import sandbox
from engines import registry as engine_registry
from engines.emulator import triggers as emulator_events
from engines.emulator.models import EmuContact, EmuMessage, EmuSignal
from engines.emulator.triggers_api import KIND_FIELDS
from instances.models import Engine, Instance, State
from instances.runner import Runner
from journals.models import Call, JournalMessage


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


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


def send_as(client: Client, instance: Instance, kind: str, fields: dict[str, Any], phone: str = "79005550112",
            who: str = "contact", **extra: Any) -> Any:
    data = {"send-phone": phone, "send-kind": kind, "send-who": who, **{f"f-{k}": v for k, v in fields.items()}}
    return client.post(reverse("dashboard:sandbox_send", args=[instance.id]), {**data, **extra})


def test_every_emulator_message_type_has_a_generated_form(owner_client: Client, authorized_instance: Instance) -> None:
    # One list: the control API's serializers are the forms.
    box = engine_registry.sandbox("emulator")
    assert box is not None
    assert [k.name for k in sandbox.kinds(box)] == list(emulator_events.MESSAGE_KINDS)
    for kind in sandbox.kinds(box):
        assert {f.name for f in kind.fields} == set(KIND_FIELDS[kind.name]().fields), kind.name
    url = reverse("dashboard:sandbox", args=[authorized_instance.id])
    body = owner_client.get(url).content.decode()
    for name in emulator_events.MESSAGE_KINDS:
        assert f'<option value="{name}"' in body
    partial = owner_client.get(url + "?partial=fields&send-kind=locationMessage", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'name="f-latitude"' in partial and 'name="f-longitude"' in partial
    assert 'for="ev-latitude"' in partial  # every input has its label


def test_send_as_contact_reaches_the_chat(owner_client: Client, authorized_instance: Instance) -> None:
    response = send_as(owner_client, authorized_instance, "textMessage", {"message": "Hello there"}, **{"send-name": "Eve"})
    assert response.status_code == 302
    message = EmuMessage.objects.get(sender="79005550112")
    assert message.message_data == {"typeMessage": "textMessage", "textMessageData": {"textMessage": "Hello there"}}
    Runner().tick()
    Runner().tick()
    assert JournalMessage.objects.filter(instance=authorized_instance, chat_id="79005550112@c.us").exists()
    chat = owner_client.get(reverse("dashboard:chat", args=[authorized_instance.id, "79005550112@c.us"]))
    assert "Hello there" in chat.content.decode()


def test_media_location_contacts_and_polls(owner_client: Client, authorized_instance: Instance) -> None:
    picture = SimpleUploadedFile("view.png", png_bytes(), content_type="image/png")
    cases: list[tuple[str, dict[str, Any]]] = [
        ("pollMessage", {"message": "Tea?", "options": "Yes\nNo\n", "multipleAnswers": "true"}),
        ("imageMessage", {"caption": "A view", "file": picture}),
        ("documentMessage", {}),  # a generated sample file
        ("stickerMessage", {}),
        ("locationMessage", {"latitude": "55.75", "longitude": "37.61", "nameLocation": "Red Square"}),
        ("contactsArrayMessage", {"contacts": json.dumps([{"displayName": "Ann", "phoneContact": "79001112233"}])}),
        ("groupInviteMessage", {"groupName": "Friends"}),
        ("interactiveButtonsReply", {"body": "Pick", "buttons": json.dumps([{"buttonId": "1", "buttonText": "One"}])}),
    ]
    for kind, fields in cases:
        response = send_as(owner_client, authorized_instance, kind, fields, phone="79005550113")
        assert response.status_code == 302, (kind, response.content.decode()[:2000])
    rows = list(EmuMessage.objects.filter(sender="79005550113").order_by("id"))
    assert [m.type_message for m in rows] == [kind for kind, _ in cases]
    poll = rows[0].message_data["pollMessageData"]
    assert [o["optionName"] for o in poll["options"]] == ["Yes", "No"] and poll["multipleAnswers"] is True
    assert rows[4].message_data["locationMessageData"]["latitude"] == 55.75


def test_replies_reactions_edits_and_deletes_name_an_earlier_message(
    owner_client: Client, authorized_instance: Instance
) -> None:
    send_as(owner_client, authorized_instance, "textMessage", {"message": "original"})
    first = EmuMessage.objects.get(sender="79005550112")
    # The form offers recent messages for the "which message" fields.
    body = owner_client.get(reverse("dashboard:sandbox", args=[authorized_instance.id]) + "?kind=reactionMessage").content.decode()
    assert f'<option value="{first.id_message}">' in body and 'list="recent-messages"' in body
    for kind, fields in (
        ("quotedMessage", {"message": "replying", "quotedMessageId": first.id_message}),
        ("reactionMessage", {"quotedMessageId": first.id_message, "reaction": "👍"}),
        ("editedMessage", {"stanzaId": first.id_message, "message": "edited"}),
        ("deletedMessage", {"stanzaId": first.id_message}),
    ):
        assert send_as(owner_client, authorized_instance, kind, fields).status_code == 302, kind
    kinds = list(EmuMessage.objects.filter(sender="79005550112").order_by("id").values_list("type_message", flat=True))
    assert kinds == ["textMessage", "quotedMessage", "reactionMessage", "editedMessage", "deletedMessage"]
    # An unknown message is the emulator's own error, shown on the page.
    response = send_as(owner_client, authorized_instance, "deletedMessage", {"stanzaId": "NOPE"})
    assert response.status_code == 409 and "is not in the chat" in response.content.decode()


def test_a_message_from_the_linked_phone(owner_client: Client, authorized_instance: Instance) -> None:
    response = send_as(owner_client, authorized_instance, "textMessage", {"message": "from my phone"}, who="phone")
    assert response.status_code == 302
    message = EmuMessage.objects.get(recipient="79005550112")
    assert message.sender == authorized_instance.phone


def test_send_form_errors_use_the_control_api_words(owner_client: Client, authorized_instance: Instance) -> None:
    response = send_as(owner_client, authorized_instance, "textMessage", {}, phone="79005550114")
    assert response.status_code == 422
    assert "&#x27;message&#x27; is required" in response.content.decode()
    response = send_as(owner_client, authorized_instance, "pollMessage", {"message": "Q", "options": "Only"}, phone="79005550114")
    assert response.status_code == 422 and "options" in response.content.decode()
    response = send_as(owner_client, authorized_instance, "locationMessage", {"latitude": "north", "longitude": "1"})
    assert response.status_code == 422 and "Enter a number." in response.content.decode()
    response = send_as(owner_client, authorized_instance, "textMessage", {"message": "x"}, phone="12")
    assert "Enter the number with country code" in response.content.decode()
    response = send_as(owner_client, authorized_instance, "noSuchMessage", {"message": "x"})
    assert response.status_code == 422 and "Pick a message type" in response.content.decode()
    assert not EmuMessage.objects.filter(sender__in=["79005550114", "79005550112"]).exists()


def test_send_as_contact_needs_a_paired_instance(owner_client: Client, instance: Instance) -> None:
    body = send_as(owner_client, instance, "textMessage", {"message": "x"}, phone="79005550115").content.decode()
    assert "must be authorized" in body


def test_poll_votes(owner_client: Client, authorized_instance: Instance) -> None:
    poll = emulator_events.phone_sends(
        authorized_instance, phone="79005550117", kind="pollMessage", fields={"message": "Lunch?", "options": ["Pizza", "Soup"]}
    )
    body = owner_client.get(reverse("dashboard:sandbox", args=[authorized_instance.id])).content.decode()
    assert "Lunch?" in body and "Vote as +79005550117" in body
    url = reverse("dashboard:sandbox_vote", args=[authorized_instance.id])
    assert owner_client.post(url, {"poll": poll.id_message, "votes": ["Soup"]}).status_code == 302
    vote = EmuMessage.objects.get(sender="79005550117", type_message="pollUpdateMessage")
    voters = {v["optionName"]: v["optionVoters"] for v in vote.message_data["pollMessageData"]["votes"]}
    assert voters == {"Pizza": [], "Soup": ["79005550117@c.us"]}
    assert owner_client.post(url, {"poll": "unknown"}).status_code == 409


def test_a_ringing_call_is_ended_from_the_panel(owner_client: Client, authorized_instance: Instance) -> None:
    runner = Runner()  # one runner: it keeps the lease between ticks
    owner_client.post(reverse("dashboard:sandbox_call", args=[authorized_instance.id]), {"call-phone": "79005550118"})
    runner.tick()
    call = Call.objects.get(instance=authorized_instance)
    assert call.status == "offer"
    body = owner_client.get(reverse("dashboard:sandbox", args=[authorized_instance.id])).content.decode()
    assert "Ringing now" in body and call.id_call in body
    end = reverse("dashboard:sandbox_call_end", args=[authorized_instance.id])
    assert owner_client.post(end, {"id_call": call.id_call, "outcome": "pickUp"}).status_code == 302
    runner.tick()
    call.refresh_from_db()
    assert call.status == "pickUp"
    response = owner_client.post(end, {"id_call": call.id_call, "outcome": "declined"})
    assert response.status_code == 409 and "already answered" in response.content.decode()
    assert owner_client.post(end, {"id_call": call.id_call, "outcome": "hungUp"}).status_code == 302
    response = owner_client.post(end, {"id_call": call.id_call, "outcome": "hungUp"})
    assert response.status_code == 409 and "already ended" in response.content.decode()


def test_read_receipts_on_demand(owner_client: Client, authorized_instance: Instance) -> None:
    emulator_events.phone_sends(authorized_instance, phone="79005550119", kind="textMessage", fields={"message": "hi"})
    url = reverse("dashboard:sandbox_read", args=[authorized_instance.id])
    response = owner_client.post(url, {"phone": "79005550119"}, follow=True)
    assert "read 1 message" in response.content.decode()
    assert EmuMessage.objects.get(recipient="79005550119").read_at is not None
    response = owner_client.post(url, {"phone": "79005550119"}, follow=True)
    assert "nothing unread" in response.content.decode()


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
