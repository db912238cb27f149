"""Chats (journal + send queue merged, ticks, media, polls), notification queue,
webhook log and usage charts — each with a helpful empty state."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard import chats, usage
from instances.models import Instance
from journals.models import Direction, JournalMessage, Notification, WebhookAttempt
from messaging.models import OutgoingMessage, OutgoingStatus

CHAT = "79005550101@c.us"


def incoming(instance: Instance, id_message: str, data: dict[str, object], **kwargs: object) -> JournalMessage:
    return JournalMessage.objects.create(
        instance=instance, direction=Direction.INCOMING, chat_id=CHAT, id_message=id_message,
        sender=CHAT, sender_name="Bob", type_message=str(data["typeMessage"]), message_data=data, **kwargs,
    )


def outgoing(instance: Instance, text: str, status: str, **kwargs: object) -> OutgoingMessage:
    return OutgoingMessage.objects.create(
        instance=instance, chat_id=CHAT, method="sendMessage", type_message="textMessage",
        request={"chatId": CHAT, "message": text}, payload={"message": text}, status=status, **kwargs,
    )


def test_empty_chats_explain_what_to_do(owner_client: Client, instance: Instance, authorized_instance: Instance) -> None:
    body = owner_client.get(reverse("dashboard:chats", args=[instance.id])).content.decode()
    assert "No chats yet" in body and "Link a WhatsApp account" in body
    body = owner_client.get(reverse("dashboard:chats", args=[authorized_instance.id])).content.decode()
    assert "API console" in body and "Sandbox" in body


def test_chat_list_and_view_merge_journal_and_api_messages(owner_client: Client, authorized_instance: Instance) -> None:
    now = timezone.now()
    incoming(authorized_instance, "IN1", {"typeMessage": "textMessage", "textMessageData": {"textMessage": "Hi there"}},
             timestamp=now - timedelta(minutes=3))
    outgoing(authorized_instance, "Queued one", OutgoingStatus.QUEUED, created_at=now - timedelta(minutes=2))
    outgoing(authorized_instance, "Sent one", OutgoingStatus.SENT, created_at=now - timedelta(minutes=2), sent_at=now)
    outgoing(authorized_instance, "Delivered one", OutgoingStatus.DELIVERED, created_at=now - timedelta(minutes=1))
    read = outgoing(authorized_instance, "Read one", OutgoingStatus.READ, created_at=now)
    failed = outgoing(authorized_instance, "Lost one", OutgoingStatus.NO_ACCOUNT, description="no WhatsApp account")

    listing = owner_client.get(reverse("dashboard:chats", args=[authorized_instance.id])).content.decode()
    assert "Bob" in listing and "6 messages" in listing
    body = owner_client.get(reverse("dashboard:chat", args=[authorized_instance.id, CHAT])).content.decode()
    assert "Hi there" in body and "Read one" in body
    assert 'class="ticks ticks-sent"' in body and "✓</span>" in body
    assert 'class="ticks ticks-delivered"' in body
    assert f'data-id-message="{read.id_message}"' in body and 'class="ticks ticks-read"' in body
    assert 'data-status="queued"' in body
    assert f'data-id-message="{failed.id_message}"' in body and "no WhatsApp account" in body
    # Live refresh: the htmx poll gets just the bubbles.
    partial = owner_client.get(reverse("dashboard:chat", args=[authorized_instance.id, CHAT]), HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and "Read one" in partial.content.decode()


def test_media_previews(owner_client: Client, authorized_instance: Instance) -> None:
    incoming(authorized_instance, "IMG", {
        "typeMessage": "imageMessage",
        "fileMessageData": {"downloadUrl": "https://files.example/p.jpg", "caption": "Look", "fileName": "p.jpg",
                            "jpegThumbnail": "QUJD", "mimeType": "image/jpeg"},
    })
    incoming(authorized_instance, "DOC", {
        "typeMessage": "documentMessage",
        "fileMessageData": {"downloadUrl": "https://files.example/r.pdf", "fileName": "report.pdf", "mimeType": "application/pdf"},
    })
    body = owner_client.get(reverse("dashboard:chat", args=[authorized_instance.id, CHAT])).content.decode()
    assert 'src="data:image/jpeg;base64,QUJD"' in body and "Look" in body
    assert 'href="https://files.example/r.pdf"' in body and "report.pdf" in body


def test_poll_tallies_count_each_voters_latest_choice(owner_client: Client, authorized_instance: Instance) -> None:
    now = timezone.now()
    poll = OutgoingMessage.objects.create(
        instance=authorized_instance, chat_id=CHAT, method="sendPoll", type_message="pollMessage",
        request={"chatId": CHAT, "message": "Lunch?", "options": [{"optionName": "Pizza"}, {"optionName": "Sushi"}]},
        status=OutgoingStatus.READ,
    )

    def vote(n: int, voter: str, choice: str) -> None:
        JournalMessage.objects.create(
            instance=authorized_instance, direction=Direction.INCOMING, chat_id=CHAT, id_message=f"V{n}",
            sender=voter, type_message="pollUpdateMessage", timestamp=now + timedelta(seconds=n),
            message_data={"typeMessage": "pollUpdateMessage", "pollMessageData": {
                "stanzaId": poll.id_message, "name": "Lunch?",
                "votes": [{"optionName": o, "optionVoters": [voter] if o == choice else []} for o in ("Pizza", "Sushi")],
            }},
        )

    vote(1, "1@c.us", "Pizza")
    vote(2, "2@c.us", "Pizza")
    vote(3, "1@c.us", "Sushi")  # changed their mind
    bubbles = chats.chat_messages(authorized_instance, CHAT)
    assert len(bubbles) == 1 and bubbles[0].poll is not None
    assert bubbles[0].poll.options == [("Pizza", 1), ("Sushi", 1)]
    body = owner_client.get(reverse("dashboard:chat", args=[authorized_instance.id, CHAT])).content.decode()
    assert "Lunch?" in body and "2 votes" in body


def test_notifications_page(owner_client: Client, instance: Instance) -> None:
    url = reverse("dashboard:notifications", args=[instance.id])
    Notification.objects.filter(instance=instance).delete()
    assert "The queue is empty" in owner_client.get(url).content.decode()
    Notification.objects.create(instance=instance, receipt_id=7, type_webhook="incomingMessageReceived", body={"x": 1})
    body = owner_client.get(url).content.decode()
    assert "incomingMessageReceived" in body and "<code>7</code>" in body
    assert "Nothing done" in owner_client.get(url + "?state=done").content.decode()


def test_webhook_log(owner_client: Client, instance: Instance) -> None:
    url = reverse("dashboard:webhooks", args=[instance.id])
    assert "No webhook deliveries yet" in owner_client.get(url).content.decode()
    note = Notification.objects.create(instance=instance, receipt_id=99, type_webhook="stateInstanceChanged", body={})
    WebhookAttempt.objects.create(notification=note, instance=instance, receipt_id=99, attempt=1,
                                  url="https://hooks.example/x", ok=True, status_code=200, latency_ms=42)
    WebhookAttempt.objects.create(notification=note, instance=instance, receipt_id=99, attempt=2,
                                  url="https://hooks.example/x", ok=False, status_code=None, error="timed out")
    body = owner_client.get(url).content.decode()
    assert "42 ms" in body and "timed out" in body and "status-bad" in body


def test_usage_charts_are_server_rendered_svg(owner_client: Client, authorized_instance: Instance) -> None:
    now = timezone.now()
    outgoing(authorized_instance, "a", OutgoingStatus.DELIVERED, sent_at=now - timedelta(seconds=5), delivered_at=now)
    incoming(authorized_instance, "IN9", {"typeMessage": "textMessage", "textMessageData": {"textMessage": "x"}})
    series = {s.title: s for s in usage.usage(authorized_instance)}
    assert series["Messages sent"].total == 1
    assert series["Messages received"].total == 1
    latency = [v for _, v in series["Average delivery time"].points if v is not None]
    assert latency == [5.0]
    assert not series["Webhook success rate"].has_data
    body = owner_client.get(reverse("dashboard:usage", args=[authorized_instance.id])).content.decode()
    assert body.count('<svg class="chart"') == 4
    assert 'role="img"' in body and "<title>" in body
    assert "no data yet" in body  # webhook chart explains itself


def test_chart_escapes_and_handles_empty_series() -> None:
    today = timezone.now().date()
    chart = usage.bar_chart(usage.Series("<b>x</b>", "messages", [(today, 0.0)]))
    assert "<b>" not in chart and "&lt;b&gt;" in chart
