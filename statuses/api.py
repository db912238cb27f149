"""Statuses (API.md §9.7): one thin view per wire method over ``statuses.services``
and ``statuses.selectors``."""

from __future__ import annotations

import re
from typing import Any, cast

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from instances.guards import ChatError
from instances.http import BadRequest, InstanceMethodView, InstanceRequest, Str, validate
from journals.history_api import MinutesQuery
from messaging import media
from messaging.api import IdMessageOutput, idempotency_key
from messaging.api_files import HttpUrl
from statuses import selectors, services

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
PARTICIPANT_RE = re.compile(r"^(\d{5,20}@c\.us|\d{5,25}@lid)$")
FONTS = ["SERIF", "SANS_SERIF", "NORICAN_REGULAR", "BRYNDAN_WRITE", "OSWALD_HEAVY"]
DEFAULT_FONT = "SANS_SERIF"
MAX_PARTICIPANTS = 1024


def _instance(request: Request) -> Any:
    return cast(InstanceRequest, request).instance


class Color(Str):
    """``#RRGGBB``."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not COLOR_RE.match(value):
            raise serializers.ValidationError(
                f"'{self.field_name}' with value '{value}' fails to match the required pattern: /^#[0-9a-fA-F]{{6}}$/",
                code="joi",
            )
        return value


class Participants(serializers.Field):  # type: ignore[type-arg]
    """Chat ids allowed to see the status (personal chats); empty means the contacts."""

    def to_internal_value(self, data: Any) -> list[str]:
        if not isinstance(data, list):
            raise serializers.ValidationError("'participants' must be an array", code="joi")
        if len(data) > MAX_PARTICIPANTS:
            raise serializers.ValidationError(
                f"'participants' must contain less than or equal to {MAX_PARTICIPANTS} items", code="joi"
            )
        for index, item in enumerate(data):
            if not isinstance(item, str) or not PARTICIPANT_RE.match(item):
                raise serializers.ValidationError(
                    f"'participants[{index}]' must be one of the next formats: 'phone_number@c.us' or 'chat_id@lid'",
                    code="joi",
                )
        return list(dict.fromkeys(data))

    def to_representation(self, value: Any) -> Any:
        return value


def _participants_field() -> Participants:
    return Participants(required=False, help_text="Chat ids allowed to see it; omitted or [] = all contacts.")


# (typeMessage, showMessagesQueue echo, is a file) of a validated send*Status body.
Composed = tuple[str, dict[str, Any], bool]


def queue_status(instance: Any, method: str, composed: Composed, key: str = "") -> str:
    """Queue a composed status (the views and the cabinet); returns its idMessage.
    Raises ``BadRequest`` when the instance's engine cannot post statuses."""
    type_message, echo, is_file = composed
    payload = {k: v for k, v in echo.items() if v is not None}
    try:
        message = services.send_status(
            instance=instance,
            method=method,
            type_message=type_message,
            request=echo,
            payload=payload,
            is_file=is_file,
            idempotency_key=key,
        )
    except services.StatusError as exc:
        raise BadRequest(str(exc)) from exc
    return message.id_message


class SendStatusView(InstanceMethodView):
    """A send*Status method: validate, compose, queue, answer ``{"idMessage"}``."""

    Output = IdMessageOutput

    @staticmethod
    def compose(data: dict[str, Any]) -> Composed:
        raise NotImplementedError

    def post(self, request: Request, **kwargs: Any) -> Response:
        composed = self.compose(self.validate(request.data))
        id_message = queue_status(_instance(request), self.wire_name, composed, idempotency_key(request))
        return Response({"idMessage": id_message})


class SendTextStatus(SendStatusView):
    """Posts a text status (queued like a message; ``idMessage`` at once)."""

    wire_name = "sendTextStatus"
    class Input(serializers.Serializer[Any]):
        message = Str(max_length=20_000)
        backgroundColor = Color(required=False)
        font = serializers.ChoiceField(choices=FONTS, required=False)
        participants = _participants_field()

    @staticmethod
    def compose(data: dict[str, Any]) -> Composed:
        echo = {
            "message": data["message"],
            "backgroundColor": data.get("backgroundColor", "#000000"),
            "font": data.get("font", DEFAULT_FONT),
            "participants": data.get("participants", []),
        }
        return "extendedTextMessage", echo, False


class SendVoiceStatus(SendStatusView):
    """Posts a voice status from ``urlFile`` (fetched by the worker through the SSRF
    guard, like sendFileByUrl); audio over a minute is cut to one."""

    wire_name = "sendVoiceStatus"
    class Input(serializers.Serializer[Any]):
        urlFile = HttpUrl()
        fileName = Str(max_length=255)
        backgroundColor = Color(required=False)
        participants = _participants_field()

    @staticmethod
    def compose(data: dict[str, Any]) -> Composed:
        echo = {
            "urlFile": data["urlFile"],
            "fileName": data["fileName"],
            "backgroundColor": data.get("backgroundColor", "#FFFFFF"),
            "participants": data.get("participants", []),
        }
        return "audioMessage", echo, True


class SendMediaStatus(SendStatusView):
    """Posts a picture or video status from ``urlFile`` (fetched like sendFileByUrl)."""

    wire_name = "sendMediaStatus"
    class Input(serializers.Serializer[Any]):
        urlFile = HttpUrl()
        fileName = Str(max_length=255)
        caption = Str(required=False, allow_blank=True, max_length=20_000)
        participants = _participants_field()

    @staticmethod
    def compose(data: dict[str, Any]) -> Composed:
        echo = {
            "urlFile": data["urlFile"],
            "fileName": data["fileName"],
            "caption": data.get("caption"),
            "participants": data.get("participants", []),
        }
        # The real type is known once the worker has the file; the name is the guess.
        guess = media.mime_from_name(data["fileName"]) or "image/jpeg"
        return media.type_message_for(guess), echo, True


class DeleteStatus(InstanceMethodView):
    """Deletes one of our statuses; answers an empty 200 (API.md §3)."""

    wire_name = "deleteStatus"

    class Input(serializers.Serializer[Any]):
        idMessage = Str(max_length=64)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        try:
            services.delete_status(_instance(request), id_message=data["idMessage"])
        except (services.StatusError, ChatError) as exc:
            raise BadRequest(str(exc)) from exc
        return Response(status=200)


class StatisticOutput(serializers.Serializer[Any]):
    timestamp = serializers.IntegerField()
    participant = serializers.CharField()
    status = serializers.ChoiceField(choices=["sent", "delivered", "read"])


class StatisticQuery(serializers.Serializer[Any]):
    idMessage = Str(max_length=64)


class GetStatusStatistic(InstanceMethodView):
    wire_name = "getStatusStatistic"
    Query = StatisticQuery
    Output = StatisticOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        query = validate(StatisticQuery, request.query_params)
        found = selectors.status_statistic(_instance(request), id_message=query["idMessage"])
        if found is None:
            raise BadRequest(f"status {query['idMessage']} not found")
        return Response(found)


class StatusOutput(serializers.Serializer[Any]):
    """A status journal object; payload fields depend on typeMessage."""

    type = serializers.ChoiceField(choices=["incoming", "outgoing"])
    idMessage = serializers.CharField()
    timestamp = serializers.IntegerField()
    typeMessage = serializers.CharField()
    chatId = serializers.CharField()
    textMessage = serializers.CharField(required=False)
    downloadUrl = serializers.CharField(required=False)


def _minutes(request: Request) -> int:
    """``minutes`` from the query; the official SDK's async methods send it as a JSON
    body of the GET instead, which is read when the query has none."""
    source: Any = request.query_params
    if not source and isinstance(request.data, dict) and request.data:
        source = request.data
    return int(validate(MinutesQuery, source).get("minutes", selectors.DEFAULT_MINUTES))


class GetIncomingStatuses(InstanceMethodView):
    wire_name = "getIncomingStatuses"
    Query = MinutesQuery
    Output = StatusOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(selectors.incoming_statuses(_instance(request), minutes=_minutes(request)))


class GetOutgoingStatuses(InstanceMethodView):
    wire_name = "getOutgoingStatuses"
    Query = MinutesQuery
    Output = StatusOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(selectors.outgoing_statuses(_instance(request), minutes=_minutes(request)))
