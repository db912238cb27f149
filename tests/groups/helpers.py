"""Shared helpers for the group method tests: instances on one emulated network,
simulated members, and wire calls."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from engines.emulator.models import EmuGroup, EmuGroupMember
from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from tests.conftest import method_url

ALICE = "79005550001"
BOB = "79005550002"
CAROL = "79005550003"
NOBODY = "79005559999"  # a number without WhatsApp


def wid(phone: str) -> str:
    return f"{phone}@c.us"


def with_contacts(instance: Instance, *phones: str) -> Instance:
    """Simulated contacts (with WhatsApp) in the instance's address book."""
    for phone in phones or (ALICE, BOB, CAROL):
        add_simulated_contact(owner_phone=instance.phone, phone=phone, name=f"Contact {phone[-1]}")
    add_simulated_contact(owner_phone=instance.phone, phone=NOBODY, registered=False)
    return instance


def call(client: APIClient, instance: Instance, method: str, body: Any, token: str | None = None) -> Any:
    return client.post(method_url(instance, method, token=token), body, format="json")


def create(client: APIClient, instance: Instance, *phones: str, name: str = "Team") -> str:
    r = call(client, instance, "createGroup", {"groupName": name, "chatIds": [wid(p) for p in phones]})
    assert r.status_code == 200, r.content
    assert r.json()["created"] is True
    return str(r.json()["chatId"])


def members(group_id: str) -> dict[str, tuple[bool, bool]]:
    """phone -> (is_admin, is_super_admin), straight from the network."""
    return {
        m.phone: (m.is_admin, m.is_super_admin)
        for m in EmuGroupMember.objects.filter(group__group_id=group_id)
    }


def group(group_id: str) -> EmuGroup:
    return EmuGroup.objects.get(group_id=group_id)


def promote(group_id: str, phone: str, admin: bool = True) -> None:
    EmuGroupMember.objects.filter(group__group_id=group_id, phone=phone).update(is_admin=admin)


def foreign_group(owner: str, *phones: str, name: str = "Theirs") -> str:
    """A group created by a simulated contact (through the network, not our API)."""
    from engines.emulator import groups as emulator_groups

    return emulator_groups.create_group(actor=owner, subject=name, participants=list(phones)).group_id
