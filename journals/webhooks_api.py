"""Webhook delivery API (Relay extension): ``/api/v1/webhooks/…``.

The attempt log, the notifications with their delivery state, and redelivery.
Authorized by ``Authorization: Bearer <token>``: an instance's apiTokenInstance sees
that instance (``idInstance`` is then required), the account's partner token sees
every instance of the account. An instance of another account answers exactly like
one that does not exist (403), so ids do not leak across tenants.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from instances.http import Forbidden, Int, Unauthorized, WireJSONParser, validate
from instances.models import Account, Instance
from journals import webhooks
from journals.models import Notification, NotificationState, WebhookAttempt

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
TAGS = ["webhooks"]


class Scope:
    """The instances a caller may see, and how it proved it."""

    def __init__(self, instance_ids: QuerySet[Instance, int] | list[int], requested_by: str) -> None:
        self.instance_ids = instance_ids
        self.requested_by = requested_by


def access_scope(request: Request, id_instance: int | None) -> Scope:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not token:
        raise Unauthorized()
    account = Account.objects.filter(partner_token=token).first()
    if account is not None and hmac.compare_digest(account.partner_token.encode(), token.encode()):
        instances = Instance.objects.filter(account=account, is_deleted=False)
        if id_instance is not None:
            instances = instances.filter(pk=id_instance)
            if not instances.exists():
                raise Forbidden()
        return Scope(instances.values_list("pk", flat=True), "partner token")
    if id_instance is None:
        raise Forbidden()  # an instance token only ever opens its own instance
    instance = Instance.objects.filter(pk=id_instance, is_deleted=False).first()
    if instance is None or not hmac.compare_digest(instance.api_token.encode(), token.encode()):
        raise Forbidden()
    return Scope([instance.pk], "instance token")


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


class RangeQuery(serializers.Serializer[Any]):
    idInstance = Int(required=False, help_text="Required with an instance token.")
    receiptIdFrom = Int(required=False, min_value=0)
    receiptIdTo = Int(required=False, min_value=0)
    since = serializers.DateTimeField(required=False, help_text="ISO 8601; inclusive.")
    until = serializers.DateTimeField(required=False, help_text="ISO 8601; exclusive.")
    limit = Int(required=False, min_value=1, max_value=MAX_LIMIT, help_text=f"Default {DEFAULT_LIMIT}.")


# --- Attempts -------------------------------------------------------------------------


class AttemptsQuery(RangeQuery):
    status = serializers.RegexField(
        r"^(ok|failed|error|[1-5][0-9][0-9])$",
        required=False,
        help_text="ok (2xx), failed (anything else), error (no HTTP answer) or an HTTP status code.",
    )
    beforeId = Int(required=False, min_value=1, help_text="Page on: the nextBeforeId of the previous page.")


class AttemptOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    idInstance = serializers.IntegerField()
    receiptId = serializers.IntegerField()
    attempt = serializers.IntegerField()
    startedAt = serializers.DateTimeField()
    url = serializers.CharField()
    ok = serializers.BooleanField()
    statusCode = serializers.IntegerField(allow_null=True)
    latencyMs = serializers.IntegerField()
    error = serializers.CharField()
    responseExcerpt = serializers.CharField()


class AttemptsOutput(serializers.Serializer[Any]):
    attempts = AttemptOutput(many=True)
    nextBeforeId = serializers.IntegerField(allow_null=True)


def attempt_to_wire(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "id": attempt.pk,
        "idInstance": attempt.instance_id,
        "receiptId": attempt.receipt_id,
        "attempt": attempt.attempt,
        "startedAt": _iso(attempt.started_at),
        "url": attempt.url,
        "ok": attempt.ok,
        "statusCode": attempt.status_code,
        "latencyMs": attempt.latency_ms,
        "error": attempt.error,
        "responseExcerpt": attempt.response_excerpt,
    }


def _query_params(serializer: type[serializers.Serializer[Any]]) -> list[OpenApiParameter]:
    params = []
    for name, field in serializer().fields.items():
        kind = int if isinstance(field, serializers.IntegerField) else str
        params.append(OpenApiParameter(name, kind, OpenApiParameter.QUERY, required=False, description=str(field.help_text or "")))
    return params


class Attempts(APIView):
    """Delivery attempts, newest first."""

    @extend_schema(parameters=_query_params(AttemptsQuery), responses=AttemptsOutput, tags=TAGS)
    def get(self, request: Request) -> Response:
        query = validate(AttemptsQuery, request.query_params)
        scope = access_scope(request, query.get("idInstance"))
        rows = WebhookAttempt.objects.filter(instance_id__in=scope.instance_ids)
        if "receiptIdFrom" in query:
            rows = rows.filter(receipt_id__gte=query["receiptIdFrom"])
        if "receiptIdTo" in query:
            rows = rows.filter(receipt_id__lte=query["receiptIdTo"])
        if "since" in query:
            rows = rows.filter(started_at__gte=query["since"])
        if "until" in query:
            rows = rows.filter(started_at__lt=query["until"])
        if "beforeId" in query:
            rows = rows.filter(pk__lt=query["beforeId"])
        status = query.get("status")
        if status == "ok":
            rows = rows.filter(ok=True)
        elif status == "failed":
            rows = rows.filter(ok=False)
        elif status == "error":
            rows = rows.filter(status_code__isnull=True)
        elif status:
            rows = rows.filter(status_code=int(status))
        limit = query.get("limit", DEFAULT_LIMIT)
        page = list(rows.order_by("-pk")[: limit + 1])
        more = len(page) > limit
        page = page[:limit]
        return Response(
            {"attempts": [attempt_to_wire(a) for a in page], "nextBeforeId": page[-1].pk if more else None}
        )


# --- Notifications --------------------------------------------------------------------


class NotificationsQuery(RangeQuery):
    state = serializers.ChoiceField(choices=[str(s) for s in NotificationState], required=False)
    afterId = Int(required=False, min_value=0, help_text="Page on: the nextAfterId of the previous page.")


class LastAttemptOutput(serializers.Serializer[Any]):
    startedAt = serializers.DateTimeField()
    ok = serializers.BooleanField()
    statusCode = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()


class NotificationOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    idInstance = serializers.IntegerField()
    receiptId = serializers.IntegerField()
    typeWebhook = serializers.CharField()
    state = serializers.ChoiceField(choices=[str(s) for s in NotificationState])
    attempts = serializers.IntegerField()
    nextAttemptAt = serializers.DateTimeField(
        allow_null=True, help_text="Next retry, or while a POST is in flight the end of its lease."
    )
    createdAt = serializers.DateTimeField()
    doneAt = serializers.DateTimeField(allow_null=True)
    lastAttempt = LastAttemptOutput(allow_null=True)


class NotificationsOutput(serializers.Serializer[Any]):
    notifications = NotificationOutput(many=True)
    nextAfterId = serializers.IntegerField(allow_null=True)


class Notifications(APIView):
    """Notifications in commit order (receiptId order per instance) with their
    delivery state and latest attempt. Bodies are not included."""

    @extend_schema(parameters=_query_params(NotificationsQuery), responses=NotificationsOutput, tags=TAGS)
    def get(self, request: Request) -> Response:
        query = validate(NotificationsQuery, request.query_params)
        scope = access_scope(request, query.get("idInstance"))
        rows = Notification.objects.filter(instance_id__in=scope.instance_ids)
        if "state" in query:
            rows = rows.filter(state=query["state"])
        if "receiptIdFrom" in query:
            rows = rows.filter(receipt_id__gte=query["receiptIdFrom"])
        if "receiptIdTo" in query:
            rows = rows.filter(receipt_id__lte=query["receiptIdTo"])
        if "since" in query:
            rows = rows.filter(created_at__gte=query["since"])
        if "until" in query:
            rows = rows.filter(created_at__lt=query["until"])
        if "afterId" in query:
            rows = rows.filter(pk__gt=query["afterId"])
        last = WebhookAttempt.objects.filter(notification_id=OuterRef("pk")).order_by("-pk")
        rows = rows.annotate(
            last_at=Subquery(last.values("started_at")[:1]),
            last_ok=Subquery(last.values("ok")[:1]),
            last_status=Subquery(last.values("status_code")[:1]),
            last_error=Subquery(last.values("error")[:1]),
        ).defer("body")
        limit = query.get("limit", DEFAULT_LIMIT)
        page = list(rows.order_by("pk")[: limit + 1])
        more = len(page) > limit
        page = page[:limit]
        return Response(
            {"notifications": [_notification_to_wire(n) for n in page], "nextAfterId": page[-1].pk if more else None}
        )


def _notification_to_wire(n: Any) -> dict[str, Any]:
    last = None
    if n.last_at is not None:
        last = {"startedAt": _iso(n.last_at), "ok": n.last_ok, "statusCode": n.last_status, "error": n.last_error}
    return {
        "id": n.pk,
        "idInstance": n.instance_id,
        "receiptId": n.receipt_id,
        "typeWebhook": n.type_webhook,
        "state": n.state,
        "attempts": n.attempts,
        "nextAttemptAt": _iso(n.next_attempt_at),
        "createdAt": _iso(n.created_at),
        "doneAt": _iso(n.done_at),
        "lastAttempt": last,
    }


# --- Redelivery -----------------------------------------------------------------------


class RedeliverInput(serializers.Serializer[Any]):
    idInstance = Int()
    receiptId = Int(required=False, min_value=1, help_text="One notification…")
    receiptIdFrom = Int(required=False, min_value=1, help_text="…or an inclusive range.")
    receiptIdTo = Int(required=False, min_value=1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        single = "receiptId" in attrs
        ranged = "receiptIdFrom" in attrs or "receiptIdTo" in attrs
        if single == ranged:
            raise serializers.ValidationError("give either receiptId or receiptIdFrom and receiptIdTo")
        if ranged and not ("receiptIdFrom" in attrs and "receiptIdTo" in attrs):
            raise serializers.ValidationError("give both receiptIdFrom and receiptIdTo")
        if ranged and attrs["receiptIdTo"] < attrs["receiptIdFrom"]:
            raise serializers.ValidationError("receiptIdTo must not be lower than receiptIdFrom")
        return attrs


class RedeliverOutput(serializers.Serializer[Any]):
    redelivered = serializers.IntegerField(help_text="Notifications put back in the webhook queue.")


class Redeliver(APIView):
    """Deliver notifications again that were delivered or given up on. They go
    first (lowest receiptIds), with a fresh attempt count and give-up window;
    notifications still queued are left as they are."""

    parser_classes = [WireJSONParser]

    @extend_schema(request=RedeliverInput, responses=RedeliverOutput, tags=TAGS)
    def post(self, request: Request) -> Response:
        data = validate(RedeliverInput, request.data)
        scope = access_scope(request, data["idInstance"])
        instance = Instance.objects.get(pk=list(scope.instance_ids)[0])
        low = int(data["receiptId"] if "receiptId" in data else data["receiptIdFrom"])
        high = int(data["receiptId"] if "receiptId" in data else data["receiptIdTo"])
        try:
            count = webhooks.redeliver(instance, low, high, requested_by=scope.requested_by)
        except webhooks.RedeliveryError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return Response({"redelivered": count})
