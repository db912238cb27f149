"""Sending (API.md §9.2) and send-queue methods (§9.5): thin adapters over
``messaging.services``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engines import registry as engine_registry
from instances.http import (
    Bool,
    InstanceMethodView,
    InstanceRequest,
    Str,
    Unsupported,
    ValidationFailed,
    fresh,
    wire_errors,
)
from instances.models import Instance
from messaging import services
from messaging.fields import (
    ChatId,
    Number,
    items_messages,
    many,
    quoted_message_id,
    reject_unknown_keys,
    typing_time,
)
from messaging.models import OutgoingMessage

URL_RE = re.compile(r"https?://\S+", re.IGNORECASE)


def _instance(request: Request) -> Any:
    return cast(InstanceRequest, request).instance


def idempotency_key(request: Request) -> str:
    """Our additive extension: the same key within 24 h returns the first idMessage."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 200:
        raise ValidationFailed("'Idempotency-Key' length must be less than or equal to 200 characters long")
    return key


def check_items(name: str, value: list[Any], min_items: int, max_items: int) -> None:
    """Array length in Joi's words (a ListField's own error reads "characters long")."""
    if len(value) < min_items:
        raise serializers.ValidationError(f"'{name}' must contain at least {min_items} items", code="joi")
    if len(value) > max_items:
        raise serializers.ValidationError(f"'{name}' must contain less than or equal to {max_items} items", code="joi")


class IdMessageOutput(serializers.Serializer[Any]):
    idMessage = serializers.CharField()


class SendView(InstanceMethodView):
    """Common shape of a send method: validate, queue, answer ``{"idMessage"}``.

    Methods whose payload is simply their validated body (minus the address) only set
    ``type_message``; the others override ``post``."""

    Output = IdMessageOutput
    type_message = ""

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        payload = {k: v for k, v in data.items() if k != "chatId"}
        return self.queue(request, chat_id=data["chatId"], type_message=self.type_message, echo=data, payload=payload)

    def validate(self, data: Any) -> dict[str, Any]:
        validated = super().validate(data)
        assert self.Input is not None
        reject_unknown_keys(fresh(self.Input), data)
        return validated

    def queue(
        self, request: Request, *, chat_id: str, type_message: str, echo: dict[str, Any], payload: dict[str, Any]
    ) -> Response:
        # Validated as a boolean by every Input that has it.
        archive_chat = isinstance(request.data, dict) and request.data.get("archiveChat") is True
        refuse_inert_options(_instance(request), echo, archive_chat=archive_chat)
        message = services.send(
            instance=_instance(request),
            method=self.wire_name,
            chat_id=chat_id,
            type_message=type_message,
            request=echo,
            payload=payload,
            idempotency_key=idempotency_key(request),
            archive_chat=archive_chat,
        )
        return Response({"idMessage": message.id_message})


def refuse_inert_options(instance: Instance, fields: Mapping[str, Any], *, archive_chat: bool) -> None:
    """A send's options that need a capability its engine lacks are refused with that
    capability's reason, before anything is queued (never accepted and dropped):
    ``typingTime`` needs the engine to show typing (sendTyping), ``archiveChat: true``
    needs it to archive chats (archiveChat)."""
    spec = engine_registry.spec(instance.engine)
    if fields.get("typingTime") and not spec.supports("sendTyping"):
        raise Unsupported("typingTime", instance.engine, spec.why_not.get("sendTyping", ""))
    if archive_chat and not spec.supports("archiveChat"):
        raise Unsupported("archiveChat", instance.engine, spec.why_not.get("archiveChat", ""))


class CustomPreview(serializers.Serializer[Any]):
    title = Str(required=False, allow_blank=True, max_length=1000)
    description = Str(required=False, allow_blank=True, max_length=5000)
    link = Str(required=False, allow_blank=True, max_length=2000)
    urlFile = Str(required=False, allow_blank=True, max_length=2000)
    jpegThumbnail = Str(required=False, allow_blank=True, max_length=70_000)


class SendMessage(SendView):
    wire_name = "sendMessage"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        message = Str(max_length=20_000)
        quotedMessageId = quoted_message_id()
        linkPreview = Bool(required=False)
        typePreview = serializers.ChoiceField(choices=["large", "small"], required=False)
        customPreview = CustomPreview(required=False)
        typingTime = typing_time()
        archiveChat = Bool(required=False)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        type_message, echo, payload = compose_send_message(data, bool(_instance(request).setting("linkPreview")))
        return self.queue(request, chat_id=data["chatId"], type_message=type_message, echo=echo, payload=payload)


def compose_send_message(data: dict[str, Any], link_preview_default: bool) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(typeMessage, showMessagesQueue echo, transport payload) of a validated
    sendMessage body. Shared by the view and the fast lane (messaging/fastlane.py)."""
    link_preview = data.get("linkPreview", link_preview_default)
    echo = {
        "chatId": data["chatId"],
        "message": data["message"],
        "quotedMessageId": data.get("quotedMessageId"),
        "linkPreview": link_preview,
        "typePreview": data.get("typePreview", "small"),
        "customPreview": data.get("customPreview"),
        "typingTime": data.get("typingTime"),
    }
    has_link = bool(URL_RE.search(data["message"]))
    type_message = "extendedTextMessage" if (has_link and link_preview) or data.get("customPreview") else "textMessage"
    payload = {k: v for k, v in echo.items() if v is not None and k != "chatId"}
    return type_message, echo, payload


class PollOption(serializers.Serializer[Any]):
    optionName = Str(max_length=100)


class SendPoll(SendView):
    wire_name = "sendPoll"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        message = Str(max_length=255)
        options = many(PollOption, 2, 12, error_messages=items_messages("options"))
        multipleAnswers = Bool(required=False)
        quotedMessageId = quoted_message_id()
        typingTime = typing_time()

        def validate_options(self, value: list[dict[str, str]]) -> list[dict[str, str]]:
            seen: set[str] = set()
            for index, option in enumerate(value):
                if option["optionName"] in seen:
                    raise serializers.ValidationError(f"'options[{index}]' contains a duplicate value", code="joi")
                seen.add(option["optionName"])
            return value

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        echo = {
            "chatId": data["chatId"],
            "message": data["message"],
            "options": data["options"],
            "multipleAnswers": data.get("multipleAnswers", False),
            "quotedMessageId": data.get("quotedMessageId"),
            "typingTime": data.get("typingTime"),
        }
        payload = {k: v for k, v in echo.items() if v is not None and k != "chatId"}
        return self.queue(request, chat_id=data["chatId"], type_message="pollMessage", echo=echo, payload=payload)


class SendLocation(SendView):
    wire_name = "sendLocation"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        nameLocation = Str(required=False, allow_blank=True, max_length=1000)
        address = Str(required=False, allow_blank=True, max_length=1000)
        latitude = Number(min_value=-90, max_value=90)
        longitude = Number(min_value=-180, max_value=180)
        quotedMessageId = quoted_message_id()
        typingTime = typing_time()

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        echo = {
            "chatId": data["chatId"],
            "nameLocation": data.get("nameLocation", ""),
            "address": data.get("address", ""),
            "latitude": data["latitude"],
            "longitude": data["longitude"],
            "quotedMessageId": data.get("quotedMessageId"),
            "typingTime": data.get("typingTime"),
        }
        payload = {k: v for k, v in echo.items() if v is not None and k != "chatId"}
        return self.queue(request, chat_id=data["chatId"], type_message="locationMessage", echo=echo, payload=payload)


class ContactCard(serializers.Serializer[Any]):
    phoneContact = serializers.IntegerField(min_value=1_000_000, max_value=999_999_999_999_999)
    firstName = Str(required=False, allow_blank=True, max_length=200)
    middleName = Str(required=False, allow_blank=True, max_length=200)
    lastName = Str(required=False, allow_blank=True, max_length=200)
    company = Str(required=False, allow_blank=True, max_length=200)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs.get("firstName") or attrs.get("lastName") or attrs.get("company")):
            raise serializers.ValidationError(
                "'contact' must contain at least one of [firstName, lastName, company]", code="joi"
            )
        return attrs


class SendContact(SendView):
    wire_name = "sendContact"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        contact = ContactCard()
        quotedMessageId = quoted_message_id()
        typingTime = typing_time()

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        echo = {
            "chatId": data["chatId"],
            "contact": data["contact"],
            "quotedMessageId": data.get("quotedMessageId"),
            "typingTime": data.get("typingTime"),
        }
        payload = {k: v for k, v in echo.items() if v is not None and k != "chatId"}
        return self.queue(request, chat_id=data["chatId"], type_message="contactMessage", echo=echo, payload=payload)


# --- Queue methods -------------------------------------------------------------------------


class QueueItemOutput(serializers.Serializer[Any]):
    messageID = serializers.CharField()
    type = serializers.CharField()
    body = serializers.DictField()


def queue_items(messages: list[OutgoingMessage]) -> list[dict[str, Any]]:
    """showMessagesQueue items; one forwardMessages call is one item with its ids."""
    items: list[dict[str, Any]] = []
    last_call: tuple[Any, Any] | None = None
    for message in messages:
        if message.method == "forwardMessages":
            last = items[-1] if items else None
            # Rows of one call share request and created_at; two calls with equal
            # bodies are two items.
            call = (message.created_at, message.request)
            if last is not None and last["type"] == "ForwardMessages" and last_call == call:
                last["messagesIDs"].append(message.id_message)
                continue
            last_call = call
            items.append({"messagesIDs": [message.id_message], "type": "ForwardMessages", "body": message.request})
        else:
            items.append({"messageID": message.id_message, "type": message.method, "body": message.request})
    return items


class ShowMessagesQueue(InstanceMethodView):
    wire_name = "showMessagesQueue"
    Output = QueueItemOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(queue_items(services.queued_messages(_instance(request))))


class ClearedOutput(serializers.Serializer[Any]):
    isCleared = serializers.BooleanField()


class ClearMessagesQueue(InstanceMethodView):
    wire_name = "clearMessagesQueue"
    Output = ClearedOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        services.clear_messages_queue(_instance(request))
        return Response({"isCleared": True})


class MessagesCountOutput(serializers.Serializer[Any]):
    count = serializers.IntegerField()


class GetMessagesCount(InstanceMethodView):
    wire_name = "getMessagesCount"
    Output = MessagesCountOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        # API.md §14: the docs show a Cyrillic "сount" key; we emit the Latin one.
        return Response({"count": services.messages_count(_instance(request))})


# --- Interactive and deprecated sends ------------------------------------------


class InteractiveButton(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=["copy", "call", "url"])
    buttonId = Str(max_length=256)
    buttonText = Str(max_length=25)
    copyCode = Str(required=False, max_length=256)
    phoneNumber = Str(required=False, max_length=20)
    url = Str(required=False, max_length=2000)


BUTTON_TYPE_FIELD = {"copy": "copyCode", "call": "phoneNumber", "url": "url"}


class ReplyButton(serializers.Serializer[Any]):
    buttonId = Str(max_length=256)
    buttonText = Str(max_length=25)


def interactive_input(button: type[serializers.Serializer[Any]]) -> type[serializers.Serializer[Any]]:
    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        header = Str(required=False, allow_blank=True, max_length=60)
        body = Str(max_length=20_000)
        footer = Str(required=False, allow_blank=True, max_length=60)
        buttons = many(button, 1, 3, error_messages=items_messages("buttons"))
        typingTime = typing_time()

    return Input


class SendInteractiveButtons(SendView):
    wire_name = "sendInteractiveButtons"

    class Input(interactive_input(InteractiveButton)):  # type: ignore[misc]
        def validate_buttons(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
            # Checked here, not in InteractiveButton.validate, to name the button's index.
            for index, button in enumerate(value):
                needed = BUTTON_TYPE_FIELD[button["type"]]
                if not button.get(needed):
                    raise serializers.ValidationError(f"'buttons[{index}].{needed}' is required", code="joi")
            return value

    type_message = "interactiveButtons"


class SendInteractiveButtonsReply(SendInteractiveButtons):
    wire_name = "sendInteractiveButtonsReply"
    Input = interactive_input(ReplyButton)  # type: ignore[assignment]
    type_message = "interactiveButtonsReply"


class SendTyping(InstanceMethodView):
    """Show 'typing…' (or 'recording…') in a chat. Empty 200 body (API.md §14)."""

    wire_name = "sendTyping"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        typingTime = typing_time()
        typingType = serializers.ChoiceField(choices=["typing", "recording"], required=False)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        with wire_errors():
            services.send_typing(
                _instance(request),
                chat_id=data["chatId"],
                milliseconds=data.get("typingTime", 1000),
                recording=data.get("typingType") == "recording",
            )
        return Response(status=200)


class LegacyButton(serializers.Serializer[Any]):
    buttonId = Str(max_length=256)
    buttonText = Str(max_length=25)


class SendButtons(SendView):
    """Deprecated by GREEN-API but still routable: queued like any message."""

    wire_name = "sendButtons"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        message = Str(max_length=20_000)
        footer = Str(required=False, allow_blank=True, max_length=60)
        buttons = many(LegacyButton, 1, 3, error_messages=items_messages("buttons"))
        quotedMessageId = quoted_message_id()
        archiveChat = Bool(required=False)

    type_message = "buttonsMessage"


class SendTemplateButtons(SendView):
    wire_name = "sendTemplateButtons"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        message = Str(max_length=20_000)
        footer = Str(required=False, allow_blank=True, max_length=60)
        templateButtons = serializers.ListField(child=serializers.DictField())
        quotedMessageId = quoted_message_id()
        archiveChat = Bool(required=False)

        def validate_templateButtons(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:  # noqa: N802
            check_items("templateButtons", value, 1, 3)
            return value

    type_message = "templateMessage"


class ListRow(serializers.Serializer[Any]):
    title = Str(max_length=24)
    rowId = Str(max_length=200)
    description = Str(required=False, allow_blank=True, max_length=72)


class ListSection(serializers.Serializer[Any]):
    title = Str(required=False, allow_blank=True, max_length=24)
    rows = many(ListRow, 1, 10)


class SendListMessage(SendView):
    wire_name = "sendListMessage"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        message = Str(max_length=20_000)
        title = Str(required=False, allow_blank=True, max_length=60)
        footer = Str(required=False, allow_blank=True, max_length=60)
        buttonText = Str(max_length=24)
        sections = many(ListSection, 1, 10, error_messages=items_messages("sections"))
        quotedMessageId = quoted_message_id()
        archiveChat = Bool(required=False)

    type_message = "listMessage"


class SendLink(SendView):
    wire_name = "sendLink"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        urlLink = Str(max_length=2000)
        quotedMessageId = quoted_message_id()

        def validate_urlLink(self, value: str) -> str:  # noqa: N802 - wire name
            if not URL_RE.fullmatch(value):
                raise serializers.ValidationError("'urlLink' must be a valid uri", code="joi")
            return value

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        payload = {"message": data["urlLink"], "linkPreview": True}
        if data.get("quotedMessageId"):
            payload["quotedMessageId"] = data["quotedMessageId"]
        return self.queue(request, chat_id=data["chatId"], type_message="extendedTextMessage", echo=data, payload=payload)


class TemplateParam(serializers.Serializer[Any]):
    default = Str(max_length=1024)


class SendTemplate(SendView):
    """GREEN-API's removed sendTemplate, answered by engines with templates (the cloud
    engine: Meta's approved templates, the only messages Meta delivers outside the
    24-hour window). ``params`` fill the body's variables in order; ``components``
    (a Relay extension) are Meta's template components as they are."""

    wire_name = "sendTemplate"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        name = Str(max_length=512)
        languageCode = Str(max_length=20)
        namespace = Str(required=False, allow_blank=True, max_length=200)
        params = many(TemplateParam, 0, 100, required=False)
        components = serializers.ListField(child=serializers.DictField(), required=False, max_length=20)
        quotedMessageId = quoted_message_id()

    type_message = "templateMessage"


class SendReaction(SendView):
    """A Relay extension (not a GREEN-API method): react to a message of the chat
    with an emoji (an empty ``reaction`` removes ours). Answered by the cloud engine."""

    wire_name = "sendReaction"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        idMessage = Str(max_length=128)
        reaction = Str(allow_blank=True, max_length=16)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        payload = {"messageId": data["idMessage"], "reaction": data["reaction"]}
        return self.queue(request, chat_id=data["chatId"], type_message="reactionMessage", echo=data, payload=payload)
