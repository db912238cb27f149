"""Account methods (API.md §9.1): one view per wire method, each a thin adapter."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, cast

from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from engines.contract import TransportError
from engines.registry import get_transport
from instances import images, selectors, services, settings_spec
from instances.http import (
    AnyField,
    Bool,
    InstanceMethodView,
    InstanceRequest,
    Int,
    Str,
    Unsupported,
    UploadMixin,
    ValidationFailed,
    YesNo,
    validate,
)
from instances.models import Instance, State

PROXY_RE = re.compile(r"^[^:\s]+:\d{1,5}(:[^:\s]*:[^:\s]*)?$")
HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# URI schemes are case-insensitive (RFC 3986 §3.1): "HTTPS://host/" is a valid uri.
WEBHOOK_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def _ireq(request: Request) -> InstanceRequest:
    return cast(InstanceRequest, request)


# --- Settings ---------------------------------------------------------------------


def settings_to_wire(instance: Instance) -> dict[str, Any]:
    """getSettings body: ``wid`` first, then every setting in documented order."""
    body: dict[str, Any] = {"wid": instance.wid if instance.state == State.AUTHORIZED else ""}
    for spec in settings_spec.SETTINGS:
        if spec.in_get:
            body[spec.name] = settings_spec.to_wire(spec.name, instance.setting(spec.name))
    return body


def _setting_field(spec: settings_spec.SettingSpec) -> AnyField:
    if spec.kind == "flag":
        return YesNo(required=False)
    if spec.kind == "int":
        return Int(required=False, min_value=spec.min_value, max_value=spec.max_value)
    if spec.kind == "bool":
        return Bool(required=False)
    return Str(required=False, allow_blank=True, max_length=2000)


def settings_input_class(extra: dict[str, AnyField] | None = None) -> type[serializers.Serializer[Any]]:
    """A serializer for the writable settings (setSettings, partner createInstance)."""
    fields: dict[str, Any] = {s.name: _setting_field(s) for s in settings_spec.SETTINGS if s.writable}
    fields.update(extra or {})

    def validate_webhookUrl(self: Any, value: str) -> str:  # noqa: N802 - wire name
        if value and not WEBHOOK_URL_RE.match(value):
            raise serializers.ValidationError("'webhookUrl' must be a valid uri", code="joi")
        return value

    def validate_proxyInstance(self: Any, value: str) -> str:  # noqa: N802
        if value and value != "system proxy" and not PROXY_RE.match(value):
            raise serializers.ValidationError(
                "'proxyInstance' must be 'system proxy' or {ip}:{port}:{login}:{password}", code="joi"
            )
        return value

    def validate_hhmm(name: str) -> Any:
        def check(self: Any, value: str) -> str:
            if value and not HHMM_RE.match(value):
                raise serializers.ValidationError(f"'{name}' must be in HH:MM format", code="joi")
            return value

        return check

    def validate_all(self: Any, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("sendFromUTC" in attrs) != ("sendToUTC" in attrs):
            raise serializers.ValidationError(
                "'sendFromUTC' and 'sendToUTC' must be set together", code="joi"
            )
        return attrs

    fields["validate_webhookUrl"] = validate_webhookUrl
    fields["validate_proxyInstance"] = validate_proxyInstance
    fields["validate_sendFromUTC"] = validate_hhmm("sendFromUTC")
    fields["validate_sendToUTC"] = validate_hhmm("sendToUTC")
    fields["validate"] = validate_all
    return type("SettingsInput", (serializers.Serializer,), fields)


def settings_changes(data: dict[str, Any]) -> dict[str, Any]:
    """Validated wire settings → stored form."""
    return {
        k: settings_spec.from_wire(k, v) for k, v in data.items() if k in settings_spec.BY_NAME
    }


class SettingsOutput(serializers.Serializer[Any]):
    wid = serializers.CharField()
    webhookUrl = serializers.CharField()
    webhookUrlToken = serializers.CharField()
    delaySendMessagesMilliseconds = serializers.IntegerField()
    incomingWebhook = serializers.ChoiceField(choices=["yes", "no"])
    outgoingWebhook = serializers.ChoiceField(choices=["yes", "no"])
    stateWebhook = serializers.ChoiceField(choices=["yes", "no"])


class GetSettings(InstanceMethodView):
    wire_name = "getSettings"
    Output = SettingsOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(settings_to_wire(_ireq(request).instance))


class SaveSettingsOutput(serializers.Serializer[Any]):
    saveSettings = serializers.BooleanField()


class SetSettings(InstanceMethodView):
    wire_name = "setSettings"
    Input = settings_input_class()
    Output = SaveSettingsOutput

    def post(self, request: Request, **kwargs: Any) -> Response:
        if isinstance(request.data, dict) and not request.data:
            raise ValidationFailed("'value' must have at least 1 key")
        data = self.validate(request.data)
        try:
            services.update_settings(_ireq(request).instance, settings_changes(data))
        except services.InertSetting as exc:
            raise Unsupported.because(str(exc), exc.engine) from exc
        return Response({"saveSettings": True})


# --- State -------------------------------------------------------------------------


class StateOutput(serializers.Serializer[Any]):
    stateInstance = serializers.ChoiceField(choices=State.values)


class GetStateInstance(InstanceMethodView):
    wire_name = "getStateInstance"
    Output = StateOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response({"stateInstance": _ireq(request).instance.state})


class StatusOutput(serializers.Serializer[Any]):
    statusInstance = serializers.ChoiceField(choices=["online", "offline"])


class GetStatusInstance(InstanceMethodView):
    wire_name = "getStatusInstance"
    Output = StatusOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        online = _ireq(request).instance.state == State.AUTHORIZED
        return Response({"statusInstance": "online" if online else "offline"})


class HistoryQuery(serializers.Serializer[Any]):
    count = Int(required=False, min_value=1, max_value=10_000)


class HistoryItem(serializers.Serializer[Any]):
    stateInstance = serializers.CharField()
    timestamp = serializers.IntegerField()
    phoneNumber = serializers.CharField()


class GetStateInstanceHistory(InstanceMethodView):
    wire_name = "getStateInstanceHistory"
    Query = HistoryQuery  # query-string parameters (the cabinet's API console reads this)
    Output = HistoryItem

    def get(self, request: Request, **kwargs: Any) -> Response:
        query = validate(HistoryQuery, request.query_params)
        rows = selectors.state_history(_ireq(request).instance, query.get("count"))
        return Response(
            [
                {
                    "stateInstance": row.state,
                    "timestamp": int(row.created_at.timestamp()),
                    "phoneNumber": row.phone,
                }
                for row in rows
            ]
        )


class SessionHealthOutput(serializers.Serializer[Any]):
    engine = serializers.CharField()
    stateInstance = serializers.CharField()
    leased = serializers.BooleanField(allow_null=True, help_text="a runner holds the session (null: no live session)")
    health = serializers.ChoiceField(
        choices=["healthy", "silent", "dialing", "backingOff", "stopped"],
        allow_null=True,
        help_text="null: the engine keeps no session health",
    )
    startedAt = serializers.IntegerField(allow_null=True)
    connectedAt = serializers.IntegerField(allow_null=True)
    lastEventAt = serializers.IntegerField(allow_null=True)
    lastEventSecondsAgo = serializers.IntegerField(allow_null=True)
    aliveAt = serializers.IntegerField(allow_null=True)
    reconnects = serializers.IntegerField(allow_null=True)
    keepAliveFailures = serializers.IntegerField(allow_null=True)
    restarts = serializers.IntegerField(allow_null=True)
    silentRestarts = serializers.IntegerField(allow_null=True)
    lastError = serializers.CharField(allow_null=True)
    backingOffReason = serializers.CharField(allow_null=True)
    backingOffUntil = serializers.IntegerField(allow_null=True)
    silentAfterSeconds = serializers.IntegerField(allow_null=True)


# The engine-reported keys of getSessionHealth (null when the engine keeps none).
SESSION_HEALTH_FIELDS = (
    "startedAt",
    "connectedAt",
    "lastEventAt",
    "lastEventSecondsAgo",
    "aliveAt",
    "reconnects",
    "keepAliveFailures",
    "restarts",
    "silentRestarts",
    "lastError",
    "backingOffReason",
    "backingOffUntil",
    "silentAfterSeconds",
)


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def session_health_to_wire(report: selectors.SessionReport, now: datetime) -> dict[str, Any]:
    """getSessionHealth's body: every key always present; null for what the
    instance's engine does not report (never a made-up zero)."""
    health = report.health
    body: dict[str, Any] = {
        "engine": report.engine,
        "stateInstance": report.state,
        "leased": report.leased,
        "health": health.status if health else None,
    }
    if health is None:
        return body | dict.fromkeys(SESSION_HEALTH_FIELDS, None)
    return body | {
        "startedAt": _unix(health.started_at),
        "connectedAt": _unix(health.connected_at),
        "lastEventAt": _unix(health.last_event_at),
        "lastEventSecondsAgo": int((now - health.last_event_at).total_seconds()) if health.last_event_at else None,
        "aliveAt": _unix(health.alive_at),
        "reconnects": health.reconnects,
        "keepAliveFailures": health.keepalive_failures,
        "restarts": health.restarts,
        "silentRestarts": health.silent_restarts,
        "lastError": health.last_error,
        "backingOffReason": health.backing_off_reason,
        "backingOffUntil": _unix(health.backing_off_until),
        "silentAfterSeconds": int(health.silent_after_seconds),
    }


class GetSessionHealth(InstanceMethodView):
    """Relay extension: how the instance's session is doing (docs/api.md)."""

    wire_name = "getSessionHealth"
    Output = SessionHealthOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        now = timezone.now()
        report = selectors.session_report(_ireq(request).instance, now)
        return Response(session_health_to_wire(report, now))


class RebootOutput(serializers.Serializer[Any]):
    isReboot = serializers.BooleanField()


class Reboot(InstanceMethodView):
    wire_name = "reboot"
    Output = RebootOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        services.reboot(_ireq(request).instance)
        return Response({"isReboot": True})


class LogoutOutput(serializers.Serializer[Any]):
    isLogout = serializers.BooleanField()


class Logout(InstanceMethodView):
    wire_name = "logout"
    Output = LogoutOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response({"isLogout": services.logout(_ireq(request).instance)})


# --- Authorization ---------------------------------------------------------------------


class QrOutput(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=["qrCode", "alreadyLogged", "error"])
    message = serializers.CharField(help_text="base64 PNG for qrCode, text otherwise")


def qr_frame(instance: Instance) -> dict[str, str]:
    """The qr method's answer for the instance's current state (API.md §11.1)."""
    if instance.state == State.AUTHORIZED:
        return {"type": "alreadyLogged", "message": "instance account already authorized"}
    if instance.state == State.STARTING:
        return {"type": "error", "message": "instance in starting process try later"}
    if instance.state != State.NOT_AUTHORIZED:
        return {"type": "error", "message": "Instance has auth. You need to make log out"}
    try:
        return {"type": "qrCode", "message": get_transport(instance).current_qr().png_base64}
    except TransportError as exc:
        # An engine whose codes come from a live session (waweb) has none while the
        # session has not reached WhatsApp: qr's own error shape, with the reason.
        return {"type": "error", "message": str(exc)}


class Qr(InstanceMethodView):
    wire_name = "qr"
    Output = QrOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(qr_frame(_ireq(request).instance))


def phone_number_field() -> Int:
    return Int(min_value=1_000_000, max_value=999_999_999_999_999)


class AuthorizationCodeOutput(serializers.Serializer[Any]):
    status = serializers.BooleanField()
    code = serializers.CharField()


class GetAuthorizationCode(InstanceMethodView):
    wire_name = "getAuthorizationCode"
    Output = AuthorizationCodeOutput

    class Input(serializers.Serializer[Any]):
        phoneNumber = phone_number_field()

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        try:
            code = services.request_pairing_code(
                _ireq(request).instance, phone=str(data["phoneNumber"])
            )
        except services.ServiceError:
            return Response({"status": False, "code": ""})
        return Response({"status": True, "code": code})


class RegistrationOutput(serializers.Serializer[Any]):
    status = serializers.BooleanField()
    data = serializers.DictField()  # type: ignore[assignment]  # wire name shadows Serializer.data (schema only)


class StartAuthorization(InstanceMethodView):
    wire_name = "startAuthorization"
    Output = RegistrationOutput

    class Input(serializers.Serializer[Any]):
        phoneNumber = phone_number_field()
        method = serializers.ChoiceField(choices=["sms", "voice", "app"])
        locale = Str(required=False, max_length=16)
        name = Str(required=False, max_length=100, allow_blank=True)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        try:
            services.start_authorization(
                _ireq(request).instance, phone=str(data["phoneNumber"]), method=data["method"]
            )
        except services.ServiceError as exc:
            return Response({"status": False, "data": {"status": "error", "reason": str(exc)}})
        return Response({"status": True, "data": {"status": "success"}})

    get = post  # the docs show GET with a JSON body


class SendAuthorizationCode(InstanceMethodView):
    wire_name = "sendAuthorizationCode"
    Output = RegistrationOutput

    class Input(serializers.Serializer[Any]):
        code = Str(max_length=16)

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        try:
            services.send_authorization_code(_ireq(request).instance, code=data["code"])
        except services.ServiceError as exc:
            return Response({"status": False, "data": {"status": "error", "reason": str(exc)}})
        return Response({"status": True, "data": {"status": "ok"}})


# --- Profile and device ------------------------------------------------------------


class ProfilePictureOutput(serializers.Serializer[Any]):
    setProfilePicture = serializers.BooleanField()
    urlAvatar = serializers.CharField()
    reason = serializers.CharField()


MAX_PICTURE_BYTES = 10 * 1024 * 1024
MAX_PICTURE_PIXELS = images.MAX_PIXELS


def read_image_upload(request: Request, field: str = "file") -> bytes:
    """The uploaded picture's bytes, checked to be an image by content."""
    upload = request.FILES.get(field)
    if not isinstance(upload, UploadedFile):
        raise ValidationFailed(f"'{field}' is required")
    if upload.size is not None and upload.size > MAX_PICTURE_BYTES:
        raise ValidationFailed(f"'{field}' must be less than or equal to {MAX_PICTURE_BYTES} bytes")
    return check_image(upload.read(), field)


def check_image(data: bytes, field: str = "file") -> bytes:
    """``data`` if it is a picture Pillow reads within the size limits; otherwise
    ``ValidationFailed`` (a 400). Only the header is read: nothing is decoded."""
    if len(data) > MAX_PICTURE_BYTES:
        raise ValidationFailed(f"'{field}' must be less than or equal to {MAX_PICTURE_BYTES} bytes")
    try:
        images.check_image(data)  # header only: a decompression bomb never decodes
    except images.UnsafeImage as exc:
        if exc.too_big:
            raise ValidationFailed(f"'{field}' must be at most {MAX_PICTURE_PIXELS} pixels") from exc
        raise ValidationFailed(f"'{field}' must be a JPEG image") from exc
    return data


class SetProfilePicture(UploadMixin, InstanceMethodView):
    wire_name = "setProfilePicture"
    Output = ProfilePictureOutput

    def post(self, request: Request, **kwargs: Any) -> Response:
        extra = [k for k in request.data if k != "file"]
        if extra:
            raise ValidationFailed(f"'{extra[0]}' is not allowed")
        data = read_image_upload(request)
        try:
            url = services.set_profile_picture(_ireq(request).instance, data=data)
        except services.ServiceError as exc:
            return Response({"setProfilePicture": False, "urlAvatar": "", "reason": str(exc)})
        return Response({"setProfilePicture": True, "urlAvatar": url, "reason": ""})


class WaSettingsOutput(serializers.Serializer[Any]):
    avatar = serializers.CharField()
    base64Avatar = serializers.CharField()
    chatId = serializers.CharField()
    phone = serializers.CharField()
    historySyncProgress = serializers.IntegerField()
    stateInstance = serializers.CharField()
    deviceId = serializers.CharField()
    logoutProcess = serializers.BooleanField()


class GetWaSettings(InstanceMethodView):
    wire_name = "getWaSettings"
    Output = WaSettingsOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        instance = _ireq(request).instance
        body: dict[str, Any] = {
            "avatar": "",
            "base64Avatar": "",
            "chatId": "",
            "phone": "",
            "historySyncProgress": 0,
            "stateInstance": instance.state,
            "deviceId": "",
            "logoutProcess": False,
        }
        if instance.state in (State.AUTHORIZED, State.YELLOW_CARD) and instance.phone:
            profile = get_transport(instance).profile(phone=instance.phone)
            if profile is not None:
                body.update(
                    avatar=profile.avatar_url,
                    chatId=profile.lid,
                    phone=profile.phone,
                    historySyncProgress=profile.history_sync_progress,
                    deviceId=profile.device_id,
                )
        return Response(body)


class DeviceInfoOutput(serializers.Serializer[Any]):
    platform = serializers.CharField()
    deviceManufacturer = serializers.CharField()
    deviceModel = serializers.CharField()
    osVersion = serializers.CharField()
    waVersion = serializers.CharField()
    battery = serializers.IntegerField()


class GetDeviceInfo(InstanceMethodView):
    """Deprecated by GREEN-API but still routable; reports the linked phone."""

    wire_name = "getDeviceInfo"
    Output = DeviceInfoOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        instance = _ireq(request).instance
        device = None
        if instance.state == State.AUTHORIZED and instance.phone:
            device = get_transport(instance).device_info(phone=instance.phone)
        if device is None:
            return Response(
                {"platform": "", "deviceManufacturer": "", "deviceModel": "", "osVersion": "", "waVersion": "", "battery": 0}
            )
        return Response(
            {
                "platform": device.platform,
                "deviceManufacturer": device.manufacturer,
                "deviceModel": device.model,
                "osVersion": device.os_version,
                "waVersion": device.wa_version,
                "battery": device.battery,
            }
        )


class TokenOutput(serializers.Serializer[Any]):
    apiTokenInstance = serializers.CharField()


class UpdateApiToken(InstanceMethodView):
    wire_name = "updateApiToken"
    Output = TokenOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        token = services.update_api_token(_ireq(request).instance)
        return Response({"apiTokenInstance": token})


class SystemProxyOutput(serializers.Serializer[Any]):
    setSystemProxy = serializers.BooleanField()


class SetSystemProxy(InstanceMethodView):
    """Removed from current docs; resets a custom proxy to the system one."""

    wire_name = "setSystemProxy"
    Output = SystemProxyOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        services.update_settings(_ireq(request).instance, {"proxyInstance": "system proxy"})
        return Response({"setSystemProxy": True})
