"""Partner API (API.md §9.12): ``/partner/{method}/{partnerToken}``."""

from __future__ import annotations

import hmac
from typing import Any, ClassVar, cast

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from engines.registry import EngineOptionsInvalid, UnknownEngine
from instances import services
from instances.api import settings_changes, settings_input_class
from instances.http import (
    Int,
    NotFound,
    Str,
    Unauthorized,
    Unsupported,
    ValidationFailed,
    WireError,
    WireJSONParser,
    validate,
)
from instances.models import Account, Engine, Instance
from instances.registry import BY_NAME

ZERO_TIME = "0001-01-01T00:00:00"


class PartnerRequest(Request):
    account: Account


def authenticate_partner(token: str) -> Account:
    """The account whose partner token is ``token``; 401 otherwise."""
    account = Account.objects.filter(partner_token=token).first()
    # compare_digest keeps the check constant-time once a candidate row exists.
    if account is None or not hmac.compare_digest(account.partner_token.encode(), token.encode()):
        raise Unauthorized()
    return account


class PartnerMethodView(APIView):
    wire_name: ClassVar[str] = ""
    Input: ClassVar[type[serializers.Serializer[Any]] | None] = None
    Output: ClassVar[type[serializers.Serializer[Any]] | None] = None
    parser_classes = [WireJSONParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method == "OPTIONS":
            return
        if request.method not in BY_NAME[self.wire_name].verbs:
            raise NotFound()
        super().initial(request, *args, **kwargs)
        cast(PartnerRequest, request).account = authenticate_partner(kwargs["token"])

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        return Response(status=204)

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        raise NotFound()

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, WireError):
            return cast(Response, exc.response(self.request))
        return super().handle_exception(exc)


def _iso(dt: Any) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S") if dt else ZERO_TIME


def instance_to_partner_wire(instance: Instance) -> dict[str, Any]:
    return {
        "idInstance": instance.id,
        "name": instance.name,
        "typeInstance": "whatsapp",
        "typeAccount": "",
        "partnerUserUiid": "",
        "timeCreated": _iso(instance.created_at),
        "timeDeleted": _iso(instance.deleted_at),
        "apiTokenInstance": instance.api_token,
        "deleted": instance.is_deleted,
        "tariff": "SELF_HOSTED",
        "isFree": False,
        "isPartner": True,
        "expirationDate": ZERO_TIME,
        "isExpired": False,
        # Relay extensions (additive):
        "engine": instance.engine,
        "stateInstance": instance.state,
    }


class PartnerInstanceOutput(serializers.Serializer[Any]):
    idInstance = serializers.IntegerField()
    name = serializers.CharField()
    typeInstance = serializers.CharField()
    timeCreated = serializers.CharField()
    timeDeleted = serializers.CharField()
    apiTokenInstance = serializers.CharField()
    deleted = serializers.BooleanField()
    engine = serializers.CharField()
    stateInstance = serializers.CharField()


class GetInstances(PartnerMethodView):
    wire_name = "getInstances"
    Output = PartnerInstanceOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        account = cast(PartnerRequest, request).account
        rows = Instance.objects.filter(account=account).order_by("created_at", "id")
        return Response([instance_to_partner_wire(i) for i in rows])


class CreateInstanceOutput(serializers.Serializer[Any]):
    idInstance = serializers.IntegerField()
    apiTokenInstance = serializers.CharField()
    typeInstance = serializers.CharField()


class CreateInstance(PartnerMethodView):
    wire_name = "createInstance"
    Input = settings_input_class(
        {
            "name": Str(required=False, allow_blank=True, max_length=200),
            # Relay extension: choose the engine (default: the server's default).
            "engine": serializers.ChoiceField(choices=Engine.values, required=False),
            # Relay extension: the cloud engine's credentials (docs/engines/cloud.md).
            "cloud": serializers.DictField(required=False),
        }
    )
    Output = CreateInstanceOutput

    def post(self, request: Request, **kwargs: Any) -> Response:
        assert self.Input is not None
        data = validate(self.Input, request.data)
        try:
            instance = services.create_instance(
                account=cast(PartnerRequest, request).account,
                name=data.pop("name", ""),
                engine=data.pop("engine", ""),
                engine_options=data.pop("cloud", None),
                settings_changes=settings_changes(data),
            )
        except (UnknownEngine, EngineOptionsInvalid) as exc:
            raise ValidationFailed(str(exc)) from exc
        except services.InertSetting as exc:
            raise Unsupported.because(str(exc), exc.engine) from exc
        return Response(
            {"idInstance": instance.id, "apiTokenInstance": instance.api_token, "typeInstance": "whatsapp"}
        )


class DeleteInstanceOutput(serializers.Serializer[Any]):
    deleteInstanceAccount = serializers.BooleanField()


class DeleteInstanceAccount(PartnerMethodView):
    wire_name = "deleteInstanceAccount"
    Output = DeleteInstanceOutput

    class Input(serializers.Serializer[Any]):
        idInstance = Int(min_value=1)

    def post(self, request: Request, **kwargs: Any) -> Response:
        assert self.Input is not None
        data = validate(self.Input, request.data)
        instance = Instance.objects.filter(
            pk=data["idInstance"], account=cast(PartnerRequest, request).account, is_deleted=False
        ).first()
        if instance is None:
            return Response({"deleteInstanceAccount": False})
        return Response({"deleteInstanceAccount": services.delete_instance(instance)})
