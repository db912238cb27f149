"""A user never sees or changes another user's instance: 404 on every instance URL."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from instances.models import Instance
from tests.factories import make_instance

GET_NAMES = ["instance", "delete", "settings", "console", "chats", "notifications", "webhooks", "usage", "sandbox"]
POST_NAMES = [
    "rename", "delete", "rotate_token", "link_phone", "pairing_code", "confirm_code", "logout_instance", "reboot",
    "settings", "test_webhook", "console_send", "sandbox_contact", "sandbox_send", "sandbox_call", "sandbox_block",
    "sandbox_state",
]


@pytest.mark.parametrize("name", GET_NAMES)
def test_get_of_another_users_instance_is_404(owner_client: Client, stranger_instance: Instance, name: str) -> None:
    assert owner_client.get(reverse(f"dashboard:{name}", args=[stranger_instance.id])).status_code == 404


@pytest.mark.parametrize("name", POST_NAMES)
def test_post_to_another_users_instance_is_404_and_changes_nothing(
    owner_client: Client, stranger_instance: Instance, name: str
) -> None:
    before = Instance.objects.values().get(pk=stranger_instance.pk)
    response = owner_client.post(
        reverse(f"dashboard:{name}", args=[stranger_instance.id]),
        {"confirm_id": str(stranger_instance.id), "name": "mine now", "link-phone": "79001112233", "__method": "getSettings"},
    )
    assert response.status_code == 404
    assert Instance.objects.values().get(pk=stranger_instance.pk) == before


def test_chat_of_another_users_instance_is_404(owner_client: Client, stranger_instance: Instance) -> None:
    url = reverse("dashboard:chat", args=[stranger_instance.id, "79001234567@c.us"])
    assert owner_client.get(url).status_code == 404


def test_unknown_and_deleted_instances_are_404_too(owner_client: Client, instance: Instance) -> None:
    assert owner_client.get(reverse("dashboard:instance", args=[1])).status_code == 404
    instance.is_deleted = True
    instance.save(update_fields=["is_deleted"])
    assert owner_client.get(reverse("dashboard:instance", args=[instance.id])).status_code == 404


def test_other_users_instances_are_not_listed(owner_client: Client, instance: Instance, stranger_instance: Instance) -> None:
    body = owner_client.get(reverse("dashboard:instances")).content.decode()
    assert str(instance.id) in body
    assert str(stranger_instance.id) not in body


@pytest.mark.parametrize("name", ["instances", "account", "create"])
def test_anonymous_users_are_sent_to_login(client: Client, db: None, name: str) -> None:
    response = client.get(reverse(f"dashboard:{name}"))
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login/?next=")


def test_anonymous_instance_url_redirects_without_revealing_it(client: Client, instance: Instance) -> None:
    response = client.get(reverse("dashboard:instance", args=[instance.id]))
    assert response.status_code == 302


def test_staff_do_not_see_customers_instances_in_the_cabinet(client: Client, instance: Instance) -> None:
    staff = make_instance().account.user
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    client.force_login(staff)
    assert client.get(reverse("dashboard:instance", args=[instance.id])).status_code == 404
