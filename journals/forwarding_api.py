"""forwardMessages as a wire method: a thin view over ``journals.forwarding``."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from instances.http import InstanceMethodView, Str, ValidationFailed
from journals import forwarding
from messaging.api import _instance, check_items, idempotency_key
from messaging.fields import ChatId, typing_time


class ForwardOutput(serializers.Serializer[Any]):
    messages = serializers.ListField(child=serializers.CharField())


class ForwardMessages(InstanceMethodView):
    wire_name = "forwardMessages"
    Output = ForwardOutput

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        chatIdFrom = ChatId()
        messages = serializers.ListField(child=Str(max_length=64))
        typingTime = typing_time()

        def validate_messages(self, value: list[str]) -> list[str]:
            check_items("messages", value, 1, 100)
            return value

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        try:
            sent = forwarding.forward_messages(
                instance=_instance(request),
                chat_id=data["chatId"],
                chat_id_from=data["chatIdFrom"],
                id_messages=data["messages"],
                typing_time=data.get("typingTime"),
                idempotency_key=idempotency_key(request),
            )
        except forwarding.UnknownMessageError as exc:
            raise ValidationFailed(f"'messages' contains an unknown message id: {exc}") from exc
        return Response({"messages": [m.id_message for m in sent]})
