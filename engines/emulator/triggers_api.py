"""Emulator control API for incoming events (Relay extension), under
``/api/v1/emulator/instances/{id}/``:

- ``incoming/{typeMessage}``: a simulated contact sends the instance a message;
- ``phone-sent/{typeMessage}``: the instance's own phone sends one;
- ``calls`` and ``calls/{idCall}``: a contact calls (offer, then the outcome);
- ``block``: a contact blocks the account.

Events land on the emulated network; the session runner that leases the instance
turns them into notifications within a tick. Same authorization as the other
control endpoints (``emulator_api.access_instance``).
"""

from __future__ import annotations

from typing import Any, cast

from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engines.emulator import triggers as emulator_events
from engines.emulator.api import PHONE_FIELD, ControlView, access_instance, digits
from instances.http import BadRequest, Bool, Int, Str, validate

TAGS = ["emulator"]


def _phone(help_text: str) -> Str:
    return Str(**PHONE_FIELD, help_text=help_text)


def _stanza(help_text: str = "idMessage of the message this answers (must be in the chat).") -> Str:
    return Str(max_length=64, help_text=help_text)


def _quoted(required: bool = False) -> Str:
    return Str(max_length=64, required=required, help_text="idMessage of a message in the chat to reply to.")


class _Forwarded(serializers.Serializer[Any]):
    isForwarded = Bool(required=False)
    forwardingScore = Int(required=False, min_value=0)


class _Text(serializers.Serializer[Any]):
    message = Str(max_length=20_000)


class _ExtendedText(_Forwarded):
    message = Str(max_length=20_000)
    title = Str(required=False, allow_blank=True, max_length=500)
    description = Str(required=False, allow_blank=True, max_length=2000)
    previewType = serializers.ChoiceField(choices=["None", "Small", "Large"], required=False)
    jpegThumbnail = Str(required=False, allow_blank=True)


class _Quoted(serializers.Serializer[Any]):
    message = Str(max_length=20_000)
    quotedMessageId = _quoted(required=True)


class _File(_Forwarded):
    file = Str(required=False, help_text="The file as base64; omitted: a small generated sample.")
    fileName = Str(required=False, max_length=255)
    mimeType = Str(required=False, max_length=127, help_text="Used only when the content does not tell.")
    caption = Str(required=False, allow_blank=True, max_length=20_000)
    quotedMessageId = _quoted()


class _Sticker(_Forwarded):
    file = Str(required=False, help_text="A WebP sticker as base64; omitted: a generated one.")
    isAnimated = Bool(required=False)
    quotedMessageId = _quoted()


class _Location(_Forwarded):
    nameLocation = Str(required=False, allow_blank=True, max_length=200)
    address = Str(required=False, allow_blank=True, max_length=500)
    latitude = serializers.FloatField(min_value=-90, max_value=90)
    longitude = serializers.FloatField(min_value=-180, max_value=180)
    quotedMessageId = _quoted()


class _ContactCard(serializers.Serializer[Any]):
    displayName = Str(max_length=200)
    phoneContact = Str(**PHONE_FIELD)
    vcard = Str(
        required=False, max_length=10_000, help_text="A complete vCard; omitted: built from the fields."
    )

    def validate_phoneContact(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneContact")


class _Contact(_ContactCard, _Forwarded):
    quotedMessageId = _quoted()


class _ContactsArray(_Forwarded):
    contacts = _ContactCard(many=True, allow_empty=False)
    quotedMessageId = _quoted()


class _Reaction(serializers.Serializer[Any]):
    quotedMessageId = _quoted(required=True)
    reaction = Str(allow_blank=True, max_length=16, help_text="An emoji; empty removes the reaction.")


class _GroupInvite(serializers.Serializer[Any]):
    groupName = Str(max_length=100)
    groupJid = Str(required=False, max_length=100)
    inviteCode = Str(required=False, max_length=64)
    inviteExpiration = Str(required=False, max_length=20)
    caption = Str(required=False, allow_blank=True, max_length=1000)
    name = Str(required=False, allow_blank=True, max_length=100)


class _Poll(serializers.Serializer[Any]):
    message = Str(max_length=255, help_text="The question.")
    options = serializers.ListField(child=Str(max_length=100), min_length=2, max_length=12)
    multipleAnswers = Bool(required=False)


class _PollUpdate(serializers.Serializer[Any]):
    stanzaId = _stanza("idMessage of the poll (sent to this contact by the instance).")
    votes = serializers.ListField(
        child=Str(max_length=100),
        allow_empty=True,
        help_text="The option names the voter chose now (empty: retracted).",
    )


class _Edited(serializers.Serializer[Any]):
    stanzaId = _stanza("idMessage of a message the same sender sent.")
    message = Str(max_length=20_000, help_text="The new text.")


class _Deleted(serializers.Serializer[Any]):
    stanzaId = _stanza("idMessage of a message the same sender sent.")


class _ButtonsResponse(serializers.Serializer[Any]):
    stanzaId = _stanza()
    selectedButtonId = Str(max_length=256)
    selectedButtonText = Str(required=False, allow_blank=True, max_length=256)


class _ListResponse(serializers.Serializer[Any]):
    stanzaId = _stanza()
    singleSelectReply = Str(max_length=256, help_text="rowId of the chosen row.")
    title = Str(required=False, allow_blank=True, max_length=256)


class _TemplateReply(serializers.Serializer[Any]):
    stanzaId = _stanza()
    selectedId = Str(max_length=256)
    selectedDisplayText = Str(required=False, allow_blank=True, max_length=256)
    selectedIndex = Int(required=False, min_value=0)


class _ReplyButton(serializers.Serializer[Any]):
    buttonId = Str(max_length=256)
    buttonText = Str(max_length=25)


class _InteractiveReply(serializers.Serializer[Any]):
    body = Str(max_length=1024)
    header = Str(required=False, allow_blank=True, max_length=60)
    footer = Str(required=False, allow_blank=True, max_length=60)
    buttons = _ReplyButton(many=True, allow_empty=False)

    def validate_buttons(self, value: list[Any]) -> list[Any]:
        if len(value) > 3:
            raise serializers.ValidationError(
                "'buttons' must contain less than or equal to 3 items", code="joi"
            )
        return value


KIND_FIELDS: dict[str, type[serializers.Serializer[Any]]] = {
    "textMessage": _Text,
    "extendedTextMessage": _ExtendedText,
    "quotedMessage": _Quoted,
    "imageMessage": _File,
    "videoMessage": _File,
    "audioMessage": _File,
    "documentMessage": _File,
    "stickerMessage": _Sticker,
    "locationMessage": _Location,
    "contactMessage": _Contact,
    "contactsArrayMessage": _ContactsArray,
    "reactionMessage": _Reaction,
    "groupInviteMessage": _GroupInvite,
    "pollMessage": _Poll,
    "pollUpdateMessage": _PollUpdate,
    "editedMessage": _Edited,
    "deletedMessage": _Deleted,
    "buttonsResponseMessage": _ButtonsResponse,
    "listResponseMessage": _ListResponse,
    "templateButtonsReplyMessage": _TemplateReply,
    "interactiveButtonsReply": _InteractiveReply,
}
assert set(KIND_FIELDS) == set(emulator_events.MESSAGE_KINDS)


class _FromContact(serializers.Serializer[Any]):
    phoneNumber = _phone("The simulated contact that writes (digits); created if new.")
    name = Str(required=False, allow_blank=True, max_length=100, help_text="Its profile name (senderName).")

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class _ToContact(serializers.Serializer[Any]):
    phoneNumber = _phone("Who the phone writes to (digits): a contact or another instance's phone.")

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class EventMessageOutput(serializers.Serializer[Any]):
    idMessage = serializers.CharField()
    chatId = serializers.CharField(help_text="The chat as the instance sees it.")
    typeMessage = serializers.CharField()


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


class _MessageEventView(ControlView):
    kind: str = ""
    Input: type[serializers.Serializer[Any]] = _Text

    def send(self, request: Request, id_instance: int) -> tuple[Any, dict[str, Any]]:
        instance = access_instance(request, id_instance)
        data = validate(self.Input, request.data)
        return instance, data


class _Incoming(_MessageEventView):
    def handle_event(self, request: Request, id_instance: int) -> Response:
        instance, data = self.send(request, id_instance)
        phone = data.pop("phoneNumber")
        name = data.pop("name", "")
        try:
            message = emulator_events.contact_sends(
                instance, phone=phone, kind=self.kind, fields=data, name=name
            )
        except emulator_events.EventError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(
            {"idMessage": message.id_message, "chatId": f"{phone}@c.us", "typeMessage": self.kind}
        )


class _PhoneSent(_MessageEventView):
    def handle_event(self, request: Request, id_instance: int) -> Response:
        instance, data = self.send(request, id_instance)
        phone = data.pop("phoneNumber")
        try:
            message = emulator_events.phone_sends(instance, phone=phone, kind=self.kind, fields=data)
        except emulator_events.EventError as exc:
            raise BadRequest(str(exc)) from exc
        return Response(
            {"idMessage": message.id_message, "chatId": f"{phone}@c.us", "typeMessage": self.kind}
        )


def _event_view(
    base: type[_MessageEventView], who: type[serializers.Serializer[Any]], kind: str, label: str
) -> Any:
    """One view (and one documented operation) per typeMessage."""
    name = f"{label}{_pascal(kind)}"
    fields = KIND_FIELDS[kind]
    # Declared fields are collected from both bases by DRF's serializer metaclass.
    serializer = type(f"{name}Input", (who, fields), {"__module__": __name__})
    summary = (
        f"A simulated contact sends the instance a {kind}"
        if base is _Incoming
        else f"The instance's phone sends a {kind} (outgoingMessageReceived)"
    )

    # A function of its own: extend_schema annotates the function object.
    @extend_schema(
        operation_id=f"emulator{name}",
        request=serializer,
        responses=EventMessageOutput,
        tags=TAGS,
        summary=summary,
    )
    def post(self: Any, request: Request, id_instance: int) -> Response:
        return cast(Response, self.handle_event(request, id_instance))

    attrs = {"kind": kind, "Input": serializer, "post": post, "__module__": __name__}
    return type(name, (base,), attrs)


class EventCallInput(serializers.Serializer[Any]):
    phoneNumber = _phone("The caller (digits); created if new.")
    name = Str(required=False, allow_blank=True, max_length=100)
    outcome = serializers.ChoiceField(
        choices=list(emulator_events.CALL_OUTCOMES),
        required=False,
        help_text="How the call ends; omitted: it keeps ringing until calls/{idCall}.",
    )

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class EventCallOutput(serializers.Serializer[Any]):
    idCall = serializers.CharField(help_text="The idMessage of both incomingCall notifications.")


class Calls(ControlView):
    """A contact calls the instance: incomingCall ``offer``, then the outcome."""

    @extend_schema(operation_id="emulatorCall", request=EventCallInput, responses=EventCallOutput, tags=TAGS)
    def post(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(EventCallInput, request.data)
        try:
            id_call = emulator_events.contact_calls(
                instance,
                phone=data["phoneNumber"],
                outcome=data.get("outcome", ""),
                name=data.get("name", ""),
            )
        except emulator_events.EventError as exc:
            raise BadRequest(str(exc)) from exc
        return Response({"idCall": id_call})


class EventCallEndInput(serializers.Serializer[Any]):
    outcome = serializers.ChoiceField(choices=list(emulator_events.CALL_OUTCOMES))


class EventResultOutput(serializers.Serializer[Any]):
    result = serializers.BooleanField()


class CallEnd(ControlView):
    """A ringing call ends: picked up, hung up or declined."""

    @extend_schema(
        operation_id="emulatorCallEnd", request=EventCallEndInput, responses=EventResultOutput, tags=TAGS
    )
    def post(self, request: Request, id_instance: int, id_call: str) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(EventCallEndInput, request.data)
        try:
            emulator_events.call_ends(instance, id_call=id_call, outcome=data["outcome"])
        except emulator_events.EventError as exc:
            raise BadRequest(str(exc)) from exc
        return Response({"result": True})


class EventBlockInput(serializers.Serializer[Any]):
    phoneNumber = _phone("The contact that blocks the account (digits).")

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class Block(ControlView):
    """A contact blocks the instance's account: incomingBlock."""

    @extend_schema(
        operation_id="emulatorBlock", request=EventBlockInput, responses=EventResultOutput, tags=TAGS
    )
    def post(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(EventBlockInput, request.data)
        try:
            emulator_events.contact_blocks(instance, phone=data["phoneNumber"])
        except emulator_events.EventError as exc:
            raise BadRequest(str(exc)) from exc
        return Response({"result": True})


def _routes() -> list[URLPattern]:
    routes = []
    for kind in emulator_events.MESSAGE_KINDS:
        incoming = _event_view(_Incoming, _FromContact, kind, "Incoming")
        sent = _event_view(_PhoneSent, _ToContact, kind, "PhoneSent")
        routes.append(path(f"instances/<int:id_instance>/incoming/{kind}", incoming.as_view()))
        routes.append(path(f"instances/<int:id_instance>/phone-sent/{kind}", sent.as_view()))
    return routes


urlpatterns: list[URLPattern] = [
    *_routes(),
    path("instances/<int:id_instance>/calls", Calls.as_view()),
    path("instances/<int:id_instance>/calls/<str:id_call>", CallEnd.as_view()),
    path("instances/<int:id_instance>/block", Block.as_view()),
]
