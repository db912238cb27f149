"""keepOnlineStatus (setSettings): a connected emulator instance with it on shows
its phone online to its contacts; off, it is seen online no longer and its
contacts' getContactInfo reports when it was last seen."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from engines.emulator.services import add_simulated_contact
from instances.models import Instance
from instances.runner import Runner
from tests.conftest import method_url
from tests.factories import make_instance


def seen_by(client: APIClient, instance: Instance) -> list[dict[str, Any]]:
    r = client.get(
        f"/api/v1/emulator/instances/{instance.id}/presence", headers={"Authorization": f"Bearer {instance.api_token}"}
    )
    return list(r.json())


def set_keep_online(client: APIClient, instance: Instance, value: str) -> None:
    r = client.post(method_url(instance, "setSettings"), {"keepOnlineStatus": value}, format="json")
    assert r.status_code == 200, r.content


def test_contacts_see_it_online_then_last_seen(api_client: APIClient, authorized_instance: Instance) -> None:
    friend = make_instance(authorized=True)
    add_simulated_contact(owner_phone=friend.phone, phone=authorized_instance.phone)
    runner = Runner()
    runner.tick()
    assert seen_by(api_client, friend) == []  # the setting is off by default
    info = api_client.post(method_url(friend, "getContactInfo"), {"chatId": authorized_instance.wid}, format="json")
    assert info.json()["lastSeen"] is None

    set_keep_online(api_client, authorized_instance, "yes")
    runner.tick()
    [seen] = seen_by(api_client, friend)
    assert (seen["chatId"], seen["presence"], seen["inChat"]) == (authorized_instance.wid, "available", "")

    set_keep_online(api_client, authorized_instance, "no")
    runner.tick()
    assert seen_by(api_client, friend) == []
    info = api_client.post(method_url(friend, "getContactInfo"), {"chatId": authorized_instance.wid}, format="json")
    assert isinstance(info.json()["lastSeen"], int)
