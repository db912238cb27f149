"""File sending (API.md §9.2): sendFileByUpload, sendFileByUrl and uploadFile.

Uploads are streamed to disk in chunks and capped at ``MEDIA_MAX_BYTES`` (413, nothing
stored); the stored file's type comes from its content. sendFileByUrl only queues: the
worker fetches the URL (``media.prepare_payload``) right before sending.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from instances.http import (
    Bool,
    InstanceMethodView,
    InstanceRequest,
    PayloadTooLarge,
    Str,
    UploadMixin,
    ValidationFailed,
    too_large_message,
    validate,
)
from instances.models import Instance
from messaging import media, services
from messaging.api import IdMessageOutput, idempotency_key, refuse_inert_options
from messaging.fields import ChatId, legacy_phone_number, quoted_message_id, typing_time
from messaging.models import MediaFile, OutgoingMessage


def _instance(request: Request) -> Instance:
    return cast(InstanceRequest, request).instance


def _earlier(instance: Instance, key: str) -> OutgoingMessage | None:
    """The message an Idempotency-Key already produced, if any."""
    if not key:
        return None
    return OutgoingMessage.objects.filter(instance=instance, idempotency_key=key).first()


class UploadField(serializers.FileField):
    """A multipart file part (Joi-style errors, an empty file is refused)."""

    def to_internal_value(self, data: Any) -> UploadedFile[bytes]:
        if not isinstance(data, UploadedFile):
            raise serializers.ValidationError(f"'{self.field_name}' must be a file", code="joi")
        if not data.size:
            raise serializers.ValidationError(f"'{self.field_name}' is not allowed to be empty", code="joi")
        return data

    def to_representation(self, value: Any) -> str:
        return str(getattr(value, "name", value))


class HttpUrl(Str):
    """An absolute http(s) URL with a host."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            parts = urlsplit(value)
            ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and not any(
                ch.isspace() for ch in value
            )
        except ValueError:
            ok = False
        if not ok:
            raise serializers.ValidationError(
                f"'{self.field_name}' must be a valid uri with a scheme matching the http|https pattern", code="joi"
            )
        return value


def typing_type() -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=["typing", "recording"], required=False)


class SendFileOutput(serializers.Serializer[Any]):
    idMessage = serializers.CharField()
    urlFile = serializers.CharField()


class UrlFileOutput(serializers.Serializer[Any]):
    urlFile = serializers.CharField()


class SendFileByUploadForm(serializers.Serializer[Any]):
    chatId = ChatId()
    file = UploadField()
    fileName = Str(required=False, allow_blank=True, max_length=255)
    caption = Str(required=False, allow_blank=True, max_length=20_000)
    quotedMessageId = quoted_message_id()
    typingTime = typing_time()
    typingType = typing_type()


class SendFileByUpload(UploadMixin, InstanceMethodView):
    """Multipart: a `file` part plus form fields; answers `idMessage` and the file's
    `urlFile` (valid 15 days, reusable with sendFileByUrl)."""

    wire_name = "sendFileByUpload"
    Output = SendFileOutput

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # Before anything reads the body: file parts go to disk, capped.
        request.upload_handlers = [media.CappedUploadHandler(request, limit=settings.MEDIA_MAX_BYTES)]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(request={"multipart/form-data": SendFileByUploadForm})
    def post(self, request: Request, **kwargs: Any) -> Response:
        instance = _instance(request)
        key = idempotency_key(request)
        earlier = _earlier(instance, key)
        if earlier is not None:
            return Response({"idMessage": earlier.id_message, "urlFile": earlier.payload.get("urlFile", "")})
        try:
            body = request.data
        except media.FileTooLarge as exc:
            raise PayloadTooLarge(str(exc))
        except RequestDataTooBig:
            raise PayloadTooLarge()
        data = validate(SendFileByUploadForm, body)
        uploaded: UploadedFile[bytes] = data["file"]
        file_name = data.get("fileName") or uploaded.name or ""
        media_file = media.store(
            instance_id=instance.id,
            received=media.received_upload(uploaded),
            file_name=file_name,
            fallbacks=[media.mime_from_name(file_name), media.mime_from_header(uploaded.content_type)],
        )
        echo = {
            "chatId": data["chatId"],
            "fileName": media_file.file_name,
            "caption": data.get("caption"),
            "urlFile": media.signed_url(media_file),
            "quotedMessageId": data.get("quotedMessageId"),
            "typingTime": data.get("typingTime"),
            "typingType": data.get("typingType"),
        }
        message = _queue_file(self.wire_name, instance, media_file, echo, key)
        return Response({"idMessage": message.id_message, "urlFile": message.payload.get("urlFile", "")})


def _queue_file(
    method: str, instance: Instance, media_file: MediaFile, echo: dict[str, Any], key: str
) -> OutgoingMessage:
    fields = {k: v for k, v in echo.items() if k not in ("chatId", "urlFile")}
    refuse_inert_options(instance, echo, archive_chat=False)
    return services.send(
        instance=instance,
        method=method,
        chat_id=echo["chatId"],
        type_message=media.type_message_for(media_file.mime_type),
        request=echo,
        payload=media.file_payload(media_file, **fields),
        is_file=True,
        idempotency_key=key,
    )


class SendFileByUrl(InstanceMethodView):
    """Queues at once; the file is downloaded (SSRF-guarded, 100 MB cap) by the
    worker right before sending. A failed download fails the message with the reason
    as its description. Our own `urlFile` links are read from storage directly."""

    wire_name = "sendFileByUrl"
    Output = IdMessageOutput

    class Input(serializers.Serializer[Any]):
        chatId = ChatId()
        urlFile = HttpUrl()
        fileName = Str()
        caption = Str(required=False, allow_blank=True, max_length=20_000)
        quotedMessageId = quoted_message_id()
        typingTime = typing_time()
        typingType = typing_type()
        archiveChat = Bool(required=False)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(legacy_phone_number(request.data))
        echo = {
            "chatId": data["chatId"],
            "urlFile": data["urlFile"],
            "fileName": data["fileName"],
            "caption": data.get("caption"),
            "quotedMessageId": data.get("quotedMessageId"),
            "typingTime": data.get("typingTime"),
            "typingType": data.get("typingType"),
        }
        payload = {k: v for k, v in echo.items() if v is not None and k != "chatId"}
        refuse_inert_options(_instance(request), echo, archive_chat=data.get("archiveChat", False))
        # The real type is known once the worker has the file; the name is the guess.
        guess = media.mime_from_name(data["fileName"]) or media.OCTET_STREAM
        message = services.send(
            instance=_instance(request),
            method=self.wire_name,
            chat_id=data["chatId"],
            type_message=media.type_message_for(guess),
            request=echo,
            payload=payload,
            is_file=True,
            idempotency_key=idempotency_key(request),
            archive_chat=data.get("archiveChat", False),
        )
        return Response({"idMessage": message.id_message})


def _header_text(value: str) -> str:
    """Servers hand us header bytes as latin-1; clients send UTF-8 file names."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


class UploadFile(InstanceMethodView):
    """Raw body (the file) with its `Content-Type` and an optional `GA-Filename`;
    answers the `urlFile` to use with sendFileByUrl (valid 15 days)."""

    wire_name = "uploadFile"
    Output = UrlFileOutput

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        self.http_request = request  # the body is read from here, in chunks
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(request={"application/octet-stream": OpenApiTypes.BINARY})
    def post(self, request: Request, **kwargs: Any) -> Response:
        instance = _instance(request)
        limit = settings.MEDIA_MAX_BYTES
        declared = str(request.META.get("CONTENT_LENGTH") or "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(too_large_message(int(declared), limit))
        try:
            received = media.spool(
                media.read_stream(self.http_request), limit=limit, too_large=lambda n: media.FileTooLarge(n, limit)
            )
        except media.FileTooLarge as exc:
            raise PayloadTooLarge(str(exc))
        try:
            if received.size == 0:
                raise ValidationFailed("'file' is not allowed to be empty")
            file_name = _header_text(request.headers.get("GA-Filename", ""))
            media_file = media.store(
                instance_id=instance.id,
                received=received,
                file_name=file_name,
                fallbacks=[media.mime_from_header(request.headers.get("Content-Type")), media.mime_from_name(file_name)],
            )
        finally:
            received.file.close()
        return Response({"urlFile": media.signed_url(media_file)})
