"""The cabinet's group chat: sender names on bubbles, the group info panel, and the
sandbox actions of simulated members (server-rendered, Django test client)."""

from __future__ import annotations

from django.test import Client

from engines.emulator.models import EmuMessage
from instances.models import Account
from tests.dashboard.conftest import owner_client  # noqa: F401 - fixture
from tests.factories import make_instance
from tests.groups.helpers import ALICE, BOB, members, wid, with_contacts
from tests.journals.emulated import tick


def test_the_group_chat_shows_senders_and_the_info_panel(owner_client: Client, account: Account) -> None:  # noqa: F811
    from engines.emulator import triggers as emulator_events

    instance = with_contacts(make_instance(account, authorized=True), ALICE, BOB)
    group_id = emulator_events.contact_creates_group(
        instance, phone=ALICE, subject="Book club", participants=[BOB]
    )
    emulator_events.contact_posts_in_group(
        instance, group_id=group_id, phone=BOB, kind="textMessage", fields={"message": "chapter 3 tonight"}
    )
    tick()
    page = owner_client.get(f"/dashboard/instances/{instance.id}/chats/{group_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h2 data-chat-name>Book club</h2>" in html
    assert "chapter 3 tonight" in html
    assert 'class="bubble-sender">Contact 2<' in html  # Bob's profile name as the sender
    assert f'data-member="{wid(ALICE)}"' in html and "badge-creator" in html
    assert "https://chat.whatsapp.com/" in html
    chats = owner_client.get(f"/dashboard/instances/{instance.id}/chats/").content.decode()
    assert "Book club" in chats


def test_sandbox_actions_change_the_group(owner_client: Client, account: Account) -> None:  # noqa: F811
    from engines.emulator import triggers as emulator_events

    instance = with_contacts(make_instance(account, authorized=True), ALICE, BOB)
    group_id = emulator_events.contact_creates_group(
        instance, phone=ALICE, subject="Club", participants=[BOB]
    )
    url = f"/dashboard/instances/{instance.id}/chats/{group_id}/group-action/"
    r = owner_client.post(url, {"phone": BOB, "action": "post", "text": "from the sandbox"})
    assert r.status_code == 302
    assert EmuMessage.objects.filter(chat_id=group_id, recipient=instance.phone, sender=BOB).exists()
    owner_client.post(url, {"phone": ALICE, "action": "promote"})
    assert members(group_id)[instance.phone] == (True, False)
    owner_client.post(url, {"phone": BOB, "action": "rename", "text": "Renamed club"})
    from engines.emulator.models import EmuGroup

    assert EmuGroup.objects.get(group_id=group_id).picture == ""
    r = owner_client.post(url, {"phone": ALICE, "action": "picture", "text": "blue"}, follow=True)
    assert "Done:" in r.content.decode()
    assert EmuGroup.objects.get(group_id=group_id).picture  # Alice (creator, admin) set one
    owner_client.post(url, {"phone": ALICE, "action": "remove"})
    assert instance.phone not in members(group_id)
    # A refusal is shown, not raised: Bob is no admin.
    r = owner_client.post(url, {"phone": BOB, "action": "add"}, follow=True)
    assert "not-enough-rights" in r.content.decode()
    assert instance.phone not in members(group_id)


def test_another_owner_cannot_use_the_sandbox(client: Client, account: Account) -> None:
    from engines.emulator import triggers as emulator_events
    from tests.factories import AccountFactory

    instance = with_contacts(make_instance(account, authorized=True), ALICE, BOB)
    group_id = emulator_events.contact_creates_group(
        instance, phone=ALICE, subject="Club", participants=[BOB]
    )
    client.force_login(AccountFactory().user)
    r = client.post(
        f"/dashboard/instances/{instance.id}/chats/{group_id}/group-action/",
        {"phone": ALICE, "action": "remove"},
    )
    assert r.status_code == 404
    assert instance.phone in members(group_id)
