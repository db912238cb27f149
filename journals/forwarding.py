"""forwardMessages (API.md §9.2): queue copies of messages from another chat. A
journals method because its sources are the journal (what the engine reported in
the source chat) and our API sends; the copies go out through the send queue."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from instances.models import Instance
from journals.selectors import forward_sources
from messaging.models import OutgoingMessage
from messaging.services import wake_queue


class UnknownMessageError(Exception):
    """A forwarded id is not a message of the source chat known to this instance."""


def _source_messages(instance: Instance, chat_id_from: str, id_messages: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """(typeMessage, payload) of known messages in ``chat_id_from`` by idMessage:
    ones we sent there through the API, and ones in the chat's journal."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for id_message, type_message, payload in OutgoingMessage.objects.filter(
        instance=instance, chat_id=chat_id_from, id_message__in=id_messages
    ).values_list("id_message", "type_message", "payload"):
        found[id_message] = (type_message, payload)
    # What the engine reported in that chat (received, or sent from the phone): from
    # our own journal, so forwarding works the same on every engine.
    for id_message, source in forward_sources(instance.pk, chat_id_from, id_messages).items():
        found.setdefault(id_message, source)
    return found


def forward_messages(
    *,
    instance: Instance,
    chat_id: str,
    chat_id_from: str,
    id_messages: list[str],
    typing_time: int | None = None,
    idempotency_key: str = "",
) -> list[OutgoingMessage]:
    """Queue copies of messages from another chat, marked forwarded, in the given
    order. One showMessagesQueue item (ForwardMessages) lists them all."""
    if idempotency_key:
        first = OutgoingMessage.objects.filter(instance=instance, idempotency_key=idempotency_key).first()
        if first is not None:
            return list(
                OutgoingMessage.objects.filter(
                    instance=instance, method="forwardMessages", request=first.request, created_at=first.created_at
                ).order_by("id")
            )
    sources = _source_messages(instance, chat_id_from, id_messages)
    for id_message in id_messages:
        if id_message not in sources:
            raise UnknownMessageError(id_message)
    echo: dict[str, Any] = {"chatId": chat_id, "chatIdFrom": chat_id_from, "messages": id_messages}
    if typing_time is not None:
        echo["typingTime"] = typing_time
    now = timezone.now()
    with transaction.atomic():
        created = []
        for index, id_message in enumerate(id_messages):
            type_message, payload = sources[id_message]
            created.append(
                OutgoingMessage.objects.create(
                    instance=instance,
                    chat_id=chat_id,
                    method="forwardMessages",
                    type_message=type_message,
                    request=echo,
                    payload={
                        **payload,
                        "isForwarded": True,
                        "forwardingScore": 1,
                        "forwardedFrom": id_message,
                        **({"typingTime": typing_time} if typing_time else {}),
                    },
                    is_file=bool(payload.get("fileName")),
                    idempotency_key=idempotency_key if index == 0 else "",
                    created_at=now,
                )
            )
        transaction.on_commit(lambda: wake_queue(instance.id))
    return created
