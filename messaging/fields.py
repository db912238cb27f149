"""Wire fields shared by the send methods (API.md §5, §8.2)."""

from __future__ import annotations

import re
from typing import Any, cast

from rest_framework import serializers

from instances.http import Int, Str, ValidationFailed

CHAT_ID_RE = re.compile(r"^(\d{5,20}@c\.us|\d{5,20}-\d{6,12}@g\.us|\d{15,22}@g\.us|\d{5,25}@lid)$")
CHAT_ID_FORMATS = "'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'"


class ChatId(Str):
    """A chat id: ``<digits>@c.us``, either group format ``@g.us``, or ``<digits>@lid``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not CHAT_ID_RE.match(value):
            raise serializers.ValidationError(
                f"'{self.field_name}' must be one of the next formats: {CHAT_ID_FORMATS}", code="joi"
            )
        return value


def typing_time() -> Int:
    return Int(required=False, min_value=1000, max_value=20000)


def quoted_message_id() -> Str:
    return Str(required=False, max_length=64)


class Number(serializers.FloatField):
    """A JSON number (or numeric string, as Joi converts); never a boolean, which
    ``float()`` would quietly turn into 0.0 or 1.0."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        return float(super().to_internal_value(data))


def items_messages(name: str) -> dict[str, Any]:
    """Joi's array-length wording for a top-level array field ``name`` (DRF's own
    "Ensure this field has at least 2 elements." would reach the wire verbatim)."""
    return {
        "min_length": f"'{name}' must contain at least {{min_length}} items",
        "max_length": f"'{name}' must contain less than or equal to {{max_length}} items",
    }


def reject_unknown_keys(serializer: serializers.Serializer[Any], data: Any, path: str = "") -> None:
    """Joi rejects unknown keys at every depth; ``instances.http.validate`` only
    checks the top level. Runs after validation, so ``data`` has the right shape."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        label = f"{path}.{key}" if path else str(key)
        field = serializer.fields.get(key)
        if field is None:
            raise ValidationFailed(f"'{label}' is not allowed")
        if isinstance(field, serializers.ListSerializer) and isinstance(value, list):
            for index, item in enumerate(value):
                reject_unknown_keys(cast(serializers.Serializer[Any], field.child), item, f"{label}[{index}]")
        elif isinstance(field, serializers.Serializer):
            reject_unknown_keys(field, value, label)


def many(child: type[serializers.Serializer[Any]], min_items: int, max_items: int, **kwargs: Any) -> Any:
    """A list of ``child`` objects with Joi-worded size limits (DRF's ``many=True``)."""
    return child(many=True, min_length=min_items, max_length=max_items, **kwargs)  # type: ignore[call-arg]


def legacy_phone_number(body: Any) -> Any:
    """The JS SDK's legacy shape for sendFileByUrl and getAvatar: a numeric
    ``phoneNumber`` instead of ``chatId``. Becomes the personal chat's id; a body
    with a ``chatId`` (or without either) is left to the method's own validation."""
    if not isinstance(body, dict) or "chatId" in body or "phoneNumber" not in body:
        return body
    value = body["phoneNumber"]
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValidationFailed("Wrong format. 'phoneNumber' must contain only digits")
    rest = {k: v for k, v in body.items() if k != "phoneNumber"}
    return {"chatId": f"{value}@c.us", **rest}
