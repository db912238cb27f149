"""Meta's webhooks at /engines/cloud/webhook/{idInstance}: the verification
handshake, signed payloads only, each message recorded once, statuses of our
messages, received media stored and served, BSUID senders."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from engines.cloud.inbound import lid_for, our_id
from engines.cloud.models import CloudMessage, CloudUser
from instances import services
from instances.models import Instance
from journals.models import JournalMessage, Notification
from messaging.models import OutgoingMessage
from tests.engines.cloud.conftest import VERIFY_TOKEN, envelope, post_webhook, status, text_message
from tests.engines.cloud.fakegraph import FakeGraph

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def notifying(cloud_instance: Instance) -> Instance:
    services.update_settings(
        cloud_instance, {"incomingWebhook": True, "outgoingWebhook": True, "outgoingAPIMessageWebhook": True}
    )
    return cloud_instance


def bodies(instance: Instance, type_webhook: str) -> list[dict[str, Any]]:
    return list(
        Notification.objects.filter(instance=instance, type_webhook=type_webhook).order_by("id").values_list("body", flat=True)
    )


# --- Verification handshake ---------------------------------------------------------


def test_the_handshake_echoes_the_challenge(client: Client, cloud_instance: Instance) -> None:
    r = client.get(
        f"/engines/cloud/webhook/{cloud_instance.id}",
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert r.status_code == 200 and r.content == b"1158201444"


@pytest.mark.parametrize(("mode", "token"), [("subscribe", "wrong"), ("unsubscribe", VERIFY_TOKEN), ("subscribe", "")])
def test_the_handshake_refuses_a_wrong_token(client: Client, cloud_instance: Instance, mode: str, token: str) -> None:
    r = client.get(
        f"/engines/cloud/webhook/{cloud_instance.id}", {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": "1"}
    )
    assert r.status_code == 403


def test_an_unknown_or_foreign_instance_is_404(client: Client, cloud_instance: Instance, authorized_instance: Instance) -> None:
    assert client.get("/engines/cloud/webhook/1").status_code == 404
    assert post_webhook(client, authorized_instance, text_message("wamid.X", "hi")).status_code == 404


# --- Signatures -------------------------------------------------------------------------


def test_a_signed_message_becomes_incoming_message_received(client: Client, notifying: Instance) -> None:
    r = post_webhook(client, notifying, text_message("wamid.IN1", "Hello there"))
    assert r.status_code == 200
    [body] = bodies(notifying, "incomingMessageReceived")
    assert body["idMessage"] == our_id("wamid.IN1")
    assert body["senderData"]["chatId"] == "16505551234@c.us"
    assert body["senderData"]["senderName"] == "Kerry Fisher"
    assert body["messageData"] == {"typeMessage": "textMessage", "textMessageData": {"textMessage": "Hello there"}}
    assert body["timestamp"] == 1765000000


@pytest.mark.parametrize(("signature", "code"), [("", 401), ("sha256=" + "0" * 64, 403), ("md5=abc", 403)])
def test_unsigned_or_badly_signed_posts_record_nothing(client: Client, notifying: Instance, signature: str, code: int) -> None:
    r = post_webhook(client, notifying, text_message("wamid.IN1", "forged"), signature=signature)
    assert r.status_code == code
    assert not JournalMessage.objects.filter(instance=notifying).exists()
    assert not CloudMessage.objects.filter(instance=notifying).exists()
    assert bodies(notifying, "incomingMessageReceived") == []


def test_a_post_signed_with_another_secret_is_refused(client: Client, notifying: Instance) -> None:
    r = post_webhook(client, notifying, text_message("wamid.IN1", "forged"), secret="someone-elses-secret")
    assert r.status_code == 403
    assert not JournalMessage.objects.filter(instance=notifying).exists()


def test_the_same_message_delivered_twice_is_recorded_once(client: Client, notifying: Instance) -> None:
    for _ in range(3):
        assert post_webhook(client, notifying, text_message("wamid.DUP", "once")).status_code == 200
    assert len(bodies(notifying, "incomingMessageReceived")) == 1
    assert JournalMessage.objects.filter(instance=notifying).count() == 1


# --- Statuses of our messages ---------------------------------------------------------


def sent_message(client: Client, instance: Instance, django_capture_on_commit_callbacks: Any) -> tuple[str, str]:
    """Send a text through the API and the queue; (our idMessage, Meta's wamid)."""
    from tests.conftest import method_url

    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(method_url(instance, "sendMessage"), {"chatId": "16505551234@c.us", "message": "hi"},
                        content_type="application/json")
    id_message = r.json()["idMessage"]
    return id_message, CloudMessage.objects.get(instance=instance, id_message=id_message).wamid


def test_delivered_and_read_become_outgoing_message_status(
    client: Client, notifying: Instance, graph: FakeGraph, django_capture_on_commit_callbacks: Any
) -> None:
    id_message, wamid = sent_message(client, notifying, django_capture_on_commit_callbacks)
    post_webhook(client, notifying, status(wamid, "sent"))
    post_webhook(client, notifying, status(wamid, "delivered"))
    post_webhook(client, notifying, status(wamid, "read"))
    post_webhook(client, notifying, status(wamid, "read"))  # re-delivered
    assert OutgoingMessage.objects.get(id_message=id_message).status == "read"
    statuses = [(b["idMessage"], b["status"]) for b in bodies(notifying, "outgoingMessageStatus")]
    assert statuses == [(id_message, "sent"), (id_message, "delivered"), (id_message, "read")]


def test_failed_carries_metas_code_and_title(
    client: Client, notifying: Instance, graph: FakeGraph, django_capture_on_commit_callbacks: Any
) -> None:
    id_message, wamid = sent_message(client, notifying, django_capture_on_commit_callbacks)
    errors = [{"code": 131026, "title": "Message undeliverable", "error_data": {"details": "receiver is incapable"}}]
    post_webhook(client, notifying, status(wamid, "failed", errors=errors))
    message = OutgoingMessage.objects.get(id_message=id_message)
    assert message.status == "failed"
    assert message.description == "(131026) Message undeliverable: receiver is incapable"
    last = bodies(notifying, "outgoingMessageStatus")[-1]
    assert last["status"] == "failed" and "131026" in last["description"]


def test_a_status_for_a_message_not_ours_is_ignored(client: Client, notifying: Instance) -> None:
    assert post_webhook(client, notifying, status("wamid.UNKNOWN", "read")).status_code == 200
    assert bodies(notifying, "outgoingMessageStatus") == []


# --- Kinds of messages --------------------------------------------------------------


def message(wamid: str, kind: str, body: Any, **extra: Any) -> dict[str, Any]:
    return envelope({
        "contacts": [{"profile": {"name": "Kerry"}, "wa_id": "16505551234"}],
        "messages": [{"from": "16505551234", "id": wamid, "timestamp": "1765000000", "type": kind, kind: body, **extra}],
    })


def test_a_received_image_is_fetched_stored_and_downloadable(client: Client, notifying: Instance, graph: FakeGraph) -> None:
    graph.media["4490709327384033"] = (PNG, "image/png")
    post_webhook(client, notifying, message("wamid.IMG", "image", {
        "id": "4490709327384033", "mime_type": "image/png", "sha256": "x", "caption": "a dot",
    }))
    [body] = bodies(notifying, "incomingMessageReceived")
    data = body["messageData"]
    assert data["typeMessage"] == "imageMessage"
    assert data["fileMessageData"]["caption"] == "a dot" and data["fileMessageData"]["mimeType"] == "image/png"
    url = data["fileMessageData"]["downloadUrl"]
    served = client.get(url.split("://", 1)[1].split("/", 1)[1].join(["/", ""]))
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == PNG  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("location", {"latitude": 37.48, "longitude": -122.14, "name": "HQ", "address": "1 Hacker Way"},
         {"typeMessage": "locationMessage", "locationMessageData": {
             "nameLocation": "HQ", "address": "1 Hacker Way", "latitude": 37.48, "longitude": -122.14, "jpegThumbnail": ""}}),
        ("contacts", [{"name": {"formatted_name": "Ann Lee"}, "phones": [{"phone": "+1 555 0101", "wa_id": "15550101"}]}],
         {"typeMessage": "contactMessage", "contactMessageData": {
             "displayName": "Ann Lee", "vcard": "BEGIN:VCARD\nVERSION:3.0\nFN:Ann Lee\nitem1.TEL;waid=15550101:+1 555 0101\nEND:VCARD"}}),
        ("interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}},
         {"typeMessage": "buttonsResponseMessage", "buttonsResponseMessage": {
             "stanzaId": "", "selectedButtonId": "yes", "selectedButtonText": "Yes"}}),
        ("interactive", {"type": "list_reply", "list_reply": {"id": "r2", "title": "Row 2"}},
         {"typeMessage": "listResponseMessage", "listResponseMessage": {
             "stanzaId": "", "title": "Row 2", "listType": 1, "singleSelectReply": "r2"}}),
        ("button", {"payload": "STOP", "text": "Stop promotions"},
         {"typeMessage": "templateButtonsReplyMessage", "templateButtonReplyMessage": {
             "stanzaId": "", "selectedIndex": 0, "selectedId": "STOP", "selectedDisplayText": "Stop promotions"}}),
    ],
)
def test_other_kinds_arrive_in_green_api_shapes(client: Client, notifying: Instance, kind: str, body: Any,
                                                expected: dict[str, Any]) -> None:
    post_webhook(client, notifying, message("wamid.K", kind, body))
    [notification] = bodies(notifying, "incomingMessageReceived")
    assert notification["messageData"] == expected


def test_a_reply_and_a_reaction_name_the_message_they_answer(
    client: Client, notifying: Instance, graph: FakeGraph, django_capture_on_commit_callbacks: Any
) -> None:
    id_message, wamid = sent_message(client, notifying, django_capture_on_commit_callbacks)
    post_webhook(client, notifying, text_message("wamid.R1", "answer", context={"from": "15550100200", "id": wamid}))
    post_webhook(client, notifying, message("wamid.R2", "reaction", {"message_id": wamid, "emoji": "👍"}))
    reply, reaction = bodies(notifying, "incomingMessageReceived")
    quoted = {"stanzaId": id_message, "participant": "15550100200@c.us"}
    assert reply["messageData"] == {
        "typeMessage": "quotedMessage",
        "extendedTextMessageData": {"text": "answer", **quoted},
        "quotedMessage": quoted,
    }
    assert reaction["messageData"] == {
        "typeMessage": "reactionMessage", "extendedTextMessageData": {"text": "👍"}, "quotedMessage": quoted,
    }


# --- Business-scoped user ids ---------------------------------------------------------


def bsuid_message(wamid: str, text: str) -> dict[str, Any]:
    return envelope({
        "contacts": [{"profile": {"name": "Sam", "username": "@sam"}, "user_id": "US.13491208655302741918"}],
        "messages": [{"from_user_id": "US.13491208655302741918", "id": wamid, "timestamp": "1765000000",
                      "type": "text", "text": {"body": text}}],
    })


def test_a_bsuid_sender_gets_a_stable_lid_chat_and_replies_reach_it(
    client: Client, notifying: Instance, graph: FakeGraph, django_capture_on_commit_callbacks: Any
) -> None:
    from tests.conftest import method_url

    post_webhook(client, notifying, bsuid_message("wamid.B1", "hi, no phone"))
    post_webhook(client, notifying, bsuid_message("wamid.B2", "again"))
    first, second = bodies(notifying, "incomingMessageReceived")
    chat_id = first["senderData"]["chatId"]
    assert chat_id == second["senderData"]["chatId"] == lid_for("US.13491208655302741918")
    assert chat_id.endswith("@lid") and chat_id.split("@")[0].isdigit()
    assert CloudUser.objects.get(instance=notifying).username == "@sam"
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(method_url(notifying, "sendMessage"), {"chatId": chat_id, "message": "hello Sam"},
                        content_type="application/json")
    assert r.status_code == 200
    [sent] = graph.messages()
    assert sent["recipient"] == "US.13491208655302741918" and "to" not in sent
    assert OutgoingMessage.objects.get(id_message=r.json()["idMessage"]).status == "sent"


def test_a_window_failure_reported_later_says_a_template_is_needed(
    client: Client, notifying: Instance, graph: FakeGraph, django_capture_on_commit_callbacks: Any
) -> None:
    id_message, wamid = sent_message(client, notifying, django_capture_on_commit_callbacks)
    post_webhook(client, notifying, status(wamid, "failed", errors=[{"code": 131047, "title": "Re-engagement message"}]))
    message = OutgoingMessage.objects.get(id_message=id_message)
    assert message.status == "failed"
    assert message.description.startswith("(131047) Re-engagement message") and "sendTemplate" in message.description


def test_a_change_for_another_number_of_the_app_reaches_its_instance(
    client: Client, notifying: Instance, graph: FakeGraph
) -> None:
    from tests.engines.cloud.conftest import CREDENTIALS, TOKEN

    graph.add_number("200200200200200", TOKEN, "+1 555-010-0300")
    other = services.create_instance(account=notifying.account, engine="cloud",
                                     engine_options={**CREDENTIALS, "phoneNumberId": "200200200200200"})
    payload = envelope({
        "contacts": [{"profile": {"name": "Kerry"}, "wa_id": "16505551234"}],
        "messages": [{"from": "16505551234", "id": "wamid.OTHER", "timestamp": "1765000000", "type": "text",
                      "text": {"body": "to the second number"}}],
    }, phone_number_id="200200200200200")
    assert post_webhook(client, notifying, payload).status_code == 200  # Meta posts to the app's one URL
    assert not JournalMessage.objects.filter(instance=notifying).exists()
    assert JournalMessage.objects.get(instance=other).chat_id == "16505551234@c.us"
