"""Read marks, service and contact methods (API.md §9.8–9.10): one thin view per
wire method. Business rules live in ``journals.chats``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from instances.http import (
    BadRequest,
    Bool,
    InstanceMethodView,
    InstanceRequest,
    Int,
    Str,
    ValidationFailed,
    validate,
    wire_errors,
)
from journals import chats
from messaging.fields import ChatId, legacy_phone_number

T = TypeVar("T")
PERSONAL_RE = re.compile(r"^(\d{5,20}@c\.us|\d{5,25}@lid)$")
PERSONAL_FORMATS = "'phone_number@c.us' or 'chat_id@lid'"
BAD_PHONE = "bad phone number, valid 11 or 12 digits"


def call(func: Callable[..., T], request: Request, **kwargs: Any) -> T:
    with wire_errors():
        return func(cast(InstanceRequest, request).instance, **kwargs)


class PersonalChatId(Str):
    """A user's chat id (``@c.us`` or ``@lid``): contacts are never groups."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not PERSONAL_RE.match(value):
            raise serializers.ValidationError(
                f"'{self.field_name}' must be one of the next formats: {PERSONAL_FORMATS}", code="joi"
            )
        return value


class QueryBool(serializers.Field[bool, Any, Any, Any]):
    """A boolean query parameter: ``true`` or ``false``."""

    default_error_messages = {"invalid": "must be a boolean"}

    def to_internal_value(self, data: Any) -> bool:
        value = str(data).lower()
        if value not in ("true", "false"):
            raise serializers.ValidationError(f"'{self.field_name}' must be a boolean", code="joi")
        return value == "true"

    def to_representation(self, value: bool) -> bool:
        return value


# --- Read marks -----------------------------------------------------------------------


class SetReadOutput(serializers.Serializer[Any]):
    setRead = serializers.BooleanField()


class ReadChat(InstanceMethodView):
    wire_name = "readChat"
    Output = SetReadOutput

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        idMessage = Str(required=False, max_length=64)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        call(chats.read_chat, request, chat_id=data["chatId"], id_message=data.get("idMessage", ""))
        return Response({"setRead": True})


# --- Service methods --------------------------------------------------------------------


class PhoneNumber(serializers.Field[str, Any, Any, Any]):
    """checkWhatsapp's legacy ``phoneNumber``: an integer (or a string of digits)."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool) or not isinstance(data, int | str):
            raise serializers.ValidationError("'phoneNumber' must be a number", code="joi")
        value = str(data)
        if not value.isdigit():
            raise serializers.ValidationError("Wrong format. 'phoneNumber' must contain only digits", code="joi")
        return value

    def to_representation(self, value: str) -> str:
        return value


class CheckWhatsappOutput(serializers.Serializer[Any]):
    existsWhatsapp = serializers.BooleanField()
    chatId = serializers.CharField(required=False)
    phoneNumber = serializers.IntegerField(required=False)
    fromCache = serializers.BooleanField()


class CheckWhatsapp(InstanceMethodView):
    wire_name = "checkWhatsapp"
    Output = CheckWhatsappOutput

    class Input(serializers.Serializer[Any]):
        phoneNumber = PhoneNumber(required=False)
        chatId = PersonalChatId(required=False)
        force = Bool(required=False)

    def post(self, request: Request, **kwargs: Any) -> Response:
        """Newer GREEN-API answers add ``chatId`` (@lid), ``username``,
        ``phoneNumber`` and ``fromCache`` (API.md; its assumption for a clone is
        ``existsWhatsapp`` + ``chatId``). ``chatId`` is the id this instance keeps
        the chat under (``chats.WhatsappAnswer``); ``username`` is left out: no
        engine here learns one."""
        data = self.validate(request.data)
        if "chatId" in data:
            chat_id = data["chatId"]
        elif "phoneNumber" in data:
            if not 11 <= len(data["phoneNumber"]) <= 16:
                raise BadRequest(BAD_PHONE)
            chat_id = f"{data['phoneNumber']}@c.us"
        else:
            raise ValidationFailed("'value' must contain at least one of [phoneNumber, chatId]")
        answer = call(chats.check_whatsapp, request, chat_id=chat_id, force=data.get("force", False))
        if not answer.account.exists:
            return Response({"existsWhatsapp": False, "fromCache": answer.from_cache})
        return Response(
            {
                "existsWhatsapp": True,
                "chatId": answer.chat_id,
                "phoneNumber": int(answer.account.phone),
                "fromCache": answer.from_cache,
            }
        )


class AvatarOutput(serializers.Serializer[Any]):
    existsWhatsapp = serializers.BooleanField()
    urlAvatar = serializers.CharField()
    available = serializers.BooleanField()


class GetAvatar(InstanceMethodView):
    wire_name = "getAvatar"
    Output = AvatarOutput

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(legacy_phone_number(request.data))
        avatar = call(chats.get_avatar, request, chat_id=data["chatId"])
        return Response({"existsWhatsapp": avatar.exists, "urlAvatar": avatar.url, "available": bool(avatar.url)})


class ContactOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    name = serializers.CharField()
    contactName = serializers.CharField()
    type = serializers.ChoiceField(choices=["user", "group"])


class ContactsQuery(serializers.Serializer[Any]):
    group = QueryBool(required=False)
    count = Int(required=False, min_value=1)


class GetContacts(InstanceMethodView):
    wire_name = "getContacts"
    Query = ContactsQuery  # query-string parameters (the cabinet's API console reads this)
    Output = ContactOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        query = validate(ContactsQuery, request.query_params)
        items = call(chats.get_contacts, request, group=query.get("group"), count=query.get("count"))
        return Response([{"id": c.chat_id, "name": c.name, "contactName": c.contact_name, "type": c.type} for c in items])


class ContactInfoOutput(serializers.Serializer[Any]):
    avatar = serializers.CharField()
    name = serializers.CharField()
    contactName = serializers.CharField()
    email = serializers.CharField()
    category = serializers.CharField()
    description = serializers.CharField()
    products = serializers.ListField(child=serializers.DictField())
    chatId = serializers.CharField()
    lastSeen = serializers.IntegerField(allow_null=True)
    isArchive = serializers.BooleanField()
    isDisappearing = serializers.BooleanField()
    isMute = serializers.BooleanField()
    messageExpiration = serializers.IntegerField()
    muteExpiration = serializers.IntegerField(allow_null=True)
    isBusiness = serializers.BooleanField()


class GetContactInfo(InstanceMethodView):
    wire_name = "getContactInfo"
    Output = ContactInfoOutput

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()

        def validate_chatId(self, value: str) -> str:  # noqa: N802 - wire name
            if value.endswith("@g.us"):
                raise serializers.ValidationError("The method GetContactInfo does not support group chats", code="joi")
            return value

    def post(self, request: Request, **kwargs: Any) -> Response:
        return self.answer(request, self.validate(request.data))

    def get(self, request: Request, **kwargs: Any) -> Response:
        # The 2023 docs used GET (with a body); a query string works too.
        body = request.data or {k: request.query_params.get(k) for k in request.query_params}
        return self.answer(request, self.validate(body))

    def answer(self, request: Request, data: dict[str, Any]) -> Response:
        info = call(chats.get_contact_info, request, chat_id=data["chatId"])
        peer, chat = info.peer, info.chat
        expiration = chat.ephemeral_expiration if chat else 0
        return Response(
            {
                "avatar": peer.avatar_url if peer else "",
                "name": peer.name if peer else "",
                "contactName": peer.contact_name if peer else "",
                "email": peer.email if peer else "",
                "category": "",
                "description": peer.about if peer else "",
                "products": list(peer.products) if peer else [],
                "chatId": info.chat_id,
                "lastSeen": peer.last_seen if peer else None,
                "isArchive": bool(chat and chat.archived),
                "isDisappearing": expiration > 0,
                "isMute": bool(peer and peer.is_mute),
                "messageExpiration": expiration,
                "muteExpiration": peer.mute_expiration if peer else None,
                "isBusiness": bool(peer and peer.is_business),
            }
        )


class DeleteMessage(InstanceMethodView):
    wire_name = "deleteMessage"

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        idMessage = Str(max_length=64)
        onlySenderDelete = Bool(required=False)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        call(
            chats.delete_message,
            request,
            chat_id=data["chatId"],
            id_message=data["idMessage"],
            only_me=data.get("onlySenderDelete", False),
        )
        return Response(status=200)


class IdMessageOutput(serializers.Serializer[Any]):
    idMessage = serializers.CharField()


class EditMessage(InstanceMethodView):
    wire_name = "editMessage"
    Output = IdMessageOutput

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        idMessage = Str(max_length=64)
        message = Str(max_length=20_000)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        id_message = call(
            chats.edit_message, request, chat_id=data["chatId"], id_message=data["idMessage"], text=data["message"]
        )
        return Response({"idMessage": id_message})


class ChatInput(serializers.Serializer[Any]):
    chatId = ChatId()


class ArchiveChat(InstanceMethodView):
    wire_name = "archiveChat"
    Input = ChatInput

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        call(chats.archive_chat, request, chat_id=data["chatId"], archived=True)
        return Response(status=200)


class UnarchiveChat(InstanceMethodView):
    wire_name = "unarchiveChat"
    Input = ChatInput

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        call(chats.archive_chat, request, chat_id=data["chatId"], archived=False)
        return Response(status=200)


class DisappearingOutput(serializers.Serializer[Any]):
    chatId = serializers.CharField()
    disappearingMessagesInChat = serializers.BooleanField()
    ephemeralExpiration = serializers.IntegerField()


class SetDisappearingChat(InstanceMethodView):
    wire_name = "setDisappearingChat"
    Output = DisappearingOutput

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        ephemeralExpiration = Int(required=False)

        def validate_ephemeralExpiration(self, value: int) -> int:  # noqa: N802 - wire name
            if value not in chats.EPHEMERAL_EXPIRATIONS:
                allowed = ", ".join(str(v) for v in chats.EPHEMERAL_EXPIRATIONS)
                raise serializers.ValidationError(f"'ephemeralExpiration' must be one of [{allowed}]", code="joi")
            return value

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        row = call(
            chats.set_disappearing, request, chat_id=data["chatId"], expiration=data.get("ephemeralExpiration", 0)
        )
        return Response(
            {
                "chatId": row.chat_id,
                "disappearingMessagesInChat": row.ephemeral_expiration > 0,
                "ephemeralExpiration": row.ephemeral_expiration,
            }
        )


class ChatOutput(serializers.Serializer[Any]):
    archive = serializers.BooleanField()
    id = serializers.CharField()
    ephemeralExpiration = serializers.IntegerField()
    ephemeralSettingTimestamp = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["user", "group"])


class CountQuery(serializers.Serializer[Any]):
    count = Int(required=False, min_value=1)


class GetChats(InstanceMethodView):
    wire_name = "getChats"
    Query = CountQuery  # query-string parameters (the cabinet's API console reads this)
    Output = ChatOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        query = validate(CountQuery, request.query_params)
        rows = call(chats.get_chats, request, count=query.get("count"))
        return Response(
            [
                {
                    "archive": row.archived,
                    "id": row.chat_id,
                    "ephemeralExpiration": row.ephemeral_expiration,
                    "ephemeralSettingTimestamp": int(row.ephemeral_set_at.timestamp()) if row.ephemeral_set_at else 0,
                    "name": row.name,
                    "type": chats.chat_type(row.chat_id),
                }
                for row in rows
            ]
        )


# --- Contacts -----------------------------------------------------------------------------


class ContactInput(serializers.Serializer[Any]):
    chatId = PersonalChatId()
    firstName = Str(max_length=100)
    lastName = Str(required=False, allow_blank=True, max_length=100)
    saveInAddressbook = Bool(required=False)


class AddContactOutput(serializers.Serializer[Any]):
    addContact = serializers.BooleanField()


class AddContact(InstanceMethodView):
    wire_name = "addContact"
    Input = ContactInput
    Output = AddContactOutput

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        call(
            chats.save_contact,
            request,
            chat_id=data["chatId"],
            first_name=data["firstName"],
            last_name=data.get("lastName", ""),
            in_addressbook=data.get("saveInAddressbook", True),
        )
        return Response({"addContact": True})


class EditContactOutput(serializers.Serializer[Any]):
    editContact = serializers.BooleanField()


class EditContact(InstanceMethodView):
    wire_name = "editContact"
    Input = ContactInput
    Output = EditContactOutput

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        call(
            chats.save_contact,
            request,
            chat_id=data["chatId"],
            first_name=data["firstName"],
            last_name=data.get("lastName", ""),
            in_addressbook=data.get("saveInAddressbook", True),
        )
        return Response({"editContact": True})


class DeleteContactOutput(serializers.Serializer[Any]):
    deleteContact = serializers.BooleanField()


class DeleteContact(InstanceMethodView):
    wire_name = "deleteContact"
    Output = DeleteContactOutput

    class Input(serializers.Serializer[Any]):
        chatId = PersonalChatId()

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        deleted = call(chats.delete_contact, request, chat_id=data["chatId"])
        return Response({"deleteContact": deleted})
