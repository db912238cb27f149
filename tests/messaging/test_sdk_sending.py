"""The official GREEN-API Python SDK drives the send and queue methods of a live
server (uvicorn + the real ASGI stack). Tasks run eagerly inside the request, so
the first message leaves at once and the rest wait for the pacing delay."""

from __future__ import annotations

import re

import pytest
from whatsapp_api_client_python import API

from engines.emulator.models import EmuMessage
from engines.emulator.transport import ensure_phone
from instances import services as instance_services
from instances.models import Instance
from messaging.models import OutgoingMessage, OutgoingStatus
from tests.conftest import LiveServer
from tests.factories import make_instance

RECIPIENT = "79001112233"
CHAT = f"{RECIPIENT}@c.us"
ID = re.compile(r"[0-9A-F]{16}")


@pytest.fixture
def paired(live_asgi: LiveServer) -> Instance:
    instance = make_instance(authorized=True)
    # A long delay: only the first message leaves, whatever the test's speed.
    instance_services.update_settings(instance, {"delaySendMessagesMilliseconds": 600_000})
    ensure_phone(RECIPIENT, "Recipient")
    return instance


def sdk(live_asgi: LiveServer, instance: Instance, token: str | None = None) -> API.GreenAPI:
    return API.GreenAPI(
        str(instance.id), token or instance.api_token, host=live_asgi.url, media=live_asgi.url
    )


def test_sdk_sends_every_json_method_and_reads_the_queue(live_asgi: LiveServer, paired: Instance) -> None:
    client = sdk(live_asgi, paired)
    sending = client.sending
    responses = {
        "sendMessage": sending.sendMessage(CHAT, "hello", typingTime=1000),
        "sendPoll": sending.sendPoll(
            CHAT, "Colour?", [{"optionName": "Red"}, {"optionName": "Blue"}], multipleAnswers=True
        ),
        "sendLocation": sending.sendLocation(
            CHAT, 55.7558, 37.6173, nameLocation="Office", address="1 Main St"
        ),
        "sendContact": sending.sendContact(CHAT, {"phoneContact": 79005554433, "firstName": "Ivan"}),
        "sendInteractiveButtons": sending.sendInteractiveButtons(
            CHAT,
            "Pick",
            [{"type": "url", "buttonId": "1", "buttonText": "Site", "url": "https://green-api.com"}],
            header="H",
            footer="F",
        ),
        "sendInteractiveButtonsReply": sending.sendInteractiveButtonsReply(
            CHAT, "Coming?", [{"buttonId": "1", "buttonText": "Yes"}]
        ),
        "sendButtons": sending.sendButtons(
            CHAT, "Old buttons", [{"buttonId": "1", "buttonText": "OK"}], footer="f"
        ),
        "sendTemplateButtons": sending.sendTemplateButtons(
            CHAT, "Template", [{"index": 1, "quickReplyButton": {"displayText": "OK", "id": "ok"}}]
        ),
        "sendListMessage": sending.sendListMessage(
            CHAT,
            "List",
            "Menu",
            [{"title": "S", "rows": [{"title": "Tea", "rowId": "tea"}]}],
            title="T",
            footer="F",
        ),
        "sendLink": sending.sendLink(CHAT, "https://green-api.com/en/docs/"),
    }
    for method, response in responses.items():
        assert response.code == 200, (method, response.error)
        assert isinstance(response.data, dict) and list(response.data) == ["idMessage"], method
        assert ID.fullmatch(response.data["idMessage"]), method
    ids = {method: r.data["idMessage"] for method, r in responses.items()}

    rows = list(OutgoingMessage.objects.filter(instance=paired).order_by("id"))
    assert [(m.id_message, m.method) for m in rows] == [(i, method) for method, i in ids.items()]
    assert [m.status for m in rows] == [OutgoingStatus.SENT] + [OutgoingStatus.QUEUED] * 9
    network = EmuMessage.objects.get(sender=paired.phone)
    assert (network.id_message, network.chat_id, network.payload) == (
        ids["sendMessage"],
        CHAT,
        {"message": "hello", "linkPreview": True, "typePreview": "small", "typingTime": 1000},
    )

    count = client.queues.getMessagesCount()
    assert (count.code, count.data) == (200, {"count": 9})
    queue = client.queues.showMessagesQueue()
    assert queue.code == 200
    assert [(item["messageID"], item["type"]) for item in queue.data] == [
        (i, m) for m, i in ids.items() if m != "sendMessage"
    ]
    assert queue.data[0]["body"] == {
        "chatId": CHAT,
        "message": "Colour?",
        "options": [{"optionName": "Red"}, {"optionName": "Blue"}],
        "multipleAnswers": True,
        "quotedMessageId": None,
        "typingTime": None,
    }

    cleared = client.queues.clearMessagesQueue()
    assert (cleared.code, cleared.data) == (200, {"isCleared": True})
    assert client.queues.getMessagesCount().data == {"count": 0}
    assert client.queues.showMessagesQueue().data == []
    assert list(OutgoingMessage.objects.filter(instance=paired).values_list("id_message", flat=True)) == [
        ids["sendMessage"]
    ]


def test_sdk_forwards_messages(live_asgi: LiveServer, paired: Instance) -> None:
    client = sdk(live_asgi, paired)
    ensure_phone("79004445566", "Target")
    first = client.sending.sendMessage(CHAT, "forward me").data["idMessage"]
    second = client.sending.sendLocation(CHAT, 1.5, 2.5).data["idMessage"]

    r = client.sending.forwardMessages("79004445566@c.us", CHAT, [second, first])
    assert r.code == 200, r.error
    assert list(r.data) == ["messages"]
    forwarded = r.data["messages"]
    assert len(forwarded) == 2 and all(ID.fullmatch(i) for i in forwarded)
    rows = OutgoingMessage.objects.filter(id_message__in=forwarded).order_by("id")
    assert [(m.id_message, m.type_message, m.payload["forwardedFrom"]) for m in rows] == [
        (forwarded[0], "locationMessage", second),
        (forwarded[1], "textMessage", first),
    ]
    queue = client.queues.showMessagesQueue().data
    assert queue[-1] == {
        "messagesIDs": forwarded,
        "type": "ForwardMessages",
        "body": {"chatId": "79004445566@c.us", "chatIdFrom": CHAT, "messages": [second, first]},
    }


def test_sdk_send_typing_gets_an_empty_200(live_asgi: LiveServer, paired: Instance) -> None:
    client = sdk(live_asgi, paired)
    for r in (
        client.serviceMethods.sendTyping(CHAT),
        client.serviceMethods.sendTyping(CHAT, typingTime=5000, typingType="recording"),
    ):
        assert r.code == 200, r.error
        assert r.data == "[]"  # the SDK's placeholder when the body is not JSON (it is empty)
    assert not OutgoingMessage.objects.exists()


def test_sdk_sees_validation_errors(live_asgi: LiveServer, paired: Instance) -> None:
    client = sdk(live_asgi, paired)
    checks = [
        (
            client.sending.sendPoll(CHAT, "Q", [{"optionName": "only"}]),
            "'options' must contain at least 2 items",
        ),
        (client.sending.sendLocation(CHAT, 91, 0), "'latitude' must be less than or equal to 90"),
        (
            client.sending.sendContact(CHAT, {"phoneContact": 79005554433}),
            "'contact' must contain at least one of [firstName, lastName, company]",
        ),
        (
            client.sending.sendMessage("79001112233@s.whatsapp.net", "x"),
            "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'",
        ),
        (
            client.serviceMethods.sendTyping(CHAT, typingTime=999),
            "'typingTime' must be larger than or equal to 1000",
        ),
        (
            client.sending.forwardMessages(CHAT, "79004445566@c.us", ["BAE5000000000000"]),
            "'messages' contains an unknown message id: BAE5000000000000",
        ),
    ]
    for response, detail in checks:
        assert response.code == 400
        assert response.error is not None
        assert f'"message": "Validation failed. Details: {detail}"' in response.error
    assert not OutgoingMessage.objects.exists()


def test_sdk_with_a_wrong_token_is_unauthorized(live_asgi: LiveServer, paired: Instance) -> None:
    client = sdk(live_asgi, paired, token="f" * 50)
    for r in (
        client.sending.sendMessage(CHAT, "x"),
        client.queues.showMessagesQueue(),
        client.queues.clearMessagesQueue(),
    ):
        assert r.code == 401
        assert r.error is not None and '"Unauthorized"' in r.error
    assert not OutgoingMessage.objects.exists()
