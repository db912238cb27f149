"""Journal methods (API.md §9.4): one thin view per wire method.

The message journals answer with the JSON ``journals.history`` encodes (mostly
objects stored encoded with their rows), sent as is: the bytes DRF's renderer would
write for the same objects, without decoding them into dicts to encode them again."""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from instances.http import BadRequest, InstanceMethodView, InstanceRequest, Int, Str, validate
from journals import history
from journals.models import Direction
from messaging.fields import ChatId


def _instance(request: Request) -> Any:
    return cast(InstanceRequest, request).instance


def _minutes(request: Request) -> int:
    """The time-window methods' ``minutes`` query parameter (default 24 h)."""
    return int(validate(MinutesQuery, request.query_params).get("minutes", history.DEFAULT_MINUTES))


def json_body(content: bytes) -> HttpResponse:
    """An encoded JSON body, with the Content-Type DRF's JSONRenderer sets."""
    return HttpResponse(content, content_type="application/json")


class MessageOutput(serializers.Serializer[Any]):
    """A flattened journal object (API.md §12); payload fields depend on typeMessage."""

    type = serializers.ChoiceField(choices=["incoming", "outgoing"])
    timestamp = serializers.IntegerField()
    idMessage = serializers.CharField()
    typeMessage = serializers.CharField()
    chatId = serializers.CharField()
    statusMessage = serializers.CharField(required=False)
    sendByApi = serializers.BooleanField(required=False)
    senderId = serializers.CharField(required=False)
    senderName = serializers.CharField(required=False)
    senderContactName = serializers.CharField(required=False)
    isForwarded = serializers.BooleanField()
    forwardingScore = serializers.IntegerField()
    textMessage = serializers.CharField(required=False)


class CallOutput(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=["incoming", "outgoing"])
    idMessage = serializers.CharField()
    timestamp = serializers.IntegerField()
    typeMessage = serializers.ChoiceField(choices=["incomingCall", "outgoingCall"])
    chatId = serializers.CharField()
    duration = serializers.IntegerField(required=False, help_text="Seconds from answer to hang-up.")
    isVideo = serializers.BooleanField()
    status = serializers.CharField()


class MinutesQuery(serializers.Serializer[Any]):
    minutes = Int(required=False, min_value=1)


class GetChatHistory(InstanceMethodView):
    wire_name = "getChatHistory"
    Output = MessageOutput

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        count = Int(required=False, min_value=1)

    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        data = self.validate(request.data)
        count = data.get("count", history.DEFAULT_COUNT)
        return json_body(history.chat_history(_instance(request), chat_id=data["chatId"], count=count))


class GetMessage(InstanceMethodView):
    wire_name = "getMessage"
    Output = MessageOutput

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        idMessage = Str(max_length=64)

    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        data = self.validate(request.data)
        found = history.get_message(_instance(request), chat_id=data["chatId"], id_message=data["idMessage"])
        if found is None:
            raise BadRequest("message not found")
        return json_body(found)


class LastIncomingMessages(InstanceMethodView):
    wire_name = "lastIncomingMessages"
    Query = MinutesQuery
    Output = MessageOutput

    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        minutes = _minutes(request)
        return json_body(history.last_incoming_messages(_instance(request), minutes=minutes))


class LastOutgoingMessages(InstanceMethodView):
    wire_name = "lastOutgoingMessages"
    Query = MinutesQuery
    Output = MessageOutput

    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        minutes = _minutes(request)
        return json_body(history.last_outgoing_messages(_instance(request), minutes=minutes))


class LastIncomingCalls(InstanceMethodView):
    wire_name = "lastIncomingCalls"
    Query = MinutesQuery
    Output = CallOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        minutes = _minutes(request)
        return Response(history.last_calls(_instance(request), direction=Direction.INCOMING, minutes=minutes))


class LastOutgoingCalls(InstanceMethodView):
    wire_name = "lastOutgoingCalls"
    Query = MinutesQuery
    Output = CallOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        minutes = _minutes(request)
        return Response(history.last_calls(_instance(request), direction=Direction.OUTGOING, minutes=minutes))
