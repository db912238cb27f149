"""Emulator control API (Relay extension): ``/api/v1/emulator/…``.

Drives the simulated network the way a phone would: scan a QR code, confirm a
pairing code, read the registration SMS, force a state, add simulated contacts.
Authorized by ``Authorization: Bearer <apiTokenInstance>`` of that instance, the
owning account's partner token, or a logged-in session of the owner.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import cache_control
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import CSRFCheck
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from engines.emulator import pairing
from engines.emulator import transport as emulator
from engines.emulator.models import CallRule, EmuContact, EmuMute, EmuPhone
from engines.emulator.phones import PhoneClaimed
from engines.emulator.services import FORCEABLE_STATES, add_simulated_contact
from instances import services
from instances.http import BadRequest, Bool, Forbidden, Int, Str, Unauthorized, WireJSONParser, validate
from instances.models import Engine, Instance, State

PHONE_FIELD = {"min_length": 7, "max_length": 15}


def access_instance(request: Request, id_instance: int) -> Instance:
    """The emulator instance the caller may control; 401/403 otherwise.

    An instance that exists but belongs to someone else answers exactly like one
    that does not exist, so ids do not leak across tenants."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    django_request = request._request  # noqa: SLF001 - the session lives on Django's request
    user = None
    if not token:
        # Read the session directly: DRF has replaced ``request.user`` with its own
        # (None, as the wire API has no authentication classes) by the time views run.
        user = get_user(django_request)
        if not user.is_authenticated:
            # Before the lookup: anonymous callers must not learn which ids exist.
            raise Unauthorized()
    instance = Instance.objects.filter(pk=id_instance, is_deleted=False).select_related("account").first()
    if instance is None:
        raise Forbidden()
    if token:
        allowed = hmac.compare_digest(token.encode(), instance.api_token.encode()) or hmac.compare_digest(
            token.encode(), instance.account.partner_token.encode()
        )
    else:
        assert user is not None
        check_csrf(django_request)
        allowed = instance.account.user_id == user.pk or user.is_staff
    if not allowed or instance.is_suspended:
        raise Forbidden()  # suspended instances are refused here as on the wire API
    if instance.engine != Engine.EMULATOR:
        raise serializers.ValidationError({"idInstance": ["this instance does not use the emulator engine"]})
    return instance


def _no_response(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


def check_csrf(request: HttpRequest) -> None:
    """Session (cookie) callers need a CSRF token on writes, as in the cabinet; without
    it any web page the owner visits could pair or block their instances. Bearer
    callers are not at risk: browsers never add that header on their own."""
    check = CSRFCheck(_no_response)
    check.process_request(request)
    if check.process_view(request, _no_response, (), {}) is not None:
        raise Forbidden()


def digits(value: str, name: str) -> str:
    value = value.lstrip("+")
    if not value.isdigit():
        raise serializers.ValidationError(f"Wrong format. '{name}' must contain only digits", code="joi")
    return value


class ControlView(APIView):
    parser_classes = [WireJSONParser]


class ResultOutput(serializers.Serializer[Any]):
    result = serializers.BooleanField()
    stateInstance = serializers.CharField()
    reason = serializers.CharField(required=False)


def _result(instance: Instance, ok: bool = True, reason: str = "") -> Response:
    fresh = Instance.objects.only("state").get(pk=instance.pk)
    body: dict[str, Any] = {"result": ok, "stateInstance": fresh.state}
    if reason:
        body["reason"] = reason
    return Response(body, status=200 if ok else 409)


class ScanQrInput(serializers.Serializer[Any]):
    phoneNumber = Str(**PHONE_FIELD, help_text="The phone that scans, digits only.")
    name = Str(required=False, allow_blank=True, max_length=100, help_text="Profile name of that phone.")
    qr = Str(required=False, help_text="The scanned QR text; omit to scan whatever is shown now.")

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class ScanQr(ControlView):
    @extend_schema(request=ScanQrInput, responses=ResultOutput, tags=["emulator"])
    def post(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(ScanQrInput, request.data)
        if "qr" in data and not emulator.verify_qr(instance, data["qr"]):
            return _result(instance, False, "QR code expired or belongs to another instance")
        try:
            pairing.link_phone(instance, phone=data["phoneNumber"], name=data.get("name", ""))
        except services.ServiceError as exc:
            return _result(instance, False, str(exc))
        return _result(instance)


class PairingCodeInput(serializers.Serializer[Any]):
    code = Str(max_length=16)


class ConfirmPairingCode(ControlView):
    @extend_schema(request=PairingCodeInput, responses=ResultOutput, tags=["emulator"])
    def post(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(PairingCodeInput, request.data)
        try:
            pairing.confirm_pairing_code(instance, code=data["code"])
        except services.ServiceError as exc:
            return _result(instance, False, str(exc))
        return _result(instance)


class RegistrationCodeOutput(serializers.Serializer[Any]):
    phoneNumber = serializers.CharField()
    code = serializers.CharField()


class RegistrationCode(ControlView):
    """The SMS the emulated network 'sent' after startAuthorization."""

    @extend_schema(responses=RegistrationCodeOutput, tags=["emulator"])
    def get(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        if instance.state != State.PENDING_CODE:
            return Response({"phoneNumber": "", "code": ""})
        return Response({"phoneNumber": instance.pairing_phone, "code": instance.pairing_code})


class StateInput(serializers.Serializer[Any]):
    state = serializers.ChoiceField(choices=[str(state) for state in FORCEABLE_STATES])


class SetState(ControlView):
    """Force a state to test client code (blocked, yellowCard, …). Pair first."""

    @extend_schema(request=StateInput, responses=ResultOutput, tags=["emulator"])
    def post(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(StateInput, request.data)
        try:
            pairing.set_state_for_testing(instance, data["state"])
        except services.ServiceError as exc:
            return _result(instance, False, str(exc))
        return _result(instance)


class ContactInput(serializers.Serializer[Any]):
    phoneNumber = Str(**PHONE_FIELD)
    name = Str(required=False, allow_blank=True, max_length=100)
    registered = Bool(required=False, help_text="false: the number has no WhatsApp account.")
    script = serializers.ChoiceField(choices=["", "echo"], required=False)
    callRule = serializers.ChoiceField(
        choices=CallRule.choices,
        required=False,
        help_text="How the contact takes a call from the instance (default answer).",
    )

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class ContactOutput(serializers.Serializer[Any]):
    phoneNumber = serializers.CharField()
    chatId = serializers.CharField()
    name = serializers.CharField()
    registered = serializers.BooleanField()
    script = serializers.CharField()
    callRule = serializers.CharField()
    avatar = serializers.CharField()
    inAddressbook = serializers.BooleanField()


def contact_to_wire(contact: EmuContact) -> dict[str, Any]:
    phone = contact.contact
    return {
        "phoneNumber": phone.phone,
        "chatId": phone.wid,
        "name": contact.name or phone.name,
        "registered": phone.registered,
        "script": phone.script,
        "callRule": phone.call_rule,
        "avatar": emulator.avatar_url(phone),
        "inAddressbook": contact.in_addressbook,
    }


class Contacts(ControlView):
    """Simulated contacts of the phone linked to this instance."""

    @extend_schema(responses=ContactOutput(many=True), tags=["emulator"])
    def get(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        if not instance.phone:
            return Response([])
        rows = EmuContact.objects.filter(owner__phone=instance.phone).select_related("contact").order_by("id")
        return Response([contact_to_wire(c) for c in rows])

    @extend_schema(request=ContactInput, responses=ContactOutput, tags=["emulator"])
    def post(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(ContactInput, request.data)
        if not instance.phone:
            raise serializers.ValidationError("pair the instance with a phone first", code="joi")
        try:
            contact = add_simulated_contact(
                account_id=instance.account_id,
                owner_phone=instance.phone,
                phone=data["phoneNumber"],
                name=data.get("name", ""),
                registered=data.get("registered"),
                script=data.get("script"),
                call_rule=data.get("callRule"),
            )
        except PhoneClaimed as exc:
            raise BadRequest(f"{exc}: it can be added only without 'registered', 'script' or 'callRule'") from exc
        return Response(contact_to_wire(contact), status=201)


class MuteInput(serializers.Serializer[Any]):
    phoneNumber = Str(**PHONE_FIELD, help_text="The contact whose chat the phone mutes, digits only.")
    mute = Bool(help_text="true mutes the chat, false unmutes it")
    seconds = Int(required=False, min_value=1, max_value=366 * 86400, help_text="how long; omitted: always")

    def validate_phoneNumber(self, value: str) -> str:  # noqa: N802
        return digits(value, "phoneNumber")


class MuteOutput(serializers.Serializer[Any]):
    chatId = serializers.CharField()
    isMute = serializers.BooleanField()
    muteExpiration = serializers.IntegerField(allow_null=True, help_text="unix seconds; -1: always")


class Mute(ControlView):
    """The person mutes or unmutes a chat on the phone linked to this instance
    (getContactInfo's ``isMute`` and ``muteExpiration`` then say so)."""

    @extend_schema(request=MuteInput, responses=MuteOutput, tags=["emulator"])
    def post(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        data = validate(MuteInput, request.data)
        if not instance.phone:
            raise serializers.ValidationError("pair the instance with a phone first", code="joi")
        chat_id = f"{data['phoneNumber']}@c.us"
        expiration: int | None = None
        if data["mute"]:
            until = timezone.now() + timedelta(seconds=data["seconds"]) if "seconds" in data else None
            EmuMute.objects.update_or_create(phone=instance.phone, chat_id=chat_id, defaults={"until": until})
            expiration = int(until.timestamp()) if until else -1
        else:
            EmuMute.objects.filter(phone=instance.phone, chat_id=chat_id).delete()
        return Response({"chatId": chat_id, "isMute": data["mute"], "muteExpiration": expiration})


class PresenceOutput(serializers.Serializer[Any]):
    chatId = serializers.CharField(help_text="who shows it")
    presence = serializers.ChoiceField(choices=["composing", "recording", "available"])
    inChat = serializers.CharField(help_text="the chat it is shown in; empty for online")
    since = serializers.IntegerField()
    until = serializers.IntegerField()


class Presence(ControlView):
    """What the phone linked to this instance sees its peers show now: typing or
    recording in a chat with it (sendTyping, typingTime, autoTyping of another
    instance or a script) and online (keepOnlineStatus)."""

    @extend_schema(responses=PresenceOutput(many=True), tags=["emulator"])
    def get(self, request: Request, id_instance: int) -> Response:
        instance = access_instance(request, id_instance)
        if not instance.phone:
            return Response([])
        return Response(
            [
                {
                    "chatId": f"{row.phone}@c.us",
                    "presence": row.kind,
                    "inChat": row.chat_id,
                    "since": int(row.started_at.timestamp()),
                    "until": int(row.until.timestamp()),
                }
                for row in emulator.presences_seen_by(instance.phone)
            ]
        )


@cache_control(max_age=86400, public=True)
def avatar(request: HttpRequest, phone: str) -> HttpResponse:
    """Generated avatars of emulated phones (public, like WhatsApp's CDN links)."""
    account = EmuPhone.objects.filter(phone=phone).first()
    name = account.name if account else ""
    return HttpResponse(emulator.generated_avatar_png(phone, name), content_type="image/png")
