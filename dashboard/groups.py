"""Group chats in the cabinet: the info panel (subject, picture, members with admin
badges, invite link) and the sandbox actions of simulated members."""

from __future__ import annotations

from dataclasses import dataclass

from engines.contract import TransportError
from engines.registry import get_transport
from groups import services
from instances.models import Instance
from journals.chats import ChatError


@dataclass(frozen=True)
class PanelMember:
    chat_id: str
    name: str
    is_admin: bool
    is_super_admin: bool
    is_me: bool


@dataclass(frozen=True)
class GroupPanel:
    group_id: str
    subject: str
    picture_url: str
    invite_link: str
    owner: str
    only_admins_send: bool
    only_admins_edit: bool
    members: list[PanelMember]


def group_panel(instance: Instance, chat_id: str) -> GroupPanel | None:
    """What the account knows of the group now; None when it is not a member (it
    left or was removed) or the engine has no groups."""
    if not chat_id.endswith("@g.us"):
        return None
    try:
        group = services.get_group_data(instance, group_id=chat_id)
        names = {c.chat_id: c.contact_name or c.name for c in get_transport(instance).contacts()}
    except (TransportError, ChatError):
        return None
    members = [
        PanelMember(
            chat_id=p.chat_id,
            name="You" if p.chat_id == instance.wid else names.get(p.chat_id, ""),
            is_admin=p.is_admin,
            is_super_admin=p.is_super_admin,
            is_me=p.chat_id == instance.wid,
        )
        for p in group.participants
    ]
    return GroupPanel(
        group_id=group.group_id,
        subject=group.subject,
        picture_url=group.picture_url,
        invite_link=group.invite_link,
        owner=group.owner,
        only_admins_send=group.only_admins_send,
        only_admins_edit=group.only_admins_edit,
        members=members,
    )
