"""Engine harnesses for the conformance suite (``tests/engines/test_conformance.py``)
and the method coverage test (``tests/engines/method_coverage.py``, run from one
module per engine, ``tests/engines/test_method_coverage_<engine>.py``).

A harness knows two things about one engine that the suite cannot know from the
contract: how to get an instance of it (authorized, or not yet paired), and how to
look at, and act as, *the other side* (the WhatsApp network the engine talks to: the
emulated network, a fake Graph API, a fake whatsmeow peer). The suite itself only
speaks the contract (``engines.contract``, ``engines.registry``) and the wire API.

Adding an engine (``cloud``, ``waweb``):

1. Subclass ``Harness`` below (in ``tests/engines/<engine>/harness.py`` if it needs
   fixtures of its own), set ``engine`` and ``reports`` (the event kinds the engine
   can report), implement ``authorized`` and ``unpaired``, and whichever observers and
   causes your other side can do. Leave the rest: a check whose observer or cause is
   not implemented is skipped with the reason, never passed silently, and a check of a
   command the engine's ``EngineSpec`` does not list is run as a refusal check instead.
2. Register it in ``HARNESSES`` (``register(MyHarness)``; import it at the bottom of
   this module so the suite sees it).
3. If the engine needs something around each test (a fake server, a session
   process), give the harness an ``active()`` context manager; the suite enters it.

Everything here is deterministic: ``settle()`` runs the engine's session work once
(for the emulator: one runner tick with every simulated delay at zero), it never
sleeps and waits for time to pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from engines import events
from instances.models import Account, Instance


class NotObservable(Exception):
    """This engine's other side cannot show (or do) that; the check is skipped."""


class Harness:
    """How the suite drives one engine. Methods raise ``NotObservable`` by default."""

    engine: ClassVar[str] = ""
    # Event kinds (engines.events) this engine reports; the suite causes each one.
    reports: ClassVar[frozenset[type]] = frozenset()

    # --- Instances -------------------------------------------------------------------

    def authorized(self, account: Account) -> Instance:
        """An instance of this engine, paired and ``authorized``."""
        raise NotObservable("authorized")

    def unpaired(self, account: Account) -> Instance:
        """An instance of this engine that has not been paired yet (``notAuthorized``)."""
        raise NotObservable("unpaired")

    def create_fields(self) -> dict[str, Any]:
        """What createInstance needs beside ``engine`` for this engine (its Relay
        extension field, e.g. the cloud engine's credentials)."""
        return {}

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Whatever must run around a test (fake servers, settings)."""
        yield

    def settle(self) -> None:
        """Let the engine's session do what it has to (one pass, no waiting)."""

    # --- The other side ----------------------------------------------------------------

    def peer(self, instance: Instance, name: str = "Peer") -> str:
        """The chat id of another WhatsApp user the instance may write to."""
        raise NotObservable("peer")

    def nobody(self) -> str:
        """A chat id with no WhatsApp account behind it."""
        return "79990000000@c.us"

    def received(self, instance: Instance, chat_id: str, id_message: str) -> dict[str, Any] | None:
        """What ``chat_id``'s side got for ``id_message`` (its messageData), or None."""
        raise NotObservable("received")

    def presence(self, instance: Instance, chat_id: str) -> str | None:
        """What ``chat_id``'s side sees the instance doing now (``composing``, …)."""
        raise NotObservable("presence")

    def seen_read(self, instance: Instance, chat_id: str, id_message: str) -> bool:
        """Whether ``chat_id``'s side sees its message ``id_message`` read by us."""
        raise NotObservable("seen_read")

    def avatar_seen(self, instance: Instance) -> str:
        """The picture others see for the instance's account (a URL, '' for none)."""
        raise NotObservable("avatar_seen")

    def address_book(self, instance: Instance) -> dict[str, str]:
        """The linked phone's address book: chat id -> saved name."""
        raise NotObservable("address_book")

    def group_members(self, instance: Instance, group_id: str) -> dict[str, bool]:
        """The group's members as the network has them: chat id -> is admin."""
        raise NotObservable("group_members")

    def group_subject(self, instance: Instance, group_id: str) -> str:
        raise NotObservable("group_subject")

    def group_settings(self, instance: Instance, group_id: str) -> tuple[bool, bool]:
        """(only admins send, only admins edit) as the network has them."""
        raise NotObservable("group_settings")

    def status_live(self, instance: Instance, id_message: str) -> bool:
        """Whether the instance's status ``id_message`` is still shown to viewers."""
        raise NotObservable("status_live")

    def call_seen(self, instance: Instance, chat_id: str) -> str:
        """The call state ``chat_id``'s side is in with the instance (``idle`` when none)."""
        raise NotObservable("call_seen")

    def linked(self, instance: Instance) -> bool:
        """Whether the account still has this instance as a linked device."""
        raise NotObservable("linked")

    # --- The other side acts (events) --------------------------------------------------

    def peer_sends_text(self, instance: Instance, chat_id: str, text: str) -> str:
        """``chat_id`` writes to the instance; returns the message id."""
        raise NotObservable("peer_sends_text")

    def phone_sends_text(self, instance: Instance, chat_id: str, text: str) -> str:
        """The instance's phone (or another linked device) writes to ``chat_id``."""
        raise NotObservable("phone_sends_text")

    def peer_calls(self, instance: Instance, chat_id: str, outcome: str) -> str:
        """``chat_id`` calls the instance; the call ends with ``outcome``. Returns the call id."""
        raise NotObservable("peer_calls")

    def peer_blocks(self, instance: Instance, chat_id: str) -> None:
        raise NotObservable("peer_blocks")

    def peer_adds_to_group(self, instance: Instance, chat_id: str, subject: str) -> str:
        """``chat_id`` creates a group with the instance in it; returns its id."""
        raise NotObservable("peer_adds_to_group")

    def peer_posts_status(self, instance: Instance, chat_id: str, text: str) -> str:
        """``chat_id`` posts a text status the instance may see; returns its id."""
        raise NotObservable("peer_posts_status")

    def peer_views_status(self, instance: Instance, id_message: str) -> None:
        """The audience of the instance's status ``id_message`` gets and views it."""
        raise NotObservable("peer_views_status")

    def peer_reads(self, instance: Instance, chat_id: str, id_message: str) -> None:
        """``chat_id``'s side gets and reads the instance's message ``id_message``."""
        raise NotObservable("peer_reads")

    def phone_syncs_history(self, instance: Instance, chat_id: str, messages: int) -> None:
        """The phone hands the device ``messages`` earlier messages of ``chat_id``."""
        raise NotObservable("phone_syncs_history")

    def pair(self, instance: Instance) -> None:
        """Pair an unpaired instance the way a user would (scan the QR code)."""
        raise NotObservable("pair")


HARNESSES: dict[str, type[Harness]] = {}


def register(cls: type[Harness]) -> type[Harness]:
    HARNESSES[cls.engine] = cls
    return cls


# --- The emulator --------------------------------------------------------------------


@register
class EmulatorHarness(Harness):
    """The emulated network is the other side: its tables are what the peers see."""

    engine = "emulator"
    reports = frozenset(
        {
            events.MessageEvent,
            events.ReceiptEvent,
            events.StateEvent,
            events.CallEvent,
            events.BlockEvent,
            events.GroupEvent,
            events.StatusViewEvent,
            events.HistoryEvent,
        }
    )
    _phones = 0

    def _next_phone(self, instance: Instance) -> str:
        EmulatorHarness._phones += 1
        return f"7955{instance.pk % 100_000:05d}{EmulatorHarness._phones % 100:02d}"

    def authorized(self, account: Account) -> Instance:
        from tests.factories import make_instance

        return make_instance(account, authorized=True)

    def unpaired(self, account: Account) -> Instance:
        from tests.factories import make_instance

        return make_instance(account)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        from django.test import override_settings

        # Simulated contacts answer at once: one tick does what seconds would.
        with override_settings(
            EMULATOR_STARTUP_SECONDS=0.0,
            EMULATOR_DELIVERED_AFTER_SECONDS=0.0,
            EMULATOR_READ_AFTER_SECONDS=0.0,
            EMULATOR_STATUS_DELIVERED_AFTER_SECONDS=0.0,
            EMULATOR_STATUS_READ_AFTER_SECONDS=0.0,
        ):
            yield

    def settle(self) -> None:
        from instances.runner import Runner

        runner = Runner(runner_id="conformance", ttl=60)
        try:
            runner.tick()
        finally:
            runner.shutdown()

    @staticmethod
    def _digits(chat_id: str) -> str:
        return chat_id.split("@", 1)[0]

    def peer(self, instance: Instance, name: str = "Peer") -> str:
        from engines.emulator.services import add_simulated_contact

        phone = self._next_phone(instance)
        add_simulated_contact(owner_phone=instance.phone or phone, phone=phone, name=name, account_id=instance.account_id)
        return f"{phone}@c.us"

    def received(self, instance: Instance, chat_id: str, id_message: str) -> dict[str, Any] | None:
        from engines.emulator.models import EmuMessage

        row = EmuMessage.objects.filter(sender=instance.phone, id_message=id_message, chat_id=chat_id).first()
        return dict(row.message_data or row.payload) if row is not None else None

    def presence(self, instance: Instance, chat_id: str) -> str | None:
        from engines.emulator.transport import presences_seen_by

        seen = [p for p in presences_seen_by(self._digits(chat_id)) if p.phone == instance.phone]
        return seen[-1].kind if seen else None

    def seen_read(self, instance: Instance, chat_id: str, id_message: str) -> bool:
        from engines.emulator.models import EmuMessage

        return EmuMessage.objects.filter(
            sender=self._digits(chat_id), recipient=instance.phone, id_message=id_message, read_at__isnull=False
        ).exists()

    def avatar_seen(self, instance: Instance) -> str:
        from engines.emulator.models import EmuPhone

        return EmuPhone.objects.get(phone=instance.phone).avatar

    def address_book(self, instance: Instance) -> dict[str, str]:
        from engines.emulator.models import EmuContact

        rows = EmuContact.objects.filter(owner__phone=instance.phone).values_list("contact__phone", "name")
        return {f"{phone}@c.us": name for phone, name in rows}

    def group_members(self, instance: Instance, group_id: str) -> dict[str, bool]:
        from engines.emulator.models import EmuGroupMember

        rows = EmuGroupMember.objects.filter(group__group_id=group_id).values_list("phone", "is_admin")
        return {f"{phone}@c.us": admin for phone, admin in rows}

    def group_subject(self, instance: Instance, group_id: str) -> str:
        from engines.emulator.models import EmuGroup

        return EmuGroup.objects.get(group_id=group_id).subject

    def group_settings(self, instance: Instance, group_id: str) -> tuple[bool, bool]:
        from engines.emulator.models import EmuGroup

        group = EmuGroup.objects.get(group_id=group_id)
        return group.only_admins_send, group.only_admins_edit

    def status_live(self, instance: Instance, id_message: str) -> bool:
        from engines.emulator.models import EmuStatus

        return EmuStatus.objects.filter(poster=instance.phone, id_message=id_message, deleted_at__isnull=True).exists()

    def call_seen(self, instance: Instance, chat_id: str) -> str:
        from engines.emulator import calls

        return calls.status(self._digits(chat_id)).state

    def linked(self, instance: Instance) -> bool:
        fresh = Instance.objects.get(pk=instance.pk)
        return bool(fresh.wid)

    def peer_sends_text(self, instance: Instance, chat_id: str, text: str) -> str:
        from engines.emulator import triggers

        sent = triggers.contact_sends(instance, phone=self._digits(chat_id), kind="textMessage", fields={"message": text})
        return sent.id_message

    def phone_sends_text(self, instance: Instance, chat_id: str, text: str) -> str:
        from engines.emulator import triggers

        sent = triggers.phone_sends(instance, phone=self._digits(chat_id), kind="textMessage", fields={"message": text})
        return sent.id_message

    def peer_calls(self, instance: Instance, chat_id: str, outcome: str) -> str:
        from engines.emulator import triggers

        return triggers.contact_calls(instance, phone=self._digits(chat_id), outcome=outcome)

    def peer_blocks(self, instance: Instance, chat_id: str) -> None:
        from engines.emulator import triggers

        triggers.contact_blocks(instance, phone=self._digits(chat_id))

    def peer_adds_to_group(self, instance: Instance, chat_id: str, subject: str) -> str:
        from engines.emulator import triggers

        return triggers.contact_creates_group(instance, phone=self._digits(chat_id), subject=subject, participants=[])

    def peer_posts_status(self, instance: Instance, chat_id: str, text: str) -> str:
        from engines.emulator.statuses import contact_posts_status

        return contact_posts_status(instance, phone=self._digits(chat_id), kind="text", fields={"message": text}).id_message

    def peer_views_status(self, instance: Instance, id_message: str) -> None:
        self.settle()  # simulated viewers deliver and view at once (active())

    def peer_reads(self, instance: Instance, chat_id: str, id_message: str) -> None:
        self.settle()  # simulated contacts deliver and read at once (active())

    def phone_syncs_history(self, instance: Instance, chat_id: str, messages: int) -> None:
        from engines.emulator.seed import SeedChat, seed

        seed(instance, chats=[SeedChat(phone=self._digits(chat_id), name="History", messages=messages)])

    def pair(self, instance: Instance) -> None:
        from engines.emulator import pairing

        pairing.link_phone(instance, phone=self._next_phone(instance), name="Paired Phone")


# --- Engines with harnesses of their own -----------------------------------------------

from tests.engines.cloud import harness as _cloud_harness  # noqa: E402, F401 - registers CloudHarness
from tests.engines.waweb import harness as _waweb_harness  # noqa: E402, F401 - registers WawebHarness
