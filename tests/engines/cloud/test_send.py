"""Sending through the queue to the fake Graph API: every kind of message in Meta's
shape, media by upload, Meta's refusals (131047 window, 131056 / 130429 / 5xx
retried) and Relay's own limits before Meta has to refuse."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rest_framework.test import APIClient

from engines.cloud.inbound import our_id
from engines.cloud.models import CloudMessage
from instances import services
from instances.models import Instance
from messaging import services as messaging
from messaging.models import OutgoingMessage, SendAttempt
from tests.conftest import method_url
from tests.engines.cloud.conftest import PHONE_NUMBER_ID, post_webhook, text_message
from tests.engines.cloud.fakegraph import FakeGraph

PEER = "16505551234@c.us"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture(autouse=True)
def _no_pacing(settings: Any, cloud_instance: Instance) -> None:
    # Pacing has its own tests; elsewhere several messages go to one user at once,
    # and the queue's own delay (GREEN-API's delaySendMessagesMilliseconds) is off.
    settings.CLOUD_API_RECIPIENT_INTERVAL_SECONDS = 0
    services.update_settings(cloud_instance, {"delaySendMessagesMilliseconds": 0})


def send(api_client: APIClient, instance: Instance, method: str, body: dict[str, Any],
         capture: Any) -> OutgoingMessage:
    with capture(execute=True):
        r = api_client.post(method_url(instance, method), body, format="json")
    assert r.status_code == 200, r.content
    return OutgoingMessage.objects.get(instance=instance, id_message=r.json()["idMessage"])


def test_text_with_preview(api_client: APIClient, cloud_instance: Instance, graph: FakeGraph,
                           django_capture_on_commit_callbacks: Any) -> None:
    message = send(api_client, cloud_instance, "sendMessage",
                   {"chatId": PEER, "message": "see https://example.com", "linkPreview": True},
                   django_capture_on_commit_callbacks)
    assert message.status == "sent"
    [sent] = graph.sent
    assert sent.phone_number_id == PHONE_NUMBER_ID
    assert sent.body == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
        "type": "text", "text": {"body": "see https://example.com", "preview_url": True},
    }
    assert CloudMessage.objects.get(instance=cloud_instance, id_message=message.id_message).wamid.startswith("wamid.")


def test_a_reply_quotes_metas_id(api_client: APIClient, client: Any, cloud_instance: Instance, graph: FakeGraph,
                                 django_capture_on_commit_callbacks: Any) -> None:
    post_webhook(client, cloud_instance, text_message("wamid.QUESTION", "question?"))
    send(api_client, cloud_instance, "sendMessage",
         {"chatId": PEER, "message": "answer", "quotedMessageId": our_id("wamid.QUESTION")},
         django_capture_on_commit_callbacks)
    assert graph.messages()[-1]["context"] == {"message_id": "wamid.QUESTION"}


def test_a_reaction(api_client: APIClient, client: Any, cloud_instance: Instance, graph: FakeGraph,
                    django_capture_on_commit_callbacks: Any) -> None:
    post_webhook(client, cloud_instance, text_message("wamid.Q", "nice?"))
    send(api_client, cloud_instance, "sendReaction",
         {"chatId": PEER, "idMessage": our_id("wamid.Q"), "reaction": "👍"}, django_capture_on_commit_callbacks)
    assert graph.messages()[-1]["reaction"] == {"message_id": "wamid.Q", "emoji": "👍"}


def test_a_file_is_uploaded_then_sent_by_id(api_client: APIClient, cloud_instance: Instance, graph: FakeGraph,
                                            django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = api_client.post(
            method_url(cloud_instance, "sendFileByUpload"),
            {"chatId": PEER, "caption": "a dot", "file": io.BytesIO(PNG)},
            format="multipart",
        )
    assert r.status_code == 200, r.content
    [(media_id, (content, mime, _))] = graph.uploads.items()
    assert content == PNG and mime == "image/png"
    assert graph.messages()[-1]["image"] == {"id": media_id, "caption": "a dot"}
    assert OutgoingMessage.objects.get(id_message=r.json()["idMessage"]).status == "sent"


def test_a_document_keeps_its_file_name(api_client: APIClient, cloud_instance: Instance, graph: FakeGraph,
                                        django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        r = api_client.post(
            method_url(cloud_instance, "sendFileByUpload"),
            {"chatId": PEER, "fileName": "report.pdf", "file": io.BytesIO(b"%PDF-1.4\n%%EOF\n")},
            format="multipart",
        )
    assert r.status_code == 200, r.content
    body = graph.messages()[-1]
    assert body["type"] == "document" and body["document"]["filename"] == "report.pdf"


@pytest.mark.parametrize(
    ("method", "request_body", "expected"),
    [
        ("sendLocation", {"chatId": PEER, "latitude": 37.48, "longitude": -122.14, "nameLocation": "HQ", "address": "1 Way"},
         {"type": "location", "location": {"latitude": 37.48, "longitude": -122.14, "name": "HQ", "address": "1 Way"}}),
        ("sendContact", {"chatId": PEER, "contact": {"phoneContact": 15550101, "firstName": "Ann", "lastName": "Lee", "company": "Acme"}},
         {"type": "contacts", "contacts": [{
             "name": {"formatted_name": "Ann Lee", "first_name": "Ann", "last_name": "Lee"},
             "phones": [{"phone": "+15550101", "wa_id": "15550101", "type": "CELL"}], "org": {"company": "Acme"}}]}),
        ("sendInteractiveButtonsReply", {"chatId": PEER, "header": "Hi", "body": "Pick one", "footer": "f",
                                         "buttons": [{"buttonId": "1", "buttonText": "Yes"}, {"buttonId": "2", "buttonText": "No"}]},
         {"type": "interactive", "interactive": {
             "type": "button", "body": {"text": "Pick one"}, "header": {"type": "text", "text": "Hi"},
             "footer": {"text": "f"}, "action": {"buttons": [
                 {"type": "reply", "reply": {"id": "1", "title": "Yes"}},
                 {"type": "reply", "reply": {"id": "2", "title": "No"}}]}}}),
        ("sendListMessage", {"chatId": PEER, "message": "Menu", "title": "T", "buttonText": "Open",
                             "sections": [{"title": "S", "rows": [{"title": "A", "rowId": "a", "description": "d"}]}]},
         {"type": "interactive", "interactive": {
             "type": "list", "body": {"text": "Menu"}, "header": {"type": "text", "text": "T"},
             "action": {"button": "Open", "sections": [{"title": "S", "rows": [{"id": "a", "title": "A", "description": "d"}]}]}}}),
        ("sendTemplate", {"chatId": PEER, "name": "order_update", "languageCode": "en_US",
                          "params": [{"default": "Ann"}, {"default": "#1234"}]},
         {"type": "template", "template": {"name": "order_update", "language": {"code": "en_US"}, "components": [
             {"type": "body", "parameters": [{"type": "text", "text": "Ann"}, {"type": "text", "text": "#1234"}]}]}}),
        ("sendTemplate", {"chatId": PEER, "name": "hello_world", "languageCode": "en_US",
                          "components": [{"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.example/a.png"}}]}]},
         {"type": "template", "template": {"name": "hello_world", "language": {"code": "en_US"}, "components": [
             {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.example/a.png"}}]}]}}),
    ],
)
def test_each_kind_goes_in_metas_shape(api_client: APIClient, cloud_instance: Instance, graph: FakeGraph,
                                       django_capture_on_commit_callbacks: Any, method: str,
                                       request_body: dict[str, Any], expected: dict[str, Any]) -> None:
    message = send(api_client, cloud_instance, method, request_body, django_capture_on_commit_callbacks)
    assert message.status == "sent", message.description
    body = graph.messages()[-1]
    assert {k: v for k, v in body.items() if k not in ("messaging_product", "recipient_type", "to")} == expected


def test_outside_the_24h_window_it_fails_saying_a_template_is_needed(
    api_client: APIClient, cloud_instance: Instance, graph: FakeGraph, django_capture_on_commit_callbacks: Any
) -> None:
    graph.errors = [(400, 131047)]
    message = send(api_client, cloud_instance, "sendMessage", {"chatId": PEER, "message": "late"},
                   django_capture_on_commit_callbacks)
    assert message.status == "failed"
    assert "131047" in message.description and "template" in message.description and "sendTemplate" in message.description


@pytest.mark.parametrize(("status", "code"), [(400, 131056), (400, 130429), (500, 131000), (503, 0)])
def test_throttling_and_outages_are_retried(api_client: APIClient, cloud_instance: Instance, graph: FakeGraph,
                                            django_capture_on_commit_callbacks: Any, status: int, code: int) -> None:
    graph.errors = [(status, code)]
    message = send(api_client, cloud_instance, "sendMessage", {"chatId": PEER, "message": "retry me"},
                   django_capture_on_commit_callbacks)
    message.refresh_from_db()
    assert message.status == "queued"  # back at the queue head; the drain task retries
    assert list(SendAttempt.objects.filter(message_id=message.pk).values_list("outcome", flat=True)) == ["error"]
    messaging.drain_queue(cloud_instance.pk, "test-worker")
    message.refresh_from_db()
    assert message.status == "sent"
    assert [b["text"]["body"] for b in graph.messages()] == ["retry me"]


def test_a_retry_of_a_message_meta_already_took_sends_nothing(
    api_client: APIClient, cloud_instance: Instance, graph: FakeGraph, django_capture_on_commit_callbacks: Any
) -> None:
    message = send(api_client, cloud_instance, "sendMessage", {"chatId": PEER, "message": "once"},
                   django_capture_on_commit_callbacks)
    # The worker crashed after Meta's answer, before recording it: the row is re-queued.
    OutgoingMessage.objects.filter(pk=message.pk).update(status="queued")
    messaging.drain_queue(cloud_instance.pk, "test-worker")
    message.refresh_from_db()
    assert message.status == "sent"
    assert len(graph.messages()) == 1


def test_one_user_gets_at_most_one_message_per_interval(
    settings: Any, api_client: APIClient, cloud_instance: Instance, graph: FakeGraph,
    django_capture_on_commit_callbacks: Any
) -> None:
    settings.CLOUD_API_RECIPIENT_INTERVAL_SECONDS = 6
    first = send(api_client, cloud_instance, "sendMessage", {"chatId": PEER, "message": "one"}, django_capture_on_commit_callbacks)
    second = send(api_client, cloud_instance, "sendMessage", {"chatId": PEER, "message": "two"}, django_capture_on_commit_callbacks)
    other = send(api_client, cloud_instance, "sendMessage", {"chatId": "16505550000@c.us", "message": "other user"},
                 django_capture_on_commit_callbacks)
    first.refresh_from_db(), second.refresh_from_db(), other.refresh_from_db()
    assert (first.status, second.status) == ("sent", "queued")  # Meta was never asked to refuse it
    assert [b["text"]["body"] for b in graph.messages()] == ["one"]
    assert other.status == "queued"  # the queue keeps its order behind the paced one
    # Six seconds later (here: the interval's end moved to now), both go.
    CloudMessage.objects.filter(instance=cloud_instance).update(created_at=first.created_at.replace(year=2000))
    messaging.drain_queue(cloud_instance.pk, "test-worker")
    assert [b["text"]["body"] for b in graph.messages()] == ["one", "two", "other user"]


def test_the_number_never_sends_more_than_its_cap_per_second(
    settings: Any, api_client: APIClient, cloud_instance: Instance, graph: FakeGraph,
    django_capture_on_commit_callbacks: Any
) -> None:
    settings.CLOUD_API_MESSAGES_PER_SECOND = 5
    with django_capture_on_commit_callbacks(execute=False):  # queue all, then one drain sends them as a batch
        for n in range(12):
            r = api_client.post(method_url(cloud_instance, "sendMessage"),
                                {"chatId": f"1650555{n:04d}@c.us", "message": f"m{n}"}, format="json")
            assert r.status_code == 200
    messaging.drain_queue(cloud_instance.pk, "test-worker")
    times = [s.at for s in graph.sent]
    assert len(times) == 12
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= 5


def test_methods_the_cloud_api_cannot_do_answer_400_naming_the_engine(
    api_client: APIClient, cloud_instance: Instance, graph: FakeGraph
) -> None:
    for method, body in [("sendPoll", {"chatId": PEER, "message": "q", "options": [{"optionName": "a"}, {"optionName": "b"}]}),
                         ("checkWhatsapp", {"phoneNumber": 16505551234}),
                         ("deleteMessage", {"chatId": PEER, "idMessage": "X"})]:
        r = api_client.post(method_url(cloud_instance, method), body, format="json")
        assert r.status_code == 400, method
        assert "cloud engine" in r.content.decode()
    assert graph.sent == []
