"""The API console: forms generated from the method registry's ``Input`` serializers
and a real call of the method through Django's full request handler (middleware,
routing, the view), in-process, so no network hop and no Host-header games.

One list: ``registry.implemented()`` is what the server answers and what the console
offers; a method's form is its view's ``Input`` serializer."""

from __future__ import annotations

import functools
import json
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.handlers.base import BaseHandler
from django.http import HttpResponseBase
from django.test.client import RequestFactory
from django.urls import get_resolver
from rest_framework import serializers

from instances import registry
from instances.models import Instance
from instances.openapi import WireAutoSchema

# SDK attribute per registry section (whatsapp-api-client-python's GreenAPI object).
SDK_GROUPS = {
    "account": "account",
    "sending": "sending",
    "receiving": "receiving",
    "journals": "journals",
    "queues": "queues",
    "groups": "groups",
    "statuses": "statuses",
    "marks": "marking",
    "service": "serviceMethods",
    "contacts": "contacts",
    "device": "device",
}
# Methods the SDK has no helper for (or under another name): the snippet uses its
# generic ``request()`` instead.
SDK_GENERIC = frozenset(
    {"startAuthorization", "sendAuthorizationCode", "setSystemProxy", "sendTyping", "editMessage",
     "updateGroupSettings", "deleteContact", "addContact", "editContact", "getAvatarAsync", "sendTemplate", "sendReaction",
     "getSessionHealth"}
)
RESPONSE_PREVIEW_BYTES = 64 * 1024


@dataclass(frozen=True)
class ConsoleField:
    """One input of a method's form: ``kind`` picks the widget and how to parse it."""

    name: str
    kind: str  # text | textarea | number | bool | choice | json | file
    required: bool
    help: str = ""
    choices: tuple[str, ...] = ()
    example: str = ""


@dataclass(frozen=True)
class ConsoleMethod:
    name: str
    verb: str
    section: str
    status: str
    host: str
    fields: tuple[ConsoleField, ...]
    path_extra: str = ""  # name of a trailing path segment (deleteNotification's receiptId)
    query: tuple[ConsoleField, ...] = ()  # query-string parameters (the view's ``Query``)
    body: str = "json"  # json | multipart | binary (uploadFile: the raw file is the body)

    @property
    def has_files(self) -> bool:
        return self.body in ("multipart", "binary")

    @property
    def docs_url(self) -> str:
        """The method in this server's API reference (Swagger UI deep link: the
        operation is tagged with its section and named after the method)."""
        return f"/api/docs/#/{self.section}/{self.name}"

    @property
    def takes_chat(self) -> bool:
        return any(f.name == "chatId" for f in self.fields)


def _field_kind(f: serializers.Field[Any, Any, Any, Any]) -> tuple[str, tuple[str, ...]]:
    if isinstance(f, serializers.FileField):
        return "file", ()
    if isinstance(f, serializers.BooleanField):
        return "bool", ()
    if isinstance(f, serializers.ChoiceField):
        return "choice", tuple(str(c) for c in f.choices)
    if isinstance(f, serializers.IntegerField | serializers.FloatField | serializers.DecimalField):
        return "number", ()
    if isinstance(f, serializers.CharField):
        long = f.max_length is None or f.max_length > 500
        return ("textarea" if long else "text"), ()
    return "json", ()


EXAMPLES = {
    "chatId": "79001234567@c.us",
    "message": "Hello from Relay!",
    "phoneNumber": "79001234567",
    "urlFile": "https://example.com/picture.png",
    "fileName": "picture.png",
    "options": '[{"optionName": "Yes"}, {"optionName": "No"}]',
    "chatIds": '["79001234567@c.us"]',
    "messages": '["BAE5F4886F6F2D05"]',
    "participants": '["79001234567@c.us"]',
}


def _documented_body(view: Any) -> tuple[str, Any]:
    """How the OpenAPI schema documents the body of a view without ``Input``: asks
    the view's own schema class (``instances.openapi.WireAutoSchema``, or the one
    ``@extend_schema`` made), so the console and /api/schema/ cannot disagree."""
    post = getattr(view, "post", None)
    schema_class = getattr(post, "kwargs", {}).get("schema") or WireAutoSchema
    try:
        schema = schema_class()
        view_instance = view()
        view_instance.request, view_instance.args, view_instance.kwargs = None, (), {}
        schema.view = view_instance
        schema.method = "POST"
        documented = schema.get_request_serializer()
    except Exception:  # noqa: BLE001 - a view the schema cannot describe gets no form
        return "json", None
    if isinstance(documented, dict):
        if "multipart/form-data" in documented:
            return "multipart", documented["multipart/form-data"]
        if "application/octet-stream" in documented:
            return "binary", None
    return "json", None


def _serializer_fields(serializer_class: Any) -> tuple[ConsoleField, ...]:
    result = []
    for name, f in serializer_class().fields.items():
        if f.read_only:
            continue
        kind, choices = _field_kind(f)
        help_text = str(f.help_text or "")
        result.append(
            ConsoleField(
                name=name, kind=kind, required=bool(f.required), help=help_text, choices=choices,
                example=EXAMPLES.get(name, ""),
            )
        )
    # Required fields first, keeping the serializer's order inside each group.
    return tuple(sorted(result, key=lambda cf: not cf.required))


def _body_of(view: Any, verb: str) -> tuple[str, tuple[ConsoleField, ...]]:
    input_class = getattr(view, "Input", None)
    if input_class is not None:
        return "json", _serializer_fields(input_class)
    if verb != "POST":
        return "json", ()
    body, serializer_class = _documented_body(view)
    if body == "binary":
        return body, (ConsoleField(name="file", kind="file", required=True, help="Sent as the raw request body."),)
    if serializer_class is not None:
        return body, _serializer_fields(serializer_class)
    return body, ()


def _query_of(view: Any) -> tuple[ConsoleField, ...]:
    query_class = getattr(view, "Query", None)
    return _serializer_fields(query_class) if query_class is not None else ()


def _path_extra(name: str) -> str:
    found = get_resolver().reverse_dict.getlist(f"{name}-extra")
    for possibilities, *_ in found:
        for _pattern, params in possibilities:
            extras = [p for p in params if p not in ("id_instance", "token")]
            if extras:
                return str(extras[0])
    return ""


@functools.cache
def methods() -> tuple[ConsoleMethod, ...]:
    """Every implemented method that speaks HTTP, in catalogue order."""
    result = []
    for spec, view in registry.implemented():
        if spec.host == "ws":
            continue
        body, fields = _body_of(view, spec.verb)
        result.append(
            ConsoleMethod(
                name=spec.name, verb=spec.verb, section=spec.section, status=spec.status, host=spec.host,
                fields=fields, path_extra=_path_extra(spec.name), query=_query_of(view), body=body,
            )
        )
    return tuple(result)


def method_by_name(name: str) -> ConsoleMethod | None:
    return next((m for m in methods() if m.name == name), None)


# --- Building the request ------------------------------------------------------------------


class InputError(Exception):
    """A form value that cannot become a request (not a number, not JSON…)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class BuiltRequest:
    body: dict[str, Any]
    files: dict[str, UploadedFile[bytes]] = field(default_factory=dict)
    extra: str = ""
    query: dict[str, str] = field(default_factory=dict)  # inputs named ``q-<name>``
    binary: bool = False  # the one file is the whole body (uploadFile)

    @property
    def query_string(self) -> str:
        return ("?" + urlencode(self.query)) if self.query else ""


_PHONE_RE = re.compile(r"\+?[\d\s()-]{5,}")
_GROUP_RE = re.compile(r"\d{5,}-\d{5,}")


def complete_chat_id(value: str) -> str:
    """What the customer meant: a plain number gets ``@c.us`` (spaces, dashes, a
    leading ``+`` and brackets dropped), a ``<creator>-<time>`` group id ``@g.us``;
    anything else is sent as typed for the server to judge."""
    text = value.strip()
    if "@" in text:
        return text
    if _GROUP_RE.fullmatch(text):
        return f"{text}@g.us"
    if _PHONE_RE.fullmatch(text):
        digits = re.sub(r"\D", "", text)
        if 5 <= len(digits) <= 16:
            return f"{digits}@c.us"
    return text


def build_request(method: ConsoleMethod, data: Any, files: Any) -> BuiltRequest:
    """Turn the submitted console form into a request body. Empty optional fields are
    left out (the API's defaults apply); values the server must judge are sent as typed
    so its validation message shows. ``__raw`` (JSON) replaces the generated body."""
    errors: dict[str, str] = {}
    raw = str(data.get("__raw", "")).strip()
    built = BuiltRequest(body={}, extra=str(data.get("__extra", "")).strip())
    if method.path_extra and not built.extra:
        errors["__extra"] = f"{method.path_extra} is required: it is part of the URL."
    if raw:
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors["__raw"] = f"This is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        else:
            if not isinstance(body, dict):
                errors["__raw"] = "The raw body must be a JSON object, like {\"chatId\": \"…\"}."
            else:
                built.body = body
    built.binary = method.body == "binary"
    for q in method.query:
        value = str(data.get(f"q-{q.name}", "")).strip()
        if value:
            built.query[q.name] = value  # the server judges it, in its own words
    for f in method.fields:
        if f.kind == "file":
            upload = files.get(f.name)
            if upload is not None:
                built.files[f.name] = upload
            elif f.required:
                errors[f.name] = "Choose a file to upload."
            continue
        if raw:
            continue
        value = str(data.get(f.name, ""))
        if value.strip() == "":
            continue
        if f.name == "chatId":
            value = complete_chat_id(value)
        if f.kind == "number":
            try:
                built.body[f.name] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
            except ValueError:
                errors[f.name] = "Enter a number."
        elif f.kind == "bool":
            built.body[f.name] = value == "true"
        elif f.kind == "json":
            try:
                built.body[f.name] = json.loads(value)
            except json.JSONDecodeError as exc:
                errors[f.name] = f"This is not valid JSON: {exc.msg} (column {exc.colno})."
        else:
            built.body[f.name] = value
    if errors:
        raise InputError(errors)
    return built


def wire_path(instance: Instance, method: ConsoleMethod, extra: str = "") -> str:
    if method.host == "partner":
        path = f"/partner/{method.name}/{instance.account.partner_token}"
    else:
        path = f"/waInstance{instance.id}/{method.name}/{instance.api_token}"
    return path + (f"/{extra}" if extra else "")


def base_url(method: ConsoleMethod) -> str:
    return str(settings.RELAY_MEDIA_URL if method.host == "media" else settings.RELAY_API_URL).rstrip("/")


# --- Calling it --------------------------------------------------------------------------


@functools.cache
def _handler() -> BaseHandler:
    handler = BaseHandler()
    handler.load_middleware(is_async=False)
    return handler


@dataclass(frozen=True)
class ConsoleResult:
    verb: str
    url: str
    request_body: str
    status: int
    reason: str
    content_type: str
    response_body: str
    elapsed_ms: float
    curl: str
    python: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _response_text(response: HttpResponseBase) -> str:
    if getattr(response, "streaming", False):
        chunks = []
        size = 0
        for chunk in response.streaming_content:  # type: ignore[attr-defined]
            chunks.append(bytes(chunk))
            size += len(chunk)
            if size > RESPONSE_PREVIEW_BYTES:
                break
        raw = b"".join(chunks)
    else:
        raw = bytes(response.content)  # type: ignore[attr-defined]
    content_type = response.get("Content-Type", "")
    if "json" in content_type:
        try:
            return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    if content_type.startswith(("image/", "audio/", "video/", "application/octet")):
        return f"<{len(raw)} bytes of {content_type}>"
    text = raw[:RESPONSE_PREVIEW_BYTES].decode("utf-8", errors="replace")
    return text + ("\n… (cut)" if len(raw) > RESPONSE_PREVIEW_BYTES else "")


def execute(instance: Instance, method: ConsoleMethod, built: BuiltRequest) -> ConsoleResult:
    """Send the request through the server's own handler and time it."""
    path = wire_path(instance, method, built.extra) + built.query_string
    factory = RequestFactory()
    meta: dict[str, Any] = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "Relay-Console/1.0"}
    body_text = ""
    if built.binary and built.files:
        upload = next(iter(built.files.values()))
        upload.seek(0)
        content = upload.read()
        request = factory.generic(
            "POST", path, data=content, content_type=upload.content_type or "application/octet-stream",
            HTTP_GA_FILENAME=upload.name or "", **meta,
        )
        body_text = f"<{len(content)} bytes of {upload.name}>"
    elif built.files:
        form = {k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in built.body.items()}
        for name, upload in built.files.items():
            upload.seek(0)
            form[name] = upload
        request = factory.post(path, data=form, **meta)
        body_text = json.dumps({**built.body, **{k: f"<file {v.name}>" for k, v in built.files.items()}}, indent=2)
    elif method.verb in ("GET", "DELETE") and not built.body:
        request = factory.generic(method.verb, path, **meta)
    else:
        body_text = json.dumps(built.body, indent=2, ensure_ascii=False)
        request = factory.generic(
            method.verb, path, data=json.dumps(built.body).encode(), content_type="application/json", **meta
        )
    started = time.perf_counter()
    response = _handler().get_response(request)
    text = _response_text(response)
    elapsed = (time.perf_counter() - started) * 1000
    url = base_url(method) + path
    return ConsoleResult(
        verb=method.verb,
        url=url,
        request_body=body_text,
        status=response.status_code,
        reason=response.reason_phrase,
        content_type=response.get("Content-Type", ""),
        response_body=text,
        elapsed_ms=round(elapsed, 1),
        curl=curl_line(instance, method, built),
        python=python_snippet(instance, method, built),
    )


# --- Snippets -------------------------------------------------------------------------------


def curl_line(instance: Instance, method: ConsoleMethod, built: BuiltRequest) -> str:
    url = base_url(method) + wire_path(instance, method, built.extra) + built.query_string
    parts = ["curl", "-X", method.verb, shlex.quote(url)]
    if built.binary and built.files:
        upload = next(iter(built.files.values()))
        parts += ["-H", shlex.quote(f"Content-Type: {upload.content_type or 'application/octet-stream'}")]
        parts += ["-H", shlex.quote(f"GA-Filename: {upload.name}")]
        parts += ["--data-binary", shlex.quote(f"@{upload.name}")]
    elif built.files:
        for k, v in built.body.items():
            parts += ["-F", shlex.quote(f"{k}={json.dumps(v) if isinstance(v, dict | list) else v}")]
        for k, upload in built.files.items():
            parts += ["-F", shlex.quote(f"{k}=@{upload.name}")]
    elif built.body or method.verb == "POST":
        parts += ["-H", shlex.quote("Content-Type: application/json")]
        parts += ["-d", shlex.quote(json.dumps(built.body, ensure_ascii=False))]
    return " ".join(parts)


def _py(value: Any) -> str:
    return repr(value)


def _query_value(method: ConsoleMethod, name: str, value: str) -> Any:
    """A query value as the SDK helper's argument: numbers as numbers."""
    field_kind = next((q.kind for q in method.query if q.name == name), "text")
    if field_kind == "number" and value.lstrip("-").isdigit():
        return int(value)
    if field_kind == "bool" and value in ("true", "false"):
        return value == "true"
    return value


def python_snippet(instance: Instance, method: ConsoleMethod, built: BuiltRequest) -> str:
    """A whatsapp-api-client-python (GREEN-API's official SDK) call doing the same."""
    api_url = str(settings.RELAY_API_URL).rstrip("/")
    media_url = str(settings.RELAY_MEDIA_URL).rstrip("/")
    if method.host == "partner":
        head = [
            "from whatsapp_api_client_python import API",
            "",
            f"partner = API.GreenApiPartner({_py(instance.account.partner_token)}, host={_py(api_url)})",
        ]
        call = f"partner.request({_py(method.verb)}, {_py('{{host}}/partner/' + method.name + '/{{partnerToken}}')}, {_py(built.body or None)})"
        return "\n".join([*head, f"response = {call}", "print(response.code, response.data)"])
    head = [
        "from whatsapp_api_client_python import API",
        "",
        "greenAPI = API.GreenAPI(",
        f"    {_py(str(instance.id))}, {_py(instance.api_token)},",
        f"    host={_py(api_url)}, media={_py(media_url)},",
        ")",
    ]
    group = SDK_GROUPS.get(method.section)
    if group and method.name not in SDK_GENERIC and not method.path_extra and len(built.files) <= 1:
        # The SDK's helpers take query parameters as arguments and a file as ``path``.
        kwargs: dict[str, Any] = {**built.body, **{k: _query_value(method, k, v) for k, v in built.query.items()}}
        args = [f"{k}={_py(v)}" for k, v in kwargs.items()]
        args += [f"path={_py(upload.name)}" for upload in built.files.values()]
        call = f"greenAPI.{group}.{method.name}({', '.join(args)})"
    else:
        host = "{{media}}" if method.host == "media" else "{{host}}"
        url = f"{host}/waInstance{{{{idInstance}}}}/{method.name}/{{{{apiTokenInstance}}}}"
        if built.extra:
            url += f"/{built.extra}"
        url += built.query_string
        call = f"greenAPI.request({_py(method.verb)}, {_py(url)}"
        if built.body:
            call += f", {_py(built.body)}"
        if built.files:
            names = {k: (v.name, f"open({v.name!r}, 'rb')") for k, v in built.files.items()}
            files = ", ".join(f"{k!r}: ({n!r}, {o})" for k, (n, o) in names.items())
            call += f", files={{{files}}}"
        call += ")"
    return "\n".join([*head, f"response = {call}", "print(response.code, response.data)"])


def human_error(result: ConsoleResult) -> str:
    """A sentence for a failed API answer (the cabinet never shows raw wire words
    alone): the API's own message, framed by what the status means."""
    try:
        payload = json.loads(result.response_body)
    except ValueError:
        payload = {}
    detail = str(payload.get("message") or payload.get("error") or "").strip() if isinstance(payload, dict) else ""
    lead = {
        400: "The request was not accepted",
        401: "The instance token was not accepted",
        403: "This instance may not do that right now",
        404: "Not found",
        413: "The message is too large",
        429: "Too many requests: wait a moment and try again",
        466: "The instance's quota is used up",
    }.get(result.status, f"The server answered {result.status} {result.reason}")
    if detail:
        detail = detail[0].upper() + detail[1:]
        return f"{lead}. {detail.rstrip('.')}."
    return f"{lead}."


def send_text(instance: Instance, chat_id: str, text: str) -> str:
    """``sendMessage`` through the API's own handler; "" when queued, else a
    sentence saying why not."""
    method = method_by_name("sendMessage")
    if method is None:  # the registry always has it; a clear error if not
        return "Sending is not available on this server."
    result = execute(instance, method, BuiltRequest(body={"chatId": chat_id, "message": text}))
    return "" if result.ok else human_error(result)
