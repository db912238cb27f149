"""Emulator control API (Relay extension): ``POST /api/v1/emulator/instances/{id}/statuses``
makes a simulated contact post a status the instance may see. Same authorization
as the other control endpoints (``emulator_api.access_instance``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engines.emulator import statuses as emulator_statuses
from engines.emulator.api import PHONE_FIELD, ControlView, access_instance, digits
from instances.http import BadRequest, Str, validate

KINDS = ["text", "imageMessage", "videoMessage"]


class ContactStatusInput(serializers.Serializer[Any]):
    phoneNumber = Str(**PHONE_FIELD, help_text="The simulated contact that posts (digits); created if new.")
    name = Str(required=False, allow_blank=True, max_length=100, help_text="Its profile name (senderName).")
    kind = serializers.ChoiceField(choices=KINDS, required=False, help_text="Default: text.")
    message = Str(required=False, max_length=20_000, help_text="The text of a text status.")
    backgroundColor = Str(required=False, max_length=7, help_text="#RRGGBB; default #000000.")
    font = serializers.ChoiceField(choices=list(emulator_statuses.FONTS), required=False)
    caption = Str(required=False, allow_blank=True, max_length=20_000)
    file = Str(required=False, help_text="The picture/video as base64; omitted: a generated sample.")

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class ContactStatusOutput(serializers.Serializer[Any]):
    idMessage = serializers.CharField()
    chatId = serializers.CharField(help_text="The poster, as getIncomingStatuses shows it.")
    typeMessage = serializers.CharField()


class ContactStatuses(ControlView):
    """A simulated contact posts a status; the instance's session takes it in
    (incomingMessageReceived in status@broadcast, getIncomingStatuses)."""

    @extend_schema(
        operation_id="emulatorContactStatus", request=ContactStatusInput, responses=ContactStatusOutput, tags=["emulator"]
    )
    def post(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(ContactStatusInput, request.data)
        kind = data.pop("kind", "text")
        if kind == "text" and not data.get("message"):
            raise BadRequest("Validation failed. Details: 'message' is required")
        try:
            status = emulator_statuses.contact_posts_status(
                instance, phone=data.pop("phoneNumber"), kind=kind, fields=data, name=data.pop("name", "")
            )
        except emulator_statuses.StatusEventError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(
            {"idMessage": status.id_message, "chatId": f"{status.poster}@c.us", "typeMessage": status.type_message}
        )
