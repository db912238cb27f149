"""The emulator's sandbox (``engines.sandbox.Sandbox``): the cabinet's way to act as
the other side of the simulated network. A thin adapter: every operation is the
control API's own service, its refusals become ``SandboxError``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.db.models import Q
from rest_framework import serializers

from engines.emulator import calls, pairing, triggers
from engines.emulator.models import EmuContact, EmuMessage
from engines.emulator.phones import PhoneClaimed, check_may_act_as
from engines.emulator.services import FORCEABLE_STATES, add_simulated_contact
from engines.emulator.session import read_receipts
from engines.emulator.statuses import StatusEventError, contact_posts_status
from engines.emulator.triggers_api import KIND_FIELDS
from engines.sandbox import NetworkMessage, Sandbox, SandboxError, SimulatedContact
from instances.models import Instance, State
from instances.services import ServiceError


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except (triggers.EventError, StatusEventError, ServiceError, PhoneClaimed) as exc:
        raise SandboxError(str(exc)) from exc


def _message(row: EmuMessage) -> NetworkMessage:
    return NetworkMessage(row.id_message, row.sender, row.recipient, row.type_message, dict(row.message_data or {}))


class EmulatorSandbox:
    # In the order the emulator offers them (its builders' order).
    kind_fields: Mapping[str, type[serializers.Serializer[Any]]] = {k: KIND_FIELDS[k] for k in triggers.MESSAGE_KINDS}
    forceable_states = tuple((s.value, s.label if s.label != s.value else s.value) for s in FORCEABLE_STATES)

    def contacts(self, instance: Instance) -> list[SimulatedContact]:
        if not instance.phone:
            return []
        rows = EmuContact.objects.filter(owner__phone=instance.phone).select_related("contact").order_by("contact__phone")
        return [
            SimulatedContact(r.contact.phone, r.name, r.contact.name, r.contact.registered, r.contact.script) for r in rows
        ]

    def add_contact(
        self, instance: Instance, *, phone: str, name: str, registered: bool, script: str, call_rule: str | None
    ) -> None:
        with _refusals():
            add_simulated_contact(
                account_id=instance.account_id, owner_phone=instance.phone, phone=phone, name=name,
                registered=registered, script=script, call_rule=call_rule,
            )  # fmt: skip

    def scan_qr(self, instance: Instance, *, phone: str, name: str) -> None:
        with _refusals():
            pairing.link_phone(instance, phone=phone, name=name)

    def type_pairing_code(self, instance: Instance, *, code: str) -> None:
        with _refusals():
            pairing.confirm_pairing_code(instance, code=code)

    def force_state(self, instance: Instance, state: str) -> None:
        with _refusals():
            pairing.set_state_for_testing(instance, state)

    def contact_sends(self, instance: Instance, *, phone: str, kind: str, fields: dict[str, Any], name: str = "") -> str:
        with _refusals():
            return triggers.contact_sends(instance, phone=phone, kind=kind, fields=fields, name=name).id_message

    def phone_sends(self, instance: Instance, *, phone: str, kind: str, fields: dict[str, Any]) -> str:
        with _refusals():
            return triggers.phone_sends(instance, phone=phone, kind=kind, fields=fields).id_message

    def contact_reads(self, instance: Instance, *, phone: str) -> int:
        if not instance.phone or instance.state != State.AUTHORIZED:
            raise SandboxError("the instance must be authorized on the emulator (pair it first)")
        with _refusals():
            check_may_act_as(phone, instance.account_id)  # only a number's tenant reads as it
        return len(read_receipts(phone, instance.phone))

    def recent_messages(self, instance: Instance, *, limit: int) -> list[NetworkMessage]:
        if not instance.phone:
            return []
        rows = (
            EmuMessage.objects.filter(Q(sender=instance.phone) | Q(recipient=instance.phone))
            .order_by("-id")
            .only("id_message", "sender", "recipient", "type_message", "message_data")[:limit]
        )
        return [_message(r) for r in rows]

    def sent_polls(self, instance: Instance, *, limit: int) -> list[NetworkMessage]:
        if not instance.phone:
            return []
        rows = EmuMessage.objects.filter(sender=instance.phone, type_message="pollMessage").order_by("-id")[:limit]
        return [_message(r) for r in rows]

    def contact_calls(self, instance: Instance, *, phone: str, outcome: str) -> None:
        with _refusals():
            triggers.contact_calls(instance, phone=phone, outcome=outcome)

    def is_simulated(self, phone: str) -> bool:
        return calls.is_simulated(phone)

    def contact_acts_on_call(self, instance: Instance, *, action: str) -> None:
        with _refusals():
            triggers.contact_acts_on_call(instance, action=action)

    def call_ends(self, instance: Instance, *, id_call: str, outcome: str) -> None:
        with _refusals():
            triggers.call_ends(instance, id_call=id_call, outcome=outcome)

    def contact_blocks(self, instance: Instance, *, phone: str) -> None:
        with _refusals():
            triggers.contact_blocks(instance, phone=phone)

    def contact_posts_status(
        self, instance: Instance, *, phone: str, kind: str, fields: dict[str, Any], name: str = ""
    ) -> None:
        with _refusals():
            contact_posts_status(instance, phone=phone, kind=kind, fields=fields, name=name)

    def contact_posts_in_group(
        self, instance: Instance, *, group_id: str, phone: str, kind: str, fields: dict[str, Any]
    ) -> None:
        with _refusals():
            triggers.contact_posts_in_group(instance, group_id=group_id, phone=phone, kind=kind, fields=fields)

    def contact_acts_in_group(
        self, instance: Instance, *, group_id: str, phone: str, action: str, subject: str = "", picture: bytes = b""
    ) -> None:
        with _refusals():
            triggers.contact_acts_in_group(
                instance, group_id=group_id, phone=phone, action=action, subject=subject, picture=picture
            )


# Typed as the protocol: mypy checks the emulator against ``engines.sandbox``.
SANDBOX: Sandbox = EmulatorSandbox()
