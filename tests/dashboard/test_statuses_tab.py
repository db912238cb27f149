"""The cabinet's Statuses tab: post statuses through the wire methods' validation and
queue, see who got and viewed them, see contacts' statuses, delete one, and make a
simulated contact post one (sandbox)."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from engines.emulator.models import EmuStatus
from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from messaging.models import OutgoingMessage
from tests.journals.emulated import tick


def url(name: str, instance: Instance) -> str:
    return reverse(f"dashboard:{name}", args=[instance.id])


def test_post_a_text_status_and_see_its_viewers(
    owner_client: Client, authorized_instance: Instance, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EMULATOR_STATUS_DELIVERED_AFTER_SECONDS = 0
    settings.EMULATOR_STATUS_READ_AFTER_SECONDS = 0
    add_simulated_contact(owner_phone=authorized_instance.phone, phone="79005551001", name="Ann")
    with django_capture_on_commit_callbacks(execute=True):
        r = owner_client.post(
            url("statuses_post", authorized_instance),
            {"kind": "text", "message": "From the cabinet", "backgroundColor": "#336699", "font": "SERIF"},
        )
    assert r.status_code == 302
    status = OutgoingMessage.objects.get(instance=authorized_instance)
    assert (status.method, status.chat_id) == ("sendTextStatus", "status@broadcast")
    tick()
    tick()
    body = owner_client.get(url("statuses", authorized_instance)).content.decode()
    assert "From the cabinet" in body and 'data-viewer="79005551001@c.us"' in body
    assert "<td>read</td>" in body


def test_invalid_input_is_shown_with_the_wire_message(owner_client: Client, authorized_instance: Instance) -> None:
    r = owner_client.post(url("statuses_post", authorized_instance), {"kind": "text", "message": "x", "backgroundColor": "blue"})
    assert r.status_code == 422
    assert "fails to match the required pattern" in r.content.decode()
    r = owner_client.post(url("statuses_post", authorized_instance), {"kind": "media", "fileName": "a.png"})
    assert "&#x27;urlFile&#x27; is required" in r.content.decode()
    assert not OutgoingMessage.objects.exists()


def test_a_contact_posts_a_status_the_instance_sees(owner_client: Client, authorized_instance: Instance) -> None:
    r = owner_client.post(
        url("statuses_contact", authorized_instance),
        {"phone": "+7 900 555 1002", "name": "Bob", "message": "Beach day", "backgroundColor": "#FF8800", "font": "OSWALD_HEAVY"},
    )
    assert r.status_code == 302
    assert EmuStatus.objects.get().poster == "79005551002"
    tick()
    body = owner_client.get(url("statuses", authorized_instance)).content.decode()
    assert "Beach day" in body and "OSWALD_HEAVY" in body and "Bob" in body


def test_delete_from_the_tab(
    owner_client: Client, authorized_instance: Instance, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(url("statuses_post", authorized_instance), {"kind": "text", "message": "oops"})
    id_message = OutgoingMessage.objects.get().id_message
    r = owner_client.post(url("statuses_delete", authorized_instance), {"idMessage": id_message})
    assert r.status_code == 302
    assert "<em>deleted</em>" in owner_client.get(url("statuses", authorized_instance)).content.decode()


def test_another_users_instance_is_404(owner_client: Client, stranger_instance: Instance) -> None:
    assert owner_client.get(url("statuses", stranger_instance)).status_code == 404
    assert owner_client.post(url("statuses_post", stranger_instance), {"message": "x"}).status_code == 404
    assert owner_client.post(url("statuses_contact", stranger_instance), {"phone": "79005551003"}).status_code == 404
