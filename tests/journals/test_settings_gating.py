"""The settings flags of API.md §7 decide which notifications an instance gets; the
read-mark flags decide when received messages are marked read (and senders on this
server see ``read``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.emulator import triggers as emulator_events
from engines.emulator.models import EmuPhone
from instances.models import Instance
from journals.models import Direction, JournalMessage, Notification
from messaging.models import OutgoingMessage, OutgoingStatus, SendCursor
from messaging.services import drain_queue
from tests.conftest import method_url
from tests.journals.emulated import (
    CONTACT,
    CONTACT_WID,
    forget_notifications,
    notifying_instance,
    queued_types,
    set_flags,
    tick,
)

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture(autouse=True)
def _no_simulated_receipts(settings: Any) -> None:
    # Simulated contacts acknowledge on a timer; here only sessions may mark things.
    settings.EMULATOR_DELIVERED_AFTER_SECONDS = 3600
    settings.EMULATOR_READ_AFTER_SECONDS = 3600


def api_send(instance: Instance, chat_id: str, text: str = "hi") -> str:
    r = APIClient().post(
        method_url(instance, "sendMessage"), {"chatId": chat_id, "message": text}, format="json"
    )
    assert r.status_code == 200, r.content
    return str(r.json()["idMessage"])


def incoming(kind: str, **fields: Any) -> Callable[[Instance], None]:
    def produce(instance: Instance) -> None:
        if kind in ("editedMessage", "deletedMessage"):
            fields["stanzaId"] = emulator_events.contact_sends(
                instance, phone=CONTACT, kind="textMessage", fields={"message": "original"}
            ).id_message
            tick()
            forget_notifications(instance)
        emulator_events.contact_sends(instance, phone=CONTACT, kind=kind, fields=fields)

    return produce


def call(instance: Instance) -> None:
    emulator_events.contact_calls(instance, phone=CONTACT, outcome="hungUp")


def block(instance: Instance) -> None:
    emulator_events.contact_blocks(instance, phone=CONTACT)


def phone_sent(instance: Instance) -> None:
    emulator_events.phone_sends(
        instance, phone=CONTACT, kind="textMessage", fields={"message": "from the phone"}
    )


def sent_via_api(instance: Instance) -> None:
    api_send(instance, CONTACT_WID)


# flag -> (event, the notification it gates)
GATES: dict[str, tuple[Callable[[Instance], None], str]] = {
    "incomingWebhook": (incoming("textMessage", message="hi"), "incomingMessageReceived"),
    "pollMessageWebhook": (
        incoming("pollMessage", message="Q", options=["a", "b"]),
        "incomingMessageReceived",
    ),
    "editedMessageWebhook": (incoming("editedMessage", message="new"), "incomingMessageReceived"),
    "deletedMessageWebhook": (incoming("deletedMessage"), "incomingMessageReceived"),
    "incomingCallWebhook": (call, "incomingCall"),
    "incomingBlockWebhook": (block, "incomingBlock"),
    "outgoingMessageWebhook": (phone_sent, "outgoingMessageReceived"),
    "outgoingAPIMessageWebhook": (sent_via_api, "outgoingAPIMessageReceived"),
    "outgoingWebhook": (sent_via_api, "outgoingMessageStatus"),
}


@pytest.mark.parametrize("flag", list(GATES))
@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_each_flag_switches_its_notification(flag: str, on: bool) -> None:
    flags: dict[str, Any] = {flag: on}
    instance = notifying_instance(**flags)
    produce, type_webhook = GATES[flag]
    produce(instance)
    tick()
    assert (type_webhook in queued_types(instance)) is on


@pytest.mark.parametrize("kind", ["pollMessage", "editedMessage", "deletedMessage"])
def test_incoming_webhook_is_a_prerequisite(kind: str) -> None:
    fields: dict[str, Any] = {"message": "Q", "options": ["a", "b"]} if kind == "pollMessage" else {}
    if kind == "editedMessage":
        fields = {"message": "new"}
    instance = notifying_instance(incomingWebhook=False)
    incoming(kind, **fields)(instance)
    call(instance)
    tick()
    assert queued_types(instance) == []


def test_the_other_kinds_are_not_gated_by_the_special_flags() -> None:
    instance = notifying_instance(
        pollMessageWebhook=False, editedMessageWebhook=False, deletedMessageWebhook=False
    )
    incoming("textMessage", message="plain")(instance)
    tick()
    assert queued_types(instance) == ["incomingMessageReceived"]


def test_failed_and_no_account_are_always_delivered() -> None:
    instance = notifying_instance(outgoingWebhook=False, outgoingAPIMessageWebhook=False)
    set_flags(instance, delaySendMessagesMilliseconds=500)
    EmuPhone.objects.create(phone="79009999999", registered=False)
    no_account = api_send(instance, "79009999999@c.us")
    r = APIClient().post(
        method_url(instance, "sendFileByUrl"),
        {"chatId": CONTACT_WID, "urlFile": "http://127.0.0.1:9/missing.jpg", "fileName": "missing.jpg"},
        format="json",
    )
    assert r.status_code == 200
    failed = r.json()["idMessage"]
    # Pacing keeps the second message queued until the worker's next pass.
    SendCursor.objects.filter(instance_id=instance.pk).update(last_sent_at=None)
    drain_queue(instance.pk, "test")
    statuses = dict(OutgoingMessage.objects.filter(instance=instance).values_list("id_message", "status"))
    assert statuses == {no_account: OutgoingStatus.NO_ACCOUNT, failed: OutgoingStatus.FAILED}
    bodies = [n.body for n in Notification.objects.filter(instance=instance).order_by("receipt_id")]
    assert [(b["typeWebhook"], b["status"], b["idMessage"]) for b in bodies] == [
        ("outgoingMessageStatus", "noAccount", no_account),
        ("outgoingMessageStatus", "failed", failed),
    ]
    assert all(b["description"] for b in bodies)


# --- Read marks ---------------------------------------------------------------------


def pair() -> tuple[Instance, Instance]:
    """Two instances on this server: A writes to B's phone."""
    a = notifying_instance(phone="79110000001")
    b = notifying_instance(phone="79110000002")
    return a, b


def a_status(a: Instance, id_message: str) -> str:
    return str(OutgoingMessage.objects.get(instance=a, id_message=id_message).status)


def b_read(b: Instance, id_message: str) -> bool:
    return bool(
        JournalMessage.objects.get(instance=b, direction=Direction.INCOMING, id_message=id_message).is_read
    )


def test_without_read_flags_nothing_is_marked_read() -> None:
    a, b = pair()
    sent = api_send(a, b.wid, "hello B")
    tick()
    assert a_status(a, sent) == OutgoingStatus.DELIVERED
    assert not b_read(b, sent)


def test_mark_incoming_messages_readed_marks_read_and_the_sender_sees_read() -> None:
    a, b = pair()
    set_flags(b, markIncomingMessagesReaded=True)
    sent = api_send(a, b.wid, "hello B")
    tick()
    assert b_read(b, sent)
    assert a_status(a, sent) == OutgoingStatus.READ
    statuses = [
        body["status"]
        for body in a.notifications.filter(type_webhook="outgoingMessageStatus")
        .order_by("receipt_id")
        .values_list("body", flat=True)
    ]
    assert statuses == ["sent", "delivered", "read"]


@pytest.mark.parametrize("also_readed", [False, True], ids=["on-reply", "on-reply-wins-over-readed"])
def test_mark_incoming_messages_readed_on_reply_waits_for_the_reply(also_readed: bool) -> None:
    a, b = pair()
    set_flags(b, markIncomingMessagesReadedOnReply=True, markIncomingMessagesReaded=also_readed)
    sent = api_send(a, b.wid, "hello B")
    tick()
    assert not b_read(b, sent)
    assert a_status(a, sent) == OutgoingStatus.DELIVERED
    api_send(b, a.wid, "got it")
    assert b_read(b, sent)
    assert a_status(a, sent) == OutgoingStatus.READ
