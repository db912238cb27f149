"""OpenAPI generation from the same view attributes that serve the wire:
``Input`` is the request body, ``Output`` the response, ``wire_name`` the operation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

from instances import registry

LIST_METHODS = {"getStateInstanceHistory", "getInstances"}


class WireAutoSchema(AutoSchema):
    def _wire_name(self) -> str:
        return str(getattr(self.view, "wire_name", "") or "")

    def get_operation_id(self) -> str:
        name = self._wire_name()
        return name or super().get_operation_id()

    def get_tags(self) -> list[str]:
        name = self._wire_name()
        if name:
            return [registry.BY_NAME[name].section]
        return super().get_tags()

    def get_description(self) -> str:
        name = self._wire_name()
        base = super().get_description() or ""
        if not name:
            return base
        spec = registry.BY_NAME[name]
        limit = f"{spec.rate_limit:g} req/s per instance" if spec.rate_limit else "no published limit"
        return f"GREEN-API method `{name}` ({spec.status}). Rate limit: {limit}. {base}".strip()

    def get_request_serializer(self) -> Any:
        if self._wire_name():
            return getattr(self.view, "Input", None)
        return super().get_request_serializer()

    def get_response_serializers(self) -> Any:
        if self._wire_name():
            output = getattr(self.view, "Output", None)
            if output is not None and self._wire_name() in LIST_METHODS:
                return output(many=True)
            return output
        return super().get_response_serializers()
