"""Wire fields shared by the send methods (API.md §5, §8.2)."""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from instances.http import Int, Str

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
