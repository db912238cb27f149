"""The wire layer shared by every API method: errors, parsing, validation, auth.

GREEN-API's error bodies are reproduced here once (API.md §3):
401 ``{"code":401,"description":"Unauthorized"}``, 403 ``Forbidden``, 404
``Not Found``, 400 ``{"statusCode","timestamp","path","message"}`` with Joi-style
details, 429 ``Too Many Requests``. Views raise ``WireError`` subclasses; the DRF
exception handler below renders them. No bad input may reach a 500.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, cast

import psycopg
from django import db
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils import timezone
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from engines import registry as engine_registry
from engines.contract import TransportError
from instances import authfail, ratelimit, registry
from instances.edgepool import EdgePool, PoolTimeout
from instances.guards import ChatError
from instances.models import Instance
from instances.sharedreads import BatchedReads

log = logging.getLogger(__name__)


# --- Errors ----------------------------------------------------------------------------


class WireError(Exception):
    """An error with a fixed GREEN-API response. Subclasses set status and body."""

    status: int = 400

    def response(self, request: HttpRequest) -> HttpResponse:
        return text_response(str(self) or "Bad Request", self.status)


def _failures_over_limit(request: HttpRequest) -> bool:
    """Count a failed authentication of this client (instances.authfail)."""
    meta = getattr(request, "META", None)
    return meta is not None and authfail.over_limit(meta)


class Unauthorized(WireError):
    status = 401

    def response(self, request: HttpRequest) -> HttpResponse:
        if _failures_over_limit(request):
            return TooManyRequests().response(request)
        return JsonResponse({"code": 401, "description": "Unauthorized"}, status=401)


class Forbidden(WireError):
    status = 403

    def __init__(self) -> None:
        super().__init__("Forbidden")

    def response(self, request: HttpRequest) -> HttpResponse:
        if _failures_over_limit(request):
            return TooManyRequests().response(request)
        return super().response(request)


class NotFound(WireError):
    status = 404

    def __init__(self) -> None:
        super().__init__("Not Found")


class TooManyRequests(WireError):
    status = 429

    def __init__(self) -> None:
        super().__init__("Too Many Requests")


class BadRequest(WireError):
    """A 400 with a JSON envelope and a free message (malformed JSON, instance states)."""

    status = 400

    def response(self, request: HttpRequest) -> HttpResponse:
        return error_envelope(request, self.status, str(self))


class Unsupported(BadRequest):
    """What the instance's engine cannot do (a method, or one of its options): a
    GREEN-API-style 400 that names the engine and says why, never a 200 that did
    nothing. The one place such refusals are worded: a method outside the engine's
    capabilities (``engines.registry``) and an option it cannot honour both raise it."""

    def __init__(self, what: str, engine: str, why: str = "", *, sentence: str = "") -> None:
        super().__init__(sentence or f"{what} is not supported by the {engine} engine" + (f": {why}" if why else ""))
        self.engine = engine

    @classmethod
    def because(cls, sentence: str, engine: str) -> Unsupported:
        """A refusal already worded (``engines.registry.refusal``)."""
        return cls("", engine, sentence=sentence)


class EngineFailed(WireError):
    """The engine refused or failed a command: its reason, in GREEN-API's 400
    envelope (permanent) or a 503 to retry (transient), never a false success."""

    def __init__(self, exc: TransportError) -> None:
        super().__init__(str(exc))
        self.status = 400 if exc.permanent else 503

    def response(self, request: HttpRequest) -> HttpResponse:
        return error_envelope(request, self.status, str(self))


class ValidationFailed(BadRequest):
    """A 400 whose message is ``Validation failed. Details: <detail>``."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Validation failed. Details: {detail}")
        self.detail = detail


class PayloadTooLarge(BadRequest):
    status = 413

    def __init__(self, message: str = "request entity too large") -> None:
        super().__init__(message)


class ServiceUnavailable(WireError):
    """The database (or the edge's connection set) cannot serve the request now: a
    restart, an outage, every connection busy. GREEN-API's JSON error body with
    ``Retry-After``; nothing was written (a 200 means committed, so no 200 was
    possible). The driver's own message is logged, never sent."""

    status = 503
    RETRY_AFTER_SECONDS = 5

    def __init__(self, message: str = "Service Unavailable: the database is unreachable, retry later") -> None:
        super().__init__(message)

    def response(self, request: HttpRequest) -> HttpResponse:
        response = error_envelope(request, self.status, str(self))
        response["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
        return response


class MessageError(WireError):
    """A refusal GREEN-API words as ``{"message": ...}`` (contacts methods)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    def response(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"message": str(self)}, status=self.status)


@contextmanager
def wire_errors() -> Iterator[None]:
    """Service refusals (``instances.guards.ChatError``) as their wire errors."""
    try:
        yield
    except ChatError as exc:
        if exc.status == 400:
            raise BadRequest(str(exc)) from exc
        raise MessageError(str(exc), exc.status) from exc


def _mb(size: int) -> str:
    value = size / (1024 * 1024)
    return str(math.ceil(value)) if value >= 1 or size == 0 else f"{value:.2g}"


def too_large_message(size: int, limit: int, url: str = "") -> str:
    """GREEN-API's wording for a file over the cap (API.md §3)."""
    where = " from url" if url else ""
    text = f"File{where} exceeded max upload size. Size: {_mb(size)}mb Limit: {_mb(limit)}mb"
    return f"{text} Url: {url}" if url else text


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is out of reach (down, restarting, no
    connection free), as opposed to a bug or bad input."""
    outages = (db.OperationalError, db.InterfaceError, psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
    return isinstance(exc, outages)


def outage_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    log.warning("database unavailable on %s: %s: %s", request.path, exc.__class__.__name__, exc)
    return ServiceUnavailable().response(request)


def text_response(text: str, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def error_envelope(request: HttpRequest, status: int, message: str) -> JsonResponse:
    """GREEN-API's JSON error body; ``path`` echoes the request path as it does."""
    now = timezone.now()
    return JsonResponse(
        {
            "statusCode": status,
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "path": request.path,
            "message": message,
        },
        status=status,
    )


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> HttpResponse | None:
    """DRF exception handler: every error a view can raise gets its wire body."""
    request = context["request"]
    if isinstance(exc, WireError):
        return exc.response(request)
    if isinstance(exc, TransportError):
        return EngineFailed(exc).response(request)
    if isinstance(exc, drf_exceptions.ParseError):
        return error_envelope(request, 400, str(exc.detail))
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return error_envelope(request, 400, f"Unsupported Content-Type: {exc.detail}")
    if isinstance(exc, drf_exceptions.MethodNotAllowed | drf_exceptions.NotFound):
        return NotFound().response(request)
    if isinstance(exc, drf_exceptions.ValidationError):
        return ValidationFailed(joi_message(exc.detail)).response(request)
    if is_outage(exc):
        return outage_response(request, exc)
    return drf_exception_handler(exc, cast(dict[str, Any], context))


# --- Parsing ---------------------------------------------------------------------------


class WireJSONParser(BaseParser):
    """Parse the body as JSON whatever the Content-Type says.

    curl users often omit ``Content-Type: application/json``; GREEN-API methods only
    take JSON, so we read JSON and report syntax errors the way its Node server does
    (``Unexpected token } in JSON at position 12``).
    """

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        return parse_json_body(raw)


def parse_json_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"Unexpected token in JSON at position {exc.start}") from exc
    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text):
            raise BadRequest("Unexpected end of JSON input") from exc
        raise BadRequest(f"Unexpected token {text[exc.pos]} in JSON at position {exc.pos}") from exc
    except RecursionError as exc:
        # A 100 KB body can nest ~50 000 levels; the C decoder gives up at ~1000.
        raise BadRequest("Bad Request: JSON nesting is too deep") from exc
    if _MAYBE_UNSAFE.search(text):
        check_text_safe(data)
    return data


class _NumberOutOfRange(BadRequest):
    def __init__(self, literal: str) -> None:
        super().__init__(f"Bad Request: the number {literal[:32]} is out of range")


def _parse_int(digits: str) -> int:
    # int() refuses more than 4300 digits (CVE-2020-10735) with a ValueError that is
    # not a JSONDecodeError. No field takes such a number, and jsonb cannot store
    # the double JavaScript would read it as (Infinity).
    if len(digits) > 400:
        raise _NumberOutOfRange(digits)
    return int(digits)


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # 1e400: JSON has no Infinity, PostgreSQL refuses it
        raise _NumberOutOfRange(literal)
    return value


def _no_constant(name: str) -> Any:
    # Python's decoder accepts NaN and Infinity; JSON (and jsonb) does not.
    raise BadRequest(f"Unexpected token {name[0]} in JSON")


# Escapes that decode to what PostgreSQL cannot store in text or jsonb: NUL, and
# surrogate halves (valid pairs decode to one character and pass the walk below).
_MAYBE_UNSAFE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSAFE_CHARS = re.compile("[\x00\ud800-\udfff]")


def check_text_safe(data: Any) -> None:
    """Refuse (400) NUL characters and unpaired surrogates anywhere in decoded JSON,
    keys included: PostgreSQL rejects both in text and jsonb, which was a 500 for
    any free-form object stored as it came. Called only when the raw text holds such
    an escape, so ordinary bodies pay one regex scan."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSAFE_CHARS.search(item):
                raise BadRequest("Bad Request: strings may not contain \\u0000 or unpaired surrogates")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# --- Validation (Joi-style details) -------------------------------------------------

AnyField = serializers.Field[Any, Any, Any, Any]
BIGINT_MAX = 2**63 - 1


class Str(serializers.CharField):
    """A string field that refuses numbers and booleans instead of coercing them."""

    default_error_messages = {"type": "must be a string"}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("type")
        return super().to_internal_value(data)


class Int(serializers.IntegerField):
    """An integer field that refuses booleans and fractional numbers, and numbers
    outside PostgreSQL's bigint unless the field sets tighter bounds (1e30 was a 500
    where it reached a query)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_value", BIGINT_MAX)
        kwargs.setdefault("min_value", -BIGINT_MAX - 1)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or (isinstance(data, float) and not data.is_integer()):
            self.fail("invalid")
        return super().to_internal_value(data)


class Bool(serializers.BooleanField):
    """A JSON boolean only (``true``/``false``), not "yes" or 1."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class YesNo(serializers.ChoiceField):
    """GREEN-API settings flags: the strings "yes" and "no"."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=["yes", "no"], **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


def joi_message(detail: Any, field: Any = None, path: str = "") -> str:
    """Turn the first DRF error into a Joi-style detail, e.g. ``'chatId' is required``
    or ``'options[1].optionName' is not allowed to be empty``.

    ``field`` is the serializer (or field) the errors belong to; walking it alongside
    the errors lets nested messages use the nested field's limits and types."""
    if isinstance(detail, Mapping):
        for key, sub in detail.items():
            if key == "non_field_errors":
                return joi_message(sub, field, path)
            if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                return joi_message(sub, getattr(field, "child", None), f"{path}[{key}]")
            child = _fields_of(field).get(key)
            return joi_message(sub, child, f"{path}.{key}" if path else str(key))
        return "Bad Request"
    if isinstance(detail, list) and detail:
        if all(isinstance(item, Mapping | list) for item in detail):
            # A list of serializers reports one entry per item; empty ones passed.
            for index, item in enumerate(detail):
                if item:
                    return joi_message(item, getattr(field, "child", None), f"{path}[{index}]")
            return "Bad Request"
        return _joi_leaf(detail, field, path)
    return str(detail)


def _fields_of(field: Any) -> Mapping[str, Any]:
    if isinstance(field, serializers.ListSerializer):
        field = field.child
    fields = getattr(field, "fields", None)
    return fields if isinstance(fields, Mapping) else {}


def _joi_leaf(errors: Any, field: AnyField | None, name: str) -> str:
    first = errors[0] if isinstance(errors, list) and errors else errors
    code = getattr(first, "code", "invalid")
    q = f"'{name}'"
    if code == "required":
        return f"{q} is required"
    if code == "blank":
        return f"{q} is not allowed to be empty"
    if code == "null":
        # Joi reports null as a type error of the field's own type.
        if isinstance(field, serializers.IntegerField | serializers.FloatField):
            return f"{q} must be a number"
        if isinstance(field, serializers.BooleanField):
            return f"{q} must be a boolean"
        if isinstance(field, serializers.ChoiceField):
            choices = ", ".join(str(c) for c in field.choices)
            return f"{q} must be one of [{choices}]"
        if isinstance(field, serializers.ListField | serializers.ListSerializer):
            return f"{q} must be an array"
        if isinstance(field, serializers.DictField | serializers.Serializer):
            return f"{q} must be of type object"
        return f"{q} must be a string"
    if code == "type":
        return f"{q} must be a string"
    if code in ("min_length", "max_length", "empty") and isinstance(
        field, serializers.ListField | serializers.ListSerializer
    ):
        if code == "max_length":
            return f"{q} must contain less than or equal to {getattr(field, 'max_length', None)} items"
        return f"{q} must contain at least {getattr(field, 'min_length', None) or 1} items"
    if code == "max_length" and field is not None:
        return f"{q} length must be less than or equal to {field.max_length} characters long"  # type: ignore[attr-defined]
    if code == "min_length" and field is not None:
        return f"{q} length must be at least {field.min_length} characters long"  # type: ignore[attr-defined]
    if code == "min_value" and field is not None:
        return f"{q} must be larger than or equal to {field.min_value}"  # type: ignore[attr-defined]
    if code == "max_value" and field is not None:
        return f"{q} must be less than or equal to {field.max_value}"  # type: ignore[attr-defined]
    if code == "invalid_choice" and field is not None:
        choices = ", ".join(str(c) for c in field.choices)  # type: ignore[attr-defined]
        return f"{q} must be one of [{choices}]"
    if code in ("invalid", "max_string_length", "max_digits", "max_decimal_places"):
        if isinstance(field, serializers.IntegerField | serializers.FloatField):
            return f"{q} must be a number"
        if isinstance(field, serializers.BooleanField):
            return f"{q} must be a boolean"
        if isinstance(field, serializers.ListField | serializers.ListSerializer):
            return f"{q} must be an array"
        if isinstance(field, serializers.DictField | serializers.Serializer):
            return f"{q} must be of type object"
    if code == "not_a_list":
        return f"{q} must be an array"
    if code == "empty":
        return f"{q} must contain at least 1 items"
    # Custom validators raise complete Joi-style sentences.
    return str(first)


_BOUND_FIELDS: dict[type[serializers.Serializer[Any]], Any] = {}


def fresh(serializer_class: type[serializers.Serializer[Any]], data: Any = serializers.empty) -> Any:
    """``serializer_class(data=data)`` without rebuilding its fields.

    DRF deep-copies every declared field (and every nested serializer's fields) each
    time a serializer is created, which was a third of sendMessage's CPU. Request
    bodies only ever validate against the class's declared fields, and fields keep
    no per-call state while validating (errors are raised, the results returned), so
    one bound copy per class serves every request. Serializers that change their
    fields per instance (an overridden ``get_fields``) must not come through here."""
    serializer = serializer_class(data=data)
    bound = _BOUND_FIELDS.get(serializer_class)
    if bound is None:
        bound = _BOUND_FIELDS[serializer_class] = serializer_class().fields
    serializer.__dict__["fields"] = bound  # DRF's ``fields`` is a cached_property
    return serializer


def validate(
    serializer_class: type[serializers.Serializer[Any]], data: Any, *, allow_extra: Iterable[str] = ()
) -> dict[str, Any]:
    """Validate a request body: an object, no unknown keys, every field's rules.

    Returns the validated data; raises ``ValidationFailed`` with the first problem.
    """
    if isinstance(data, QueryDict):
        data = {k: data.get(k) for k in data}
    if not isinstance(data, dict):
        raise ValidationFailed("'value' must be of type object")
    serializer = fresh(serializer_class, data)
    allowed = set(serializer.fields) | set(allow_extra)
    for key in data:
        if key not in allowed:
            raise ValidationFailed(f"'{key}' is not allowed")
    if not serializer.is_valid():
        raise ValidationFailed(joi_message(serializer.errors, serializer))
    return dict(serializer.validated_data)


# --- Views -----------------------------------------------------------------------------


class InstanceRequest(Request):
    """A DRF request whose instance was authenticated from the URL."""

    instance: Instance


def authenticate_instance(id_instance: int, token: str) -> Instance:
    """Find the instance and check its token in constant time.

    Unknown (or deleted) idInstance → 403, wrong token → 401, as GREEN-API answers.
    """
    return check_instance(Instance.objects.filter(pk=id_instance, is_deleted=False).first(), token)


def check_instance(instance: Instance | None, token: str) -> Instance:
    """``authenticate_instance``'s answers for a row already read (None: no such
    live instance)."""
    if instance is None:
        raise Forbidden()
    if not hmac.compare_digest(instance.api_token.encode(), token.encode()):
        raise Unauthorized()
    if instance.is_suspended:
        raise Forbidden()
    return instance


ASYNC_AUTH_SQL = "SELECT api_token, is_deleted, is_suspended, settings FROM instances_instance WHERE id = %s"

AuthRow = tuple[str, bool, bool, dict[str, Any]]
BATCH_AUTH_SQL = (
    "SELECT id, api_token, is_deleted, is_suspended, settings FROM instances_instance WHERE id = ANY(%s::bigint[])"
)


async def _fetch_auth_rows(conn: Any, ids: list[int]) -> dict[int, AuthRow]:
    rows = await (await conn.execute(BATCH_AUTH_SQL, (ids,))).fetchall()
    return {int(row[0]): (row[1], row[2], row[3], row[4]) for row in rows}


# The edge's long-poll auth reads, batched (instances.sharedreads.BatchedReads): a
# connect storm made one read per request and queued thousands behind the edge's
# few connections past their bounded wait (503s).
_auth_reads: BatchedReads[int, AuthRow] = BatchedReads(_fetch_auth_rows)


def _check_auth_row(row: AuthRow | None, token: str) -> dict[str, Any]:
    if row is None or row[1]:
        raise Forbidden()
    api_token, _, suspended, stored_settings = row
    if not hmac.compare_digest(api_token.encode(), token.encode()):
        raise Unauthorized()
    if suspended:
        raise Forbidden()
    return dict(stored_settings)


async def authenticate_instance_async(conn: Any, id_instance: int, token: str) -> dict[str, Any]:
    """``authenticate_instance`` for the ASGI edge (an async psycopg connection): the
    same answers (403 unknown/deleted/suspended, 401 wrong token); returns the
    instance's stored settings."""
    row = await (await conn.execute(ASYNC_AUTH_SQL, (id_instance,))).fetchone()
    return _check_auth_row(row, token)


async def authenticate_instance_shared(pool: EdgePool, id_instance: int, token: str) -> dict[str, Any]:
    """``authenticate_instance_async`` for requests that may come in a herd (the
    long poll): the row is read by a batch not yet sent when the request arrived,
    so it sees every commit before that (a rotated token or a deleted instance is
    refused), shared with every request that asked meanwhile. Each request checks its
    own token. The batch waits for a connection as boundedly as any read
    (``edgepool.ACQUIRE_TIMEOUT_SECONDS``)."""
    return _check_auth_row(await _auth_reads.read(pool, id_instance), token)


class InstanceMethodView(APIView):
    """Base view for ``/waInstance{id}/{method}/{token}``.

    Subclasses set ``wire_name`` (bound by ``instances.urls.method``), an optional
    ``Input`` serializer for the body and an ``Output`` serializer for the schema.
    The verb is fixed per method: any other verb is 404, OPTIONS is 204.
    """

    wire_name: ClassVar[str] = ""
    Input: ClassVar[type[serializers.Serializer[Any]] | None] = None
    Output: ClassVar[type[serializers.Serializer[Any]] | None] = None
    parser_classes: Sequence[type[BaseParser]] = [WireJSONParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        spec = registry.BY_NAME[self.wire_name]
        if request.method == "OPTIONS":
            return
        if request.method not in spec.verbs:
            raise NotFound()
        super().initial(request, *args, **kwargs)
        instance = authenticate_instance(kwargs["id_instance"], kwargs["token"])
        if not ratelimit.allow(instance.id, spec):
            raise TooManyRequests()
        refused = engine_registry.refusal(instance.engine, spec.name)
        if refused is not None:
            raise Unsupported.because(refused, instance.engine)
        cast(InstanceRequest, request).instance = instance

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        return Response(status=204)

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        raise NotFound()

    def validate(self, data: Any) -> dict[str, Any]:
        """Validate the body against ``Input``."""
        assert self.Input is not None, f"{type(self).__name__} has no Input serializer"
        return validate(self.Input, data)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, WireError):
            return cast(Response, exc.response(self.request))
        return super().handle_exception(exc)


class UploadMixin:
    """For methods that take multipart bodies (setProfilePicture, sendFileByUpload)."""

    parser_classes: Sequence[type[BaseParser]] = [MultiPartParser, FormParser]
