"""Groups on the emulated network: membership, admins, subject, picture, settings.

Every change is made *by a phone* (``actor``): an instance's linked phone through
its transport (createGroup, addGroupParticipant…), or a simulated contact through
the emulator control API. The rules are WhatsApp's: admins add, remove, promote
and demote; members change the subject and picture unless only admins may edit;
only admins change the settings; the creator (super admin) cannot be removed or
demoted. Joining (creation, being added) and renames put a ``group`` signal on the
network for the phones concerned, which their instances' sessions take in (the
group enters their chat list under its subject), in network order with messages.

These functions write network tables only (``EmuGroup``, ``EmuGroupMember``,
``EmuSignal``, ``EmuMessage``). Callers hold no locks; each change runs in its
own transaction with the group row locked, so concurrent changes serialise.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from engines.emulator.models import EmuGroup, EmuGroupMember, EmuMessage, EmuPhone, EmuSignal, SignalKind
from engines.emulator.network import jpeg_thumbnail

# WhatsApp's group size limit (participants, creator included).
MAX_MEMBERS = 1024
INVITE_PREFIX = "https://chat.whatsapp.com/"


class GroupError(Exception):
    """A group change the network refuses. ``reason`` is one of the codes below;
    the product maps them to GREEN-API's in-band answers."""

    NOT_FOUND = "item-not-found"  # no such group
    FORBIDDEN = "forbidden"  # the actor is not a member
    NOT_ENOUGH_RIGHTS = "not-enough-rights"  # a member, but not an admin
    NOT_A_PARTICIPANT = "not-a-participant"  # the target is not a member
    NOT_ON_WHATSAPP = "not-on-whatsapp"  # the target has no account
    ALREADY_PARTICIPANT = "already-participant"
    FULL = "group-full"
    SUPER_ADMIN = "super-admin"  # the creator cannot be removed or demoted

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


@dataclass(frozen=True)
class Member:
    phone: str
    is_admin: bool
    is_super_admin: bool


@dataclass(frozen=True)
class GroupView:
    """A group as its members see it (getGroupData)."""

    group_id: str
    owner: str
    subject: str
    creation: int
    subject_time: int
    subject_owner: str
    invite_code: str
    picture: str
    only_admins_send: bool
    only_admins_edit: bool
    members: tuple[Member, ...]

    @property
    def invite_link(self) -> str:
        return INVITE_PREFIX + self.invite_code


def new_group_id() -> str:
    """A new-style group id: 18 digits starting 120363 (API.md §8.2)."""
    return f"120363{secrets.randbelow(10**12):012d}@g.us"


def new_invite_code() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(22))


def _view(group: EmuGroup) -> GroupView:
    members = sorted(
        group.members.all(), key=lambda m: (not m.is_super_admin, not m.is_admin, m.joined_at, m.pk)
    )
    return GroupView(
        group_id=group.group_id,
        owner=group.owner,
        subject=group.subject,
        creation=int(group.created_at.timestamp()),
        subject_time=int(group.subject_time.timestamp()),
        subject_owner=group.subject_owner,
        invite_code=group.invite_code,
        picture=group.picture,
        only_admins_send=group.only_admins_send,
        only_admins_edit=group.only_admins_edit,
        members=tuple(Member(m.phone, m.is_admin, m.is_super_admin) for m in members),
    )


def _signal(group: EmuGroup, actor: str, phones: Iterable[str], action: str) -> None:
    """Tell ``phones`` about a change that alters their chat list (joined, subject)."""
    rows = [
        EmuSignal(
            kind=SignalKind.GROUP,
            from_phone=actor,
            to_phone=phone,
            payload={"groupId": group.group_id, "action": action, "subject": group.subject},
        )
        for phone in dict.fromkeys(phones)
    ]
    EmuSignal.objects.bulk_create(rows)


def _locked(group_id: str) -> EmuGroup:
    group = EmuGroup.objects.select_for_update().filter(group_id=group_id).first()
    if group is None:
        raise GroupError(GroupError.NOT_FOUND, f"group {group_id} does not exist")
    return group


def _membership(group: EmuGroup, phone: str) -> EmuGroupMember | None:
    return EmuGroupMember.objects.filter(group=group, phone=phone).first()


def _as_member(group: EmuGroup, actor: str) -> EmuGroupMember:
    member = _membership(group, actor)
    if member is None:
        raise GroupError(GroupError.FORBIDDEN, f"+{actor} is not a member of {group.group_id}")
    return member


def _as_admin(group: EmuGroup, actor: str) -> EmuGroupMember:
    member = _as_member(group, actor)
    if not member.is_admin:
        raise GroupError(GroupError.NOT_ENOUGH_RIGHTS, f"+{actor} is not an admin of {group.group_id}")
    return member


def _as_editor(group: EmuGroup, actor: str) -> EmuGroupMember:
    """Subject and picture: any member, unless only admins may edit."""
    member = _as_member(group, actor)
    if group.only_admins_edit and not member.is_admin:
        raise GroupError(GroupError.NOT_ENOUGH_RIGHTS, f"only admins may edit {group.group_id}")
    return member


def _registered(phone: str) -> bool:
    return EmuPhone.objects.filter(phone=phone, registered=True).exists()


# --- Reads ---------------------------------------------------------------------------------


def group_view(group_id: str, *, actor: str) -> GroupView:
    """The group as ``actor`` (a member) sees it; GroupError when unknown or not a member."""
    group = EmuGroup.objects.filter(group_id=group_id).first()
    if group is None:
        raise GroupError(GroupError.NOT_FOUND, f"group {group_id} does not exist")
    _as_member(group, actor)
    return _view(group)


def subjects(group_ids: Iterable[str]) -> dict[str, str]:
    return dict(EmuGroup.objects.filter(group_id__in=set(group_ids)).values_list("group_id", "subject"))


def groups_of(phone: str) -> list[GroupView]:
    """The groups ``phone`` is in, oldest first."""
    rows = (
        EmuGroup.objects.filter(members__phone=phone).order_by("created_at", "pk").prefetch_related("members")
    )
    return [_view(group) for group in rows]


# --- Changes -------------------------------------------------------------------------------


def create_group(*, actor: str, subject: str, participants: Sequence[str]) -> GroupView:
    """``actor`` creates a group with the ``participants`` (phones) that have an
    account; the others are left out, as WhatsApp does. The creator is super admin."""
    wanted = [p for p in dict.fromkeys(participants) if p != actor]
    present = set(EmuPhone.objects.filter(phone__in=wanted, registered=True).values_list("phone", flat=True))
    members = [p for p in wanted if p in present][: MAX_MEMBERS - 1]
    now = timezone.now()
    with transaction.atomic():
        group = EmuGroup.objects.create(
            group_id=new_group_id(),
            owner=actor,
            subject=subject,
            subject_time=now,
            subject_owner=actor,
            invite_code=new_invite_code(),
            created_at=now,
        )
        EmuGroupMember.objects.bulk_create(
            [EmuGroupMember(group=group, phone=actor, is_admin=True, is_super_admin=True, joined_at=now)]
            + [EmuGroupMember(group=group, phone=p, joined_at=now) for p in members]
        )
        _signal(group, actor, [actor, *members], "join")
        return _view(group)


def rename_group(group_id: str, *, actor: str, subject: str) -> None:
    with transaction.atomic():
        group = _locked(group_id)
        _as_editor(group, actor)
        group.subject = subject
        group.subject_time = timezone.now()
        group.subject_owner = actor
        group.save(update_fields=["subject", "subject_time", "subject_owner"])
        phones = list(group.members.values_list("phone", flat=True))
        _signal(group, actor, phones, "subject")


def add_participant(group_id: str, *, actor: str, phone: str) -> None:
    with transaction.atomic():
        group = _locked(group_id)
        _as_admin(group, actor)
        if _membership(group, phone) is not None:
            raise GroupError(GroupError.ALREADY_PARTICIPANT, f"+{phone} is already in {group_id}")
        if not _registered(phone):
            raise GroupError(GroupError.NOT_ON_WHATSAPP, f"+{phone} has no WhatsApp account")
        if group.members.count() >= MAX_MEMBERS:
            raise GroupError(GroupError.FULL, f"{group_id} has {MAX_MEMBERS} members")
        EmuGroupMember.objects.create(group=group, phone=phone)
        _signal(group, actor, [phone], "join")


def remove_participant(group_id: str, *, actor: str, phone: str) -> None:
    with transaction.atomic():
        group = _locked(group_id)
        _as_admin(group, actor)
        target = _membership(group, phone)
        if target is None:
            raise GroupError(GroupError.NOT_A_PARTICIPANT, f"+{phone} is not in {group_id}")
        if target.is_super_admin and phone != actor:
            raise GroupError(GroupError.SUPER_ADMIN, "the group's creator cannot be removed")
        target.delete()
        _keep_an_admin(group)


def set_admin(group_id: str, *, actor: str, phone: str, admin: bool) -> None:
    """Promote (``admin``) or demote a member. Idempotent for the member's current rank."""
    with transaction.atomic():
        group = _locked(group_id)
        _as_admin(group, actor)
        target = _membership(group, phone)
        if target is None:
            raise GroupError(GroupError.NOT_A_PARTICIPANT, f"+{phone} is not in {group_id}")
        if not admin and target.is_super_admin:
            raise GroupError(GroupError.SUPER_ADMIN, "the group's creator cannot be demoted")
        if target.is_admin != admin:
            target.is_admin = admin
            target.save(update_fields=["is_admin"])


def leave_group(group_id: str, *, actor: str) -> None:
    with transaction.atomic():
        group = _locked(group_id)
        _as_member(group, actor).delete()
        _keep_an_admin(group)


def _keep_an_admin(group: EmuGroup) -> None:
    """WhatsApp never leaves a group without an admin: the longest-standing member
    becomes one when the last admin goes."""
    members = group.members.order_by("joined_at", "pk")
    if members.exists() and not members.filter(is_admin=True).exists():
        first = members.first()
        assert first is not None
        first.is_admin = True
        first.save(update_fields=["is_admin"])


def update_settings(
    group_id: str, *, actor: str, only_admins_send: bool | None, only_admins_edit: bool | None
) -> None:
    with transaction.atomic():
        group = _locked(group_id)
        _as_admin(group, actor)
        fields = []
        if only_admins_send is not None:
            group.only_admins_send = only_admins_send
            fields.append("only_admins_send")
        if only_admins_edit is not None:
            group.only_admins_edit = only_admins_edit
            fields.append("only_admins_edit")
        if fields:
            group.save(update_fields=fields)


def set_picture(group_id: str, *, actor: str, data: bytes) -> str:
    """Store the picture (re-encoded as a bounded JPEG) and return its storage path.
    ``data`` must already have passed the upload checks (instances.api)."""

    with transaction.atomic():
        group = _locked(group_id)
        _as_editor(group, actor)
        stored = jpeg_thumbnail(data)
        digits_only = group.group_id.split("@", 1)[0]
        name = default_storage.save(f"groups/{digits_only}-{secrets.token_hex(4)}.jpg", ContentFile(stored))
        old = group.picture
        group.picture = name
        group.save(update_fields=["picture"])
    if old:
        default_storage.delete(old)
    return name


def picture_bytes(group: GroupView) -> bytes:
    """The stored group picture (empty when none is set)."""
    if not group.picture or not default_storage.exists(group.picture):
        return b""
    with default_storage.open(group.picture) as handle:
        return bytes(handle.read())


# --- Delivery --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    """Who a group message from ``sender`` reaches, or why it cannot be sent."""

    recipients: tuple[str, ...] = ()
    status: str = "sent"  # sent | notInGroup | failed
    description: str = ""


NOT_IN_GROUP = "The instance is not a member of this group"
ONLY_ADMINS = "Only admins can send messages to this group"


def audiences(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Audience]:
    """For (sender phone, group id) pairs: the members a message reaches now (every
    current member but the sender), with two queries for the whole batch."""
    pairs = set(pairs)
    if not pairs:
        return {}
    groups = {g.group_id: g for g in EmuGroup.objects.filter(group_id__in={g for _, g in pairs})}
    members: dict[str, list[EmuGroupMember]] = {}
    for member in (
        EmuGroupMember.objects.filter(group__in=list(groups.values())).select_related("group").order_by("pk")
    ):
        members.setdefault(member.group.group_id, []).append(member)
    answer: dict[tuple[str, str], Audience] = {}
    for sender, group_id in pairs:
        group = groups.get(group_id)
        rows = members.get(group_id, [])
        me = next((m for m in rows if m.phone == sender), None)
        if group is None or me is None:
            answer[(sender, group_id)] = Audience(status="notInGroup", description=NOT_IN_GROUP)
        elif group.only_admins_send and not me.is_admin:
            answer[(sender, group_id)] = Audience(status="failed", description=ONLY_ADMINS)
        else:
            answer[(sender, group_id)] = Audience(
                recipients=tuple(m.phone for m in rows if m.phone != sender)
            )
    return answer


def find_group_message(group_id: str, id_message: str) -> EmuMessage | None:
    """A message of the group chat (its sender's copy)."""
    return (
        EmuMessage.objects.filter(chat_id=group_id, id_message=id_message, recipient="")
        .order_by("-id")
        .first()
    )


def group_rows(
    *,
    sender: str,
    group_id: str,
    id_message: str,
    type_message: str,
    message_data: dict[str, object],
    recipients: Sequence[str],
    payload: dict[str, object] | None = None,
    via_instance: int | None = None,
) -> list[EmuMessage]:
    """The network rows of one group message: the sender's copy and one per recipient."""
    now = timezone.now()
    return [
        EmuMessage(
            sender=sender,
            chat_id=group_id,
            recipient=recipient,
            id_message=id_message,
            type_message=type_message,
            payload=dict(payload or {}),
            message_data=message_data,
            via_instance=via_instance,
            created_at=now,
        )
        for recipient in ("", *recipients)
    ]
