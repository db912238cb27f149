"""Emulator control API for groups (Relay extension), under
``/api/v1/emulator/instances/{id}/groups``:

- ``GET groups``: the groups the instance's phone is in, with members and settings;
- ``POST groups``: a simulated contact creates a group with the instance in it;
- ``POST groups/{groupId}/incoming/{typeMessage}``: a simulated member posts
  (every message type; ``quotedMessageId`` replies to a group message);
- ``POST groups/{groupId}/{action}``: a simulated member adds, removes, promotes or
  demotes a participant (default: the instance), renames the group, sets its
  picture, changes its settings, or leaves.

Changes land on the emulated network; the instance's session takes them in within
a tick. Only groups the instance is or was in can be driven (tenant isolation).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, cast

from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engines.emulator import triggers as emulator_events
from engines.emulator.api import ControlView, access_instance, digits
from engines.emulator.transport import group_picture_url
from engines.emulator.triggers_api import KIND_FIELDS, EventMessageOutput, EventResultOutput, _phone
from instances.api import check_image
from instances.http import BadRequest, Bool, Str, ValidationFailed, validate

TAGS = ["emulator"]


def _digits_field(help_text: str, required: bool = True) -> Str:
    return (
        _phone(help_text)
        if required
        else Str(min_length=7, max_length=15, required=False, help_text=help_text)
    )


class _Actor(serializers.Serializer[Any]):
    phoneNumber = _phone("The simulated member who acts (digits).")
    name = Str(required=False, allow_blank=True, max_length=100, help_text="Its profile name (senderName).")

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class GroupCreateInput(_Actor):
    subject = Str(max_length=100)
    participants = serializers.ListField(
        child=Str(min_length=7, max_length=15),
        required=False,
        max_length=100,
        help_text="Other simulated contacts to add (digits); the instance is always in.",
    )

    def validate_participants(self, value: list[str]) -> list[str]:
        return [digits(v, "participants") for v in value]


class GroupCreateOutput(serializers.Serializer[Any]):
    groupId = serializers.CharField()


class GroupActionInput(_Actor):
    participant = _digits_field(
        "add/remove/promote/demote: whom (digits); default: the instance.", required=False
    )
    subject = Str(required=False, max_length=100, help_text="rename: the new subject.")
    file = Str(required=False, help_text="picture: the image as base64.")
    onlyAdminsSend = Bool(required=False, help_text="settings: only admins may send.")
    onlyAdminsEdit = Bool(required=False, help_text="settings: only admins may edit.")

    def validate_participant(self, value: str) -> str:
        return digits(value, "participant")


class GroupItemOutput(serializers.Serializer[Any]):
    groupId = serializers.CharField()
    subject = serializers.CharField()
    owner = serializers.CharField()
    pictureUrl = serializers.CharField()
    inviteLink = serializers.CharField()
    onlyAdminsSend = serializers.BooleanField()
    onlyAdminsEdit = serializers.BooleanField()
    participants = serializers.ListField(child=serializers.DictField())


def group_item(group: Any) -> dict[str, Any]:
    return {
        "groupId": group.group_id,
        "subject": group.subject,
        "owner": f"{group.owner}@c.us",
        "pictureUrl": group_picture_url(group),
        "inviteLink": group.invite_link,
        "onlyAdminsSend": group.only_admins_send,
        "onlyAdminsEdit": group.only_admins_edit,
        "participants": [
            {"id": f"{m.phone}@c.us", "isAdmin": m.is_admin, "isSuperAdmin": m.is_super_admin}
            for m in group.members
        ],
    }


class Groups(ControlView):
    """List the instance's groups, or let a contact create one with the instance in it."""

    @extend_schema(operation_id="emulatorGroups", responses=GroupItemOutput(many=True), tags=TAGS)
    def get(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        try:
            groups = emulator_events.instance_groups(instance)
        except emulator_events.EventError as exc:
            raise BadRequest(str(exc)) from exc
        return Response([group_item(g) for g in groups])

    @extend_schema(
        operation_id="emulatorGroupCreate", request=GroupCreateInput, responses=GroupCreateOutput, tags=TAGS
    )
    def post(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(GroupCreateInput, request.data)
        try:
            group_id = emulator_events.contact_creates_group(
                instance,
                phone=data["phoneNumber"],
                subject=data["subject"],
                participants=data.get("participants", []),
                name=data.get("name", ""),
            )
        except emulator_events.EventError as exc:
            raise BadRequest(str(exc)) from exc
        return Response({"groupId": group_id})


class GroupAction(ControlView):
    """A simulated member changes the group."""

    @extend_schema(
        operation_id="emulatorGroupAction", request=GroupActionInput, responses=EventResultOutput, tags=TAGS
    )
    def post(self, request: Request, id_instance: int, group_id: str, action: str) -> Response:
        instance = access_instance(request, id_instance)
        if action not in emulator_events.GROUP_ACTIONS:
            raise BadRequest(f"action must be one of {', '.join(emulator_events.GROUP_ACTIONS)}")
        data = validate(GroupActionInput, request.data)
        picture = b""
        if action == "picture":
            try:
                picture = base64.b64decode(str(data.get("file", "")), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValidationFailed("'file' must be base64") from exc
            check_image(picture)
        if action == "rename" and not data.get("subject"):
            raise ValidationFailed("'subject' is required")
        try:
            emulator_events.contact_acts_in_group(
                instance,
                group_id=group_id,
                phone=data["phoneNumber"],
                action=action,
                participant=data.get("participant", ""),
                subject=data.get("subject", ""),
                picture=picture,
                only_admins_send=data.get("onlyAdminsSend"),
                only_admins_edit=data.get("onlyAdminsEdit"),
            )
        except emulator_events.EventError as exc:
            raise BadRequest(str(exc)) from exc
        return Response({"result": True})


def _post_view(kind: str) -> Any:
    serializer = type(
        f"GroupIncoming{kind[:1].upper()}{kind[1:]}Input",
        (_Actor, KIND_FIELDS[kind]),
        {"__module__": __name__},
    )

    @extend_schema(
        operation_id=f"emulatorGroupIncoming{kind[:1].upper()}{kind[1:]}",
        request=serializer,
        responses=EventMessageOutput,
        tags=TAGS,
        summary=f"A simulated member posts a {kind} in the group",
    )
    def post(self: Any, request: Request, id_instance: int, group_id: str) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(serializer, request.data)
        phone = data.pop("phoneNumber")
        name = data.pop("name", "")
        try:
            message = emulator_events.contact_posts_in_group(
                instance, group_id=group_id, phone=phone, kind=kind, fields=data, name=name
            )
        except emulator_events.EventError as exc:
            raise BadRequest(str(exc)) from exc
        return Response({"idMessage": message.id_message, "chatId": group_id, "typeMessage": kind})

    return type(
        f"GroupIncoming{kind[:1].upper()}{kind[1:]}", (ControlView,), {"post": post, "__module__": __name__}
    )


urlpatterns: list[URLPattern] = [
    path("instances/<int:id_instance>/groups", Groups.as_view()),
    *[
        path(
            f"instances/<int:id_instance>/groups/<str:group_id>/incoming/{kind}",
            cast(Any, _post_view(kind)).as_view(),
        )
        for kind in emulator_events.MESSAGE_KINDS
    ],
    path("instances/<int:id_instance>/groups/<str:group_id>/<str:action>", GroupAction.as_view()),
]
