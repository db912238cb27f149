"""Helpers shared by the journal, chat and contact method tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from engines.events import MessageEvent
from instances.models import Instance
from journals.services import ingest_event
from tests.conftest import method_url

PEER = "79001234567"
PEER_WID = f"{PEER}@c.us"


def at(seconds_ago: float) -> datetime:
    return (timezone.now() - timedelta(seconds=seconds_ago)).replace(microsecond=0)


def text_data(text: str) -> dict[str, Any]:
    return {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}}


def receive(
    instance: Instance,
    data: dict[str, Any],
    *,
    id_message: str,
    chat_id: str = PEER_WID,
    when: datetime | None = None,
    direction: str = "incoming",
    name: str = "John",
) -> MessageEvent:
    """What an engine session does for a message: one ``ingest_event``."""
    event = MessageEvent(
        direction=direction,
        chat_id=chat_id,
        id_message=id_message,
        sender=chat_id if direction == "incoming" else instance.wid,
        sender_name=name if direction == "incoming" else "",
        chat_name=name,
        sender_contact_name="John Doe" if direction == "incoming" else "",
        message_data=data,
        timestamp=when or timezone.now(),
    )
    ingest_event(instance, event)
    return event


def post(client: APIClient, instance: Instance, method: str, body: Any, token: str | None = None) -> Any:
    return client.post(method_url(instance, method, token), body, format="json")


def get(client: APIClient, instance: Instance, method: str, query: str = "", token: str | None = None) -> Any:
    return client.get(method_url(instance, method, token) + (f"?{query}" if query else ""))


def assert_validation(response: Any, detail: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["statusCode"] == 400
    assert body["message"] == f"Validation failed. Details: {detail}"


def assert_wire_guards(
    client: APIClient, instance: Instance, method: str, verb: str, body: Any = None
) -> None:
    """401 on a wrong token, 403 on an unknown instance, 404 on a wrong verb."""
    url = method_url(instance, method, "0" * 50)
    call = client.post if verb == "POST" else client.get
    r = call(url, body, format="json") if verb == "POST" else call(url)
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}
    r = call(f"/waInstance9999999999/{method}/{instance.api_token}", body, format="json")
    assert r.status_code == 403
    wrong = client.get if verb == "POST" else client.post
    r = wrong(method_url(instance, method))
    assert r.status_code == 404
