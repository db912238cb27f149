"""The group methods (API.md §9.6): the linked account creates and runs groups
through its engine's transport; the journals learn what changes the chat list.

Each service checks the account is authorized, asks the transport, and returns what
the engine answered. Refusals (unknown group, not a member, not an admin, …) come
back as ``GroupRefused`` with the engine's reason; the views turn them into
GREEN-API's in-band ``false`` answers. The transport commits its own network
writes; the chat-list touches here run after it answered, each in its own statement.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.utils import timezone

from engines.contract import GroupData, GroupRefused, Transport, TransportError
from engines.registry import get_transport
from instances.models import Instance
from journals import chats

__all__ = [
    "GroupRefused",
    "add_group_participant",
    "create_group",
    "get_group_data",
    "leave_group",
    "remove_admin",
    "remove_group_participant",
    "set_group_admin",
    "set_group_picture",
    "update_group_name",
    "update_group_settings",
]


@contextmanager
def _engine(instance: Instance) -> Iterator[Transport]:
    """The instance's transport. An engine that cannot do groups (no transport yet)
    answers 400 naming itself; one that cannot be reached now answers 503. Refusals
    (``GroupRefused``) go through to the views."""
    chats.check_authorized(instance)
    try:
        yield get_transport(instance)
    except GroupRefused:
        raise
    except TransportError as exc:
        raise chats.ChatError(str(exc), status=400 if exc.permanent else 503) from exc


def create_group(instance: Instance, *, name: str, chat_ids: Sequence[str]) -> GroupData:
    """createGroup: the account creates a group with the given members (those
    without WhatsApp are left out). The group enters the chat list at once."""
    with _engine(instance) as engine:
        group = engine.create_group(name=name, participants=chat_ids)
    chats.touch_chat(instance.pk, group.group_id, timezone.now(), group.subject)
    return group


def get_group_data(instance: Instance, *, group_id: str) -> GroupData:
    with _engine(instance) as engine:
        return engine.group_data(group_id=group_id)


def update_group_name(instance: Instance, *, group_id: str, name: str) -> None:
    """updateGroupName: members may rename unless only admins may edit."""
    with _engine(instance) as engine:
        engine.update_group_name(group_id=group_id, name=name)
    chats.touch_chat(instance.pk, group_id, timezone.now(), name)


def add_group_participant(instance: Instance, *, group_id: str, participant: str) -> None:
    with _engine(instance) as engine:
        engine.add_group_participant(group_id=group_id, participant=participant)


def remove_group_participant(instance: Instance, *, group_id: str, participant: str) -> None:
    with _engine(instance) as engine:
        engine.remove_group_participant(group_id=group_id, participant=participant)


def set_group_admin(instance: Instance, *, group_id: str, participant: str) -> None:
    with _engine(instance) as engine:
        engine.set_group_admin(group_id=group_id, participant=participant, admin=True)


def remove_admin(instance: Instance, *, group_id: str, participant: str) -> None:
    with _engine(instance) as engine:
        engine.set_group_admin(group_id=group_id, participant=participant, admin=False)


def set_group_picture(instance: Instance, *, group_id: str, data: bytes) -> str:
    """setGroupPicture: ``data`` passed ``instances.api.read_image_upload``."""
    with _engine(instance) as engine:
        return engine.set_group_picture(group_id=group_id, data=data)


def leave_group(instance: Instance, *, group_id: str) -> None:
    """leaveGroup: the chat stays in the chat list (as on a phone); messages to the
    group stop reaching the account from now on."""
    with _engine(instance) as engine:
        engine.leave_group(group_id=group_id)


def update_group_settings(
    instance: Instance, *, group_id: str, only_admins_send: bool | None, only_admins_edit: bool | None
) -> None:
    with _engine(instance) as engine:
        engine.update_group_settings(
            group_id=group_id, only_admins_send=only_admins_send, only_admins_edit=only_admins_edit
        )
