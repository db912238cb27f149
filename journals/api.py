"""Receiving (API.md §9.3) and the notification-queue methods (§9.5).

receiveNotification is an async view: while it waits it holds no thread and no
database connection (its short DB reads run in a worker thread that closes the
connection), and it wakes on ``instances.wakeups`` within milliseconds of a commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from instances import ratelimit, registry, wakeups
from instances.http import (
    BadRequest,
    InstanceMethodView,
    InstanceRequest,
    Int,
    NotFound,
    Str,
    TooManyRequests,
    WireError,
    WireJSONParser,
    check_instance,
    validate,
)
from instances.models import Instance
from instances.sharedreads import SharedReads
from journals import selectors, services
from journals.models import Notification

MIN_TIMEOUT, MAX_TIMEOUT, DEFAULT_TIMEOUT = 5, 60, 5


class NotificationOutput(serializers.Serializer[Any]):
    receiptId = serializers.IntegerField()
    body = serializers.DictField(help_text="The notification, as a webhook would POST it.")


class ReceiveQuery(serializers.Serializer[Any]):
    receiveTimeout = Int(required=False, min_value=MIN_TIMEOUT, max_value=MAX_TIMEOUT)


def _db(func: Any) -> Any:
    """Run a short DB read in a worker thread and give its connection back at once."""

    def run(*args: Any) -> Any:
        try:
            return func(*args)
        finally:
            connection.close()

    return sync_to_async(run, thread_sensitive=False)


# Reads shared by the long polls of one instance in flight at once
# (instances.sharedreads): a connect storm, or a wake-up of N waiters, costs one
# instance read and one head read, not N of each.
_instance_reads: SharedReads[Instance | None] = SharedReads()
_head_reads: SharedReads[Any] = SharedReads()


@_db
def _read_instance(sent: Callable[[], None], id_instance: int) -> Instance | None:
    sent()  # in the worker thread, right before the query: callers until now may join
    return Instance.objects.filter(pk=id_instance, is_deleted=False).first()


async def _authenticate(id_instance: int, token: str) -> tuple[int, bool]:
    """``authenticate_instance``'s answers from a shared read of the row; each
    request checks its own token and counts its own rate limit."""

    async def run(sent: Callable[[], None]) -> Instance | None:
        return cast(Instance | None, await _read_instance(sent, id_instance))

    instance = check_instance(await _instance_reads.read(id_instance, run), token)
    if not await ratelimit.allow_async(instance.id, registry.BY_NAME["receiveNotification"]):
        raise TooManyRequests()
    return instance.id, bool(instance.setting("webhookUrl"))


@_db
def _head(sent: Callable[[], None], instance_id: int) -> Notification | None:
    sent()
    return services.head_notification(instance_id)


async def _shared_head(instance_id: int, not_before: float) -> Any:
    """The head notification, read once for all waiters of the instance that ask at
    the same moment: a wake-up of N waiters costs one query, not N.

    A waiter joins a read not sent yet, or one sent after ``not_before`` (a
    ``time.monotonic()``: when it arrived or was last woken); a read sent earlier
    may predate the commit it was woken for."""

    async def run(sent: Callable[[], None]) -> Any:
        return await _head(sent, instance_id)

    return await _head_reads.read(instance_id, run, not_before)


def _answer(notification: Notification | None) -> HttpResponse:
    if notification is None:
        # GREEN-API answers an empty queue with HTTP 200 and the JSON literal null.
        return HttpResponse(b"null", content_type="application/json")
    return JsonResponse({"receiptId": notification.receipt_id, "body": notification.body})


class ReceiveNotification(View):
    """Long-poll the oldest notification; the same one until it is deleted."""

    wire_name = "receiveNotification"
    Input = None
    Output = NotificationOutput  # documented by instances.openapi.add_async_views
    Query = ReceiveQuery
    response_description = "The head notification, or the JSON literal null when the queue stays empty."
    response_schema = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"receiptId": {"type": "integer"}, "body": {"type": "object"}},
                "required": ["receiptId", "body"],
            },
            {"type": "null"},
        ]
    }

    async def get(self, request: HttpRequest, id_instance: int, token: str) -> HttpResponse:
        close_old_connections()
        try:
            query = validate(ReceiveQuery, {k: request.GET.get(k) for k in request.GET})
            instance_id, has_webhook = await _authenticate(id_instance, token)
        except WireError as exc:
            return exc.response(request)
        timeout = float(query.get("receiveTimeout", DEFAULT_TIMEOUT))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if has_webhook:
            # Webhook delivery owns the queue (API.md §10.1): polling sees nothing.
            await asyncio.sleep(timeout)
            return _answer(None)
        with wakeups.subscribe(instance_id) as subscription:
            asked_at = time.monotonic()
            while True:
                head = await _shared_head(instance_id, asked_at)
                remaining = deadline - loop.time()
                if head is not None or remaining <= 0:
                    return _answer(head)
                await subscription.wait(remaining)
                asked_at = time.monotonic()

    async def options(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        return HttpResponse(status=204)

    async def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:  # type: ignore[override]
        return NotFound().response(request)


def _ireq(request: Request) -> Any:
    return cast(InstanceRequest, request).instance


class ResultOutput(serializers.Serializer[Any]):
    result = serializers.BooleanField()


class DeleteNotification(InstanceMethodView):
    """``DELETE …/deleteNotification/{token}/{receiptId}``. The body forms work the
    same: ``{"receiptId": N}``, and the official Python SDK's async client's bare
    number sent to ``…/deleteNotification/{token}/``."""

    wire_name = "deleteNotification"
    Output = ResultOutput
    parser_classes = [WireJSONParser]
    extra_routes = ("receipt_id",)

    def delete(self, request: Request, receipt_id: str | None = None, **kwargs: Any) -> Response:
        raw: Any = receipt_id
        if raw is None:
            body = request.data
            raw = body.get("receiptId") if isinstance(body, dict) else body
        if isinstance(raw, bool):
            raw = None  # json true is not a receipt number
        try:
            number = int(str(raw))
        except (TypeError, ValueError):
            raise BadRequest("Parameter receiptId must be a Number") from None
        return Response({"result": services.delete_notification(_ireq(request).id, number)})


class CountOutput(serializers.Serializer[Any]):
    count = serializers.IntegerField()


class GetWebhooksCount(InstanceMethodView):
    wire_name = "getWebhooksCount"
    Output = CountOutput

    def get(self, request: Request, **kwargs: Any) -> Response:
        # API.md §14: the docs show a Cyrillic "сount" key; we emit the Latin one.
        return Response({"count": services.notifications_count(_ireq(request).id)})


class ClearOutput(serializers.Serializer[Any]):
    isCleared = serializers.BooleanField()
    reason = serializers.CharField()
    leftTime = serializers.IntegerField(required=False)


class ClearWebhooksQueue(InstanceMethodView):
    wire_name = "clearWebhooksQueue"
    Output = ClearOutput

    def delete(self, request: Request, **kwargs: Any) -> Response:
        cleared, left = services.clear_notifications(_ireq(request).id)
        if cleared:
            return Response({"isCleared": True, "reason": ""})
        return Response({"isCleared": False, "reason": "Too many requests", "leftTime": left})


class DownloadFileInput(serializers.Serializer[Any]):
    chatId = Str(max_length=100)
    idMessage = Str(max_length=64)


class DownloadFileOutput(serializers.Serializer[Any]):
    downloadUrl = serializers.CharField()


class DownloadFile(InstanceMethodView):
    """The link of a received (or sent) file: ``{"downloadUrl": …}`` (API.md §14:
    the current API answers JSON, not the bytes)."""

    wire_name = "downloadFile"
    Input = DownloadFileInput
    Output = DownloadFileOutput

    def post(self, request: Request, **kwargs: Any) -> Response:
        data = self.validate(request.data)
        url = selectors.file_url(_ireq(request).id, chat_id=data["chatId"], id_message=data["idMessage"])
        if url is None:
            raise BadRequest("File not found. Check the chatId and idMessage of a message with a file")
        return Response({"downloadUrl": url})
