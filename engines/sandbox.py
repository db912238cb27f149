"""The sandbox: what an engine that simulates the other side of WhatsApp lets the
cabinet do — be a contact who writes, calls, blocks, posts a status or acts in a
group, scan the QR code with a simulated phone, force a state to test client code.

Only the emulator has one. The cabinet asks ``engines.registry.sandbox(engine)``
and gets this protocol (or None), so it never imports an engine; every refusal is a
``SandboxError`` whose message is written for the person using the cabinet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rest_framework import serializers

    from instances.models import Instance


class SandboxError(Exception):
    """The simulated network refuses the action (unknown message, another tenant's
    number, not paired…); the message says why."""


@dataclass(frozen=True)
class SimulatedContact:
    """An entry of the paired phone's address book on the simulated network."""

    phone: str
    name: str  # as saved in the address book ("" when unnamed)
    profile_name: str  # the contact's own profile name
    registered: bool = True  # False: the number has no WhatsApp account
    script: str = ""  # scripted behaviour, e.g. "echo"


@dataclass(frozen=True)
class NetworkMessage:
    """A message the simulated network carried to or from the paired phone."""

    id_message: str
    sender: str  # phone digits
    recipient: str  # phone digits ("" for a group message's sender copy)
    type_message: str
    message_data: dict[str, Any] = field(default_factory=dict)


class Sandbox(Protocol):
    """The sandbox operations, each for one instance of the engine."""

    # typeMessage -> the serializer of its fields (the forms are generated from it).
    kind_fields: Mapping[str, type[serializers.Serializer[Any]]]
    # States the sandbox may force, with their labels.
    forceable_states: tuple[tuple[str, str], ...]

    def contacts(self, instance: Instance) -> list[SimulatedContact]: ...

    def add_contact(
        self, instance: Instance, *, phone: str, name: str, registered: bool, script: str, call_rule: str | None
    ) -> None: ...

    def scan_qr(self, instance: Instance, *, phone: str, name: str) -> None:
        """A simulated phone scans the instance's QR code (links it)."""
        ...

    def type_pairing_code(self, instance: Instance, *, code: str) -> None:
        """The phone types the pairing code the instance was given."""
        ...

    def force_state(self, instance: Instance, state: str) -> None: ...

    def contact_sends(
        self, instance: Instance, *, phone: str, kind: str, fields: dict[str, Any], name: str = ""
    ) -> str:
        """A contact writes to the paired phone; returns the message id."""
        ...

    def phone_sends(self, instance: Instance, *, phone: str, kind: str, fields: dict[str, Any]) -> str:
        """The paired phone itself writes to a contact (another device of the
        account); returns the message id."""
        ...

    def contact_reads(self, instance: Instance, *, phone: str) -> int:
        """The contact reads what the instance sent it now; returns how many."""
        ...

    def recent_messages(self, instance: Instance, *, limit: int) -> list[NetworkMessage]: ...

    def sent_polls(self, instance: Instance, *, limit: int) -> list[NetworkMessage]: ...

    def contact_calls(self, instance: Instance, *, phone: str, outcome: str) -> None: ...

    def is_simulated(self, phone: str) -> bool:
        """True when no instance on this server is linked to ``phone``."""
        ...

    def contact_acts_on_call(self, instance: Instance, *, action: str) -> None: ...

    def call_ends(self, instance: Instance, *, id_call: str, outcome: str) -> None: ...

    def contact_blocks(self, instance: Instance, *, phone: str) -> None: ...

    def contact_posts_status(
        self, instance: Instance, *, phone: str, kind: str, fields: dict[str, Any], name: str = ""
    ) -> None: ...

    def contact_posts_in_group(
        self, instance: Instance, *, group_id: str, phone: str, kind: str, fields: dict[str, Any]
    ) -> None: ...

    def contact_acts_in_group(
        self, instance: Instance, *, group_id: str, phone: str, action: str, subject: str = "", picture: bytes = b""
    ) -> None: ...
