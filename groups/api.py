"""Group methods (API.md §9.6): one thin view per wire method. Rules live in
``groups.services`` and, for the emulator, ``engines.emulator.groups``.

Refusals are answered the way GREEN-API answers them: HTTP 200 with the method's
flag ``false`` (``updateGroupSettings`` and ``setGroupPicture`` add a ``reason``),
and getGroupData's ``"Error: item-not-found"`` / ``"Error: forbidden"`` strings.
"""

from __future__ import annotations

import re
from typing import Any, cast

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from groups import services
from instances.api import read_image_upload
from instances.http import Bool, InstanceMethodView, Str, UploadMixin, validate
from journals.chats_api import PersonalChatId, call
from messaging.fields import items_messages

GROUP_ID_RE = re.compile(r"^(\d{5,20}-\d{6,12}@g\.us|\d{15,22}@g\.us)$")
# WhatsApp's limits: a subject of 100 characters, 1024 members with the creator.
MAX_SUBJECT = 100
MAX_PARTICIPANTS = 1023

# The engine's refusal -> updateGroupSettings' and setGroupPicture's reason.
REASONS = {
    "item-not-found": "ITEM_NOT_FOUND",
    "forbidden": "FORBIDDEN",
    "not-enough-rights": "NOT_ENOUGH_RIGHTS",
}


def _reason(exc: services.GroupRefused) -> str:
    return REASONS.get(exc.reason, exc.reason.upper().replace("-", "_"))


class GroupId(Str):
    """A group chat id in either format of API.md §8.2."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not GROUP_ID_RE.match(value):
            raise serializers.ValidationError(
                f"'{self.field_name}' must be in the format 'group_id@g.us'", code="joi"
            )
        return value


# --- createGroup ---------------------------------------------------------------------


class CreateGroupOutput(serializers.Serializer[Any]):
    created = serializers.BooleanField()
    chatId = serializers.CharField()
    groupInviteLink = serializers.CharField()


class CreateGroup(InstanceMethodView):
    wire_name = "createGroup"
    Output = CreateGroupOutput

    class Input(serializers.Serializer[Any]):
        groupName = Str(max_length=MAX_SUBJECT)
        chatIds = serializers.ListField(
            child=PersonalChatId(max_length=100),
            min_length=1,
            max_length=MAX_PARTICIPANTS,
            error_messages=items_messages("chatIds"),
        )

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        try:
            group = call(services.create_group, request, name=data["groupName"], chat_ids=data["chatIds"])
        except services.GroupRefused:
            return Response({"created": False, "chatId": "", "groupInviteLink": ""})
        return Response({"created": True, "chatId": group.group_id, "groupInviteLink": group.invite_link})


# --- updateGroupName -----------------------------------------------------------------


class UpdateGroupNameOutput(serializers.Serializer[Any]):
    updateGroupName = serializers.BooleanField()


class UpdateGroupName(InstanceMethodView):
    wire_name = "updateGroupName"
    Output = UpdateGroupNameOutput

    class Input(serializers.Serializer[Any]):
        groupId = GroupId()
        groupName = Str(max_length=MAX_SUBJECT)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        try:
            call(services.update_group_name, request, group_id=data["groupId"], name=data["groupName"])
        except services.GroupRefused:
            return Response({"updateGroupName": False})
        return Response({"updateGroupName": True})


# --- getGroupData ----------------------------------------------------------------------


class ParticipantOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    isAdmin = serializers.BooleanField()
    isSuperAdmin = serializers.BooleanField()


class GroupDataOutput(serializers.Serializer[Any]):
    groupId = serializers.CharField()
    owner = serializers.CharField()
    subject = serializers.CharField()
    creation = serializers.IntegerField()
    participants = ParticipantOutput(many=True)
    subjectTime = serializers.IntegerField()
    subjectOwner = serializers.CharField()
    groupInviteLink = serializers.CharField()


class GroupOnly(serializers.Serializer[Any]):
    groupId = GroupId()


class GetGroupData(InstanceMethodView):
    wire_name = "getGroupData"
    Output = GroupDataOutput
    Input = GroupOnly

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        try:
            group = call(services.get_group_data, request, group_id=data["groupId"])
        except services.GroupRefused as exc:
            # GREEN-API answers a bare JSON string here (API.md §9.6 getGroupData).
            refusal = "item-not-found" if exc.reason == "item-not-found" else "forbidden"
            return Response(f"Error: {refusal}")
        return Response(
            {
                "groupId": group.group_id,
                "owner": group.owner,
                "subject": group.subject,
                "creation": group.creation,
                "participants": [
                    {"id": p.chat_id, "isAdmin": p.is_admin, "isSuperAdmin": p.is_super_admin}
                    for p in group.participants
                ],
                "subjectTime": group.subject_time,
                "subjectOwner": group.subject_owner,
                "groupInviteLink": group.invite_link,
            }
        )


# --- Participants and admins -----------------------------------------------------------


class ParticipantInput(serializers.Serializer[Any]):
    groupId = GroupId()
    participantChatId = PersonalChatId(max_length=100)


class _ParticipantView(InstanceMethodView):
    """addGroupParticipant, removeGroupParticipant, setGroupAdmin, removeAdmin: the
    same body, one flag in the answer."""

    Input = ParticipantInput
    flag: str = ""

    def change(self, request: Request, group_id: str, participant: str) -> None:
        raise NotImplementedError

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        try:
            self.change(request, data["groupId"], data["participantChatId"])
        except services.GroupRefused:
            return Response({self.flag: False})
        return Response({self.flag: True})


class AddParticipantOutput(serializers.Serializer[Any]):
    addParticipant = serializers.BooleanField()


class AddGroupParticipant(_ParticipantView):
    wire_name = "addGroupParticipant"
    Output = AddParticipantOutput
    flag = "addParticipant"

    def change(self, request: Request, group_id: str, participant: str) -> None:
        call(services.add_group_participant, request, group_id=group_id, participant=participant)


class RemoveParticipantOutput(serializers.Serializer[Any]):
    removeParticipant = serializers.BooleanField()


class RemoveGroupParticipant(_ParticipantView):
    wire_name = "removeGroupParticipant"
    Output = RemoveParticipantOutput
    flag = "removeParticipant"

    def change(self, request: Request, group_id: str, participant: str) -> None:
        call(services.remove_group_participant, request, group_id=group_id, participant=participant)


class SetGroupAdminOutput(serializers.Serializer[Any]):
    setGroupAdmin = serializers.BooleanField()


class SetGroupAdmin(_ParticipantView):
    wire_name = "setGroupAdmin"
    Output = SetGroupAdminOutput
    flag = "setGroupAdmin"

    def change(self, request: Request, group_id: str, participant: str) -> None:
        call(services.set_group_admin, request, group_id=group_id, participant=participant)


class RemoveAdminOutput(serializers.Serializer[Any]):
    removeAdmin = serializers.BooleanField()


class RemoveAdmin(_ParticipantView):
    wire_name = "removeAdmin"
    Output = RemoveAdminOutput
    flag = "removeAdmin"

    def change(self, request: Request, group_id: str, participant: str) -> None:
        call(services.remove_admin, request, group_id=group_id, participant=participant)


# --- setGroupPicture --------------------------------------------------------------------


class GroupPictureOutput(serializers.Serializer[Any]):
    setGroupPicture = serializers.BooleanField()
    urlAvatar = serializers.CharField()
    reason = serializers.CharField()


class GroupPictureUpload(serializers.Serializer[Any]):
    """The multipart body (documented in the schema and the cabinet's console)."""

    groupId = GroupId()
    file = serializers.FileField(help_text="The picture (JPEG).")


class SetGroupPicture(UploadMixin, InstanceMethodView):
    wire_name = "setGroupPicture"
    Output = GroupPictureOutput
    Upload = GroupPictureUpload

    def post(self, request: Request, **kwargs: Any) -> Response:
        form = cast(QueryDict, request.data)
        fields = {k: form.get(k) for k in form if k != "file"}
        group_id = validate(GroupOnly, fields)["groupId"]
        data = read_image_upload(request)
        try:
            url = call(services.set_group_picture, request, group_id=group_id, data=data)
        except services.GroupRefused as exc:
            return Response({"setGroupPicture": False, "urlAvatar": "", "reason": _reason(exc)})
        return Response({"setGroupPicture": True, "urlAvatar": url, "reason": ""})


# --- leaveGroup -------------------------------------------------------------------------------


class LeaveGroupOutput(serializers.Serializer[Any]):
    leaveGroup = serializers.BooleanField()


class LeaveGroup(InstanceMethodView):
    wire_name = "leaveGroup"
    Output = LeaveGroupOutput
    Input = GroupOnly

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        try:
            call(services.leave_group, request, group_id=data["groupId"])
        except services.GroupRefused:
            return Response({"leaveGroup": False})
        return Response({"leaveGroup": True})


# --- updateGroupSettings -------------------------------------------------------------------


class UpdateGroupSettingsOutput(serializers.Serializer[Any]):
    updateGroupSettings = serializers.BooleanField()
    reason = serializers.CharField(required=False)


class UpdateGroupSettings(InstanceMethodView):
    wire_name = "updateGroupSettings"
    Output = UpdateGroupSettingsOutput

    class Input(serializers.Serializer[Any]):
        groupId = GroupId()
        allowParticipantsEditGroupSettings = Bool(required=False)
        allowParticipantsSendMessages = Bool(required=False)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        send = data.get("allowParticipantsSendMessages")
        edit = data.get("allowParticipantsEditGroupSettings")
        try:
            call(
                services.update_group_settings,
                request,
                group_id=data["groupId"],
                only_admins_send=None if send is None else not send,
                only_admins_edit=None if edit is None else not edit,
            )
        except services.GroupRefused as exc:
            return Response({"updateGroupSettings": False, "reason": _reason(exc)})
        return Response({"updateGroupSettings": True})


__all__ = [
    "AddGroupParticipant",
    "CreateGroup",
    "GetGroupData",
    "LeaveGroup",
    "RemoveAdmin",
    "RemoveGroupParticipant",
    "SetGroupAdmin",
    "SetGroupPicture",
    "UpdateGroupName",
    "UpdateGroupSettings",
]
