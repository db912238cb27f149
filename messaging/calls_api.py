"""VoIP methods (API.md §9.13): thin adapters over ``messaging.calls``.

GREEN-API documents these through its Python SDK only: callsState answers the state
object, callsGetIceServers a list, and callsDial / callsAccept / callsReject /
callsHangUp an empty 200. A transition the state machine does not allow (accept
with nothing ringing, dial while in a call) answers 400 with the reason; an engine
that cannot call answers 400 naming the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from instances.http import BadRequest, InstanceMethodView, InstanceRequest, Str, validate
from messaging import calls

T = TypeVar("T")
DIAL_RE = re.compile(r"^\d{5,20}@c\.us$")


@contextmanager
def wire_errors() -> Iterator[None]:
    try:
        yield
    except (calls.CallRefused, calls.CallsUnsupported) as exc:
        raise BadRequest(str(exc)) from exc


def call(func: Callable[..., T], request: Request, **kwargs: Any) -> T:
    with wire_errors():
        return func(cast(InstanceRequest, request).instance, **kwargs)


class NoBody(serializers.Serializer[Any]):
    """The SDK posts these methods without a body; an empty object is accepted too."""


class CallInfoOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    wid = serializers.CharField()
    name = serializers.CharField(allow_null=True)


class CallsStateOutput(serializers.Serializer[Any]):
    state = serializers.ChoiceField(choices=["idle", "inc-call", "out-call", "on-call"])
    info = CallInfoOutput(allow_null=True)
    reason = serializers.CharField(allow_null=True, help_text="Why the last call ended (idle only).")


class IceServerOutput(serializers.Serializer[Any]):
    urls = serializers.ListField(child=serializers.CharField())
    username = serializers.CharField(allow_null=True)
    credential = serializers.CharField(allow_null=True)


class CallsState(InstanceMethodView):
    wire_name = "callsState"
    Output = CallsStateOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(calls.state_body(call(calls.calls_state, request)))


class CallsGetIceServers(InstanceMethodView):
    wire_name = "callsGetIceServers"
    Output = IceServerOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(call(calls.calls_get_ice_servers, request))


class DialChatId(Str):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not DIAL_RE.match(value):
            raise serializers.ValidationError(
                f"'{self.field_name}' must be one of the next formats: 'phone_number@c.us'", code="joi"
            )
        return value


class CallsDial(InstanceMethodView):
    wire_name = "callsDial"

    class Input(serializers.Serializer[Any]):
        chatId = DialChatId()

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        call(calls.calls_dial, request, chat_id=data["chatId"])
        return Response(status=200)


class CallsAccept(InstanceMethodView):
    wire_name = "callsAccept"
    def post(self, request: Request, **kwargs: Any) -> Response:
        validate(NoBody, request.data)
        call(calls.calls_accept, request)
        return Response(status=200)


class CallsReject(InstanceMethodView):
    wire_name = "callsReject"
    def post(self, request: Request, **kwargs: Any) -> Response:
        validate(NoBody, request.data)
        call(calls.calls_reject, request)
        return Response(status=200)


class CallsHangUp(InstanceMethodView):
    wire_name = "callsHangUp"
    def post(self, request: Request, **kwargs: Any) -> Response:
        validate(NoBody, request.data)
        call(calls.calls_hang_up, request)
        return Response(status=200)
