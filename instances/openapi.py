"""OpenAPI generation from the same view attributes that serve the wire:
``Input`` is the request body, ``Output`` the response, ``wire_name`` the operation."""

from __future__ import annotations

import inspect
from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.views import APIView

from instances import registry
from instances.http import WireJSONParser

LIST_METHODS = {
    "getStateInstanceHistory",
    "getInstances",
    "showMessagesQueue",
    "getChatHistory",
    "lastIncomingMessages",
    "lastOutgoingMessages",
    "lastIncomingCalls",
    "lastOutgoingCalls",
    "getContacts",
    "getChats",
    "getIncomingStatuses",
    "getOutgoingStatuses",
}


class FileUpload(serializers.Serializer[Any]):
    """Multipart body of the upload methods that take a single picture or file."""

    file = serializers.FileField()


def pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


class WireAutoSchema(AutoSchema):
    def _wire_name(self) -> str:
        return str(getattr(self.view, "wire_name", "") or "")

    def get_operation_id(self) -> str:
        name = self._wire_name()
        if not name:
            return super().get_operation_id()
        # A method that accepts a second verb (startAuthorization, getContactInfo) is
        # documented under both; the canonical verb keeps the bare wire name.
        if self.method != registry.BY_NAME[name].verb:
            return f"{name}{pascal(self.method.lower())}"
        # deleteNotification is routed with the receiptId in the path (canonical) and
        # without it (the async SDK's JSON-body form).
        extra = getattr(self.view, "extra_routes", ())
        if extra and any(f"{{{segment}}}" in self.path for segment in extra):
            return f"{name}WithPathParameter"
        if extra and self.path.endswith("/"):
            return f"{name}WithTrailingSlash"  # the async SDK's body form
        return name

    def get_tags(self) -> list[str]:
        name = self._wire_name()
        if name:
            return [registry.BY_NAME[name].section]
        return super().get_tags()

    def get_description(self) -> str:  # type: ignore[override]  # drf-spectacular's signature
        name = self._wire_name()
        if not name:
            return super().get_description() or ""
        # Only the view's own docstring: the base classes document the framework.
        own = inspect.cleandoc(type(self.view).__dict__.get("__doc__") or "")
        spec = registry.BY_NAME[name]
        limit = f"{spec.rate_limit:g} req/s per instance" if spec.rate_limit else "no published limit"
        return f"GREEN-API method `{name}` ({spec.status}). Rate limit: {limit}. {own}".strip()

    def map_parsers(self) -> list[Any]:
        parsers = getattr(self.view, "parser_classes", [])
        if parsers and all(issubclass(p, WireJSONParser) for p in parsers):
            return ["application/json"]  # it reads JSON whatever the header says
        return super().map_parsers()

    def _takes_upload(self) -> bool:
        return any(issubclass(p, MultiPartParser) for p in getattr(self.view, "parser_classes", []))

    def get_request_serializer(self) -> Any:
        if not self._wire_name():
            return super().get_request_serializer()
        wire_input = getattr(self.view, "Input", None)
        if wire_input is None and self._takes_upload():
            # A multipart method with fields beside the file names them in ``Upload``.
            return {"multipart/form-data": getattr(self.view, "Upload", FileUpload)}
        return wire_input

    def get_response_serializers(self) -> Any:
        if self._wire_name():
            # GREEN-API answers 200 for every verb, DELETE included.
            output = getattr(self.view, "Output", None)
            if output is not None and self._wire_name() in LIST_METHODS:
                return {200: output(many=True)}
            return {200: output}
        return super().get_response_serializers()

    def get_serializer_name(self, serializer: serializers.Serializer[Any], direction: Any) -> str:
        # Every method view calls its body serializer ``Input``; name the component
        # after the method so that two methods never share (and clobber) one name.
        name = self._wire_name()
        if name and type(serializer) is getattr(self.view, "Input", None):
            return pascal(name)
        if name and type(serializer) is getattr(self.view, "Output", None):
            # Output classes are small and often share names across apps
            # (ResultOutput, CountOutput): the method's name keeps them apart.
            return f"{pascal(name)}Response"
        return super().get_serializer_name(serializer, direction)


def add_async_views(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the wire methods served by plain
    async Django views (DRF cannot describe them), from the same view attributes."""
    paths = result.setdefault("paths", {})
    for spec, view in registry.implemented():
        if issubclass(view, APIView):
            continue
        query = getattr(view, "Query", None)
        parameters: list[dict[str, Any]] = [
            {"name": "id_instance", "in": "path", "required": True, "schema": {"type": "integer"}},
            {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
        ]
        if query is not None:
            for field_name, field in query().fields.items():
                kind = "integer" if isinstance(field, serializers.IntegerField) else "string"
                schema: dict[str, Any] = {"type": kind}
                for attr, key in (("min_value", "minimum"), ("max_value", "maximum")):
                    if getattr(field, attr, None) is not None:
                        schema[key] = getattr(field, attr)
                parameters.append({"name": field_name, "in": "query", "required": False, "schema": schema})
        limit = f"{spec.rate_limit:g} req/s per instance" if spec.rate_limit else "no published limit"
        doc = inspect.cleandoc(view.__doc__ or "")
        paths[f"/waInstance{{id_instance}}/{spec.name}/{{token}}"] = {
            spec.verb.lower(): {
                "operationId": spec.name,
                "description": f"GREEN-API method `{spec.name}` ({spec.status}). Rate limit: {limit}. {doc}".strip(),
                "tags": [spec.section],
                "parameters": parameters,
                "responses": {
                    "200": {
                        "description": getattr(view, "response_description", "OK"),
                        "content": {"application/json": {"schema": getattr(view, "response_schema", {})}},
                    }
                },
            }
        }
    return result


_ENVELOPE = {
    "type": "object",
    "properties": {
        "statusCode": {"type": "integer"},
        "timestamp": {"type": "string"},
        "path": {"type": "string"},
        "message": {"type": "string"},
    },
    "required": ["statusCode", "timestamp", "path", "message"],
}
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
# GREEN-API's error answers (instances/http.py), on every operation: what a client
# (and a schema-driven fuzzer) may get besides the documented success.
ERROR_RESPONSES: dict[str, dict[str, Any]] = {
    "400": {"description": "Bad Request: invalid body, parameters or JSON", "content": {"application/json": {"schema": _ENVELOPE}}},
    "401": {
        "description": "Unauthorized: wrong apiTokenInstance or partner token",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
                }
            }
        },
    },
    "403": {"description": "Forbidden: unknown, deleted or suspended instance", "content": _TEXT},
    "404": {"description": "Not Found: unknown method or verb", "content": _TEXT},
    "413": {"description": "Payload Too Large", "content": {"application/json": {"schema": _ENVELOPE}}},
    "429": {"description": "Too Many Requests: rate limit or failed authentications", "content": _TEXT},
}


# The emulator control API's refusals of a valid request (engines.emulator.api._result).
CONFLICT = {
    "description": "Conflict: the phone cannot do that now (result false, with the reason)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "result": {"type": "boolean"},
                    "stateInstance": {"type": "string"},
                    "reason": {"type": "string"},
                },
            }
        }
    },
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation documents the wire's
    error answers (400, 401, 403, 404, 413, 429) next to its success."""
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                for status, response in ERROR_RESPONSES.items():
                    operation["responses"].setdefault(status, response)
                if path.startswith("/api/v1/emulator/"):
                    operation["responses"].setdefault("409", CONFLICT)
    return result
