"""``manage.py emulator``: the control API's operations from a shell."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from engines.emulator.models import EmuContact
from instances import services
from instances.models import Instance, State
from instances.runner import Runner
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


def emulator(*args: str) -> str:
    out = StringIO()
    call_command("emulator", *args, stdout=out)
    return out.getvalue()


def test_scan_links_the_phone_and_a_tick_authorizes(instance: Instance) -> None:
    out = emulator("scan", str(instance.pk), "+79002220001", "--name", "Dora")

    assert out.strip() == f"{instance.pk}: starting 79002220001@c.us"
    Runner(runner_id="test-runner", ttl=30).tick()
    fresh = Instance.objects.get(pk=instance.pk)
    assert (fresh.state, fresh.wid, fresh.profile_name) == (State.AUTHORIZED, "79002220001@c.us", "Dora")


def test_scan_of_an_authorized_instance_fails(authorized_instance: Instance) -> None:
    with pytest.raises(CommandError, match="already authorized"):
        emulator("scan", str(authorized_instance.pk), "79002220002")


def test_confirm_code(instance: Instance) -> None:
    code = services.request_pairing_code(instance, phone="79002220003")

    out = emulator("confirm-code", str(instance.pk), code)

    assert out.strip() == f"{instance.pk}: starting 79002220003@c.us"


def test_confirm_wrong_code_fails(instance: Instance) -> None:
    services.request_pairing_code(instance, phone="79002220004")
    with pytest.raises(CommandError, match="wrong pairing code"):
        emulator("confirm-code", str(instance.pk), "ZZZZZZZZ")
    assert Instance.objects.get(pk=instance.pk).state == State.NOT_AUTHORIZED


@pytest.mark.parametrize("state", ["blocked", "yellowCard"])
def test_set_state(authorized_instance: Instance, state: str) -> None:
    out = emulator("set-state", str(authorized_instance.pk), state)

    assert out.startswith(f"{authorized_instance.pk}: {state} ")
    assert Instance.objects.get(pk=authorized_instance.pk).state == state


@pytest.mark.parametrize("state", ["bogus", "notAuthorized"])
def test_set_state_refuses_unknown_states(authorized_instance: Instance, state: str) -> None:
    with pytest.raises(CommandError):
        emulator("set-state", str(authorized_instance.pk), state)
    assert Instance.objects.get(pk=authorized_instance.pk).state == State.AUTHORIZED


def test_set_state_authorized_needs_pairing(instance: Instance) -> None:
    with pytest.raises(CommandError, match="pair the instance first"):
        emulator("set-state", str(instance.pk), "authorized")


def test_add_contact(authorized_instance: Instance) -> None:
    emulator("add-contact", str(authorized_instance.pk), "+79002220005", "--name", "Eve", "--unregistered", "--script", "echo")

    contact = EmuContact.objects.select_related("owner", "contact").get()
    assert contact.owner.phone == authorized_instance.phone
    assert (contact.contact.phone, contact.name, contact.contact.registered, contact.contact.script) == (
        "79002220005", "Eve", False, "echo",
    )


def test_add_contact_needs_pairing(instance: Instance) -> None:
    with pytest.raises(CommandError, match="pair the instance first"):
        emulator("add-contact", str(instance.pk), "79002220006")
    assert EmuContact.objects.count() == 0


@pytest.mark.parametrize("case", ["unknown", "deleted", "waweb"])
def test_unknown_or_non_emulator_instance_fails(instance: Instance, case: str) -> None:
    pk = instance.pk
    if case == "unknown":
        pk += 1
    elif case == "deleted":
        services.delete_instance(instance)
    else:
        pk = make_instance(instance.account, engine="waweb").pk
    with pytest.raises(CommandError, match="no such emulator instance"):
        emulator("scan", str(pk), "79002220007")
