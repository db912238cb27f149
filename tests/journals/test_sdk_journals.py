"""The official GREEN-API Python SDK drives the journal, read-mark, service and
contact methods of a live server (uvicorn + the real ASGI stack)."""

from __future__ import annotations

from typing import Any

import pytest
from whatsapp_api_client_python import API

from engines.events import CallEvent
from instances.models import Instance
from instances.runner import Runner
from journals.services import ingest_event
from messaging.models import OutgoingMessage
from tests.conftest import LiveServer
from tests.factories import make_instance


def sdk(live_asgi: LiveServer, instance: Instance) -> API.GreenAPI:
    return API.GreenAPI(str(instance.id), instance.api_token, host=live_asgi.url, media=live_asgi.url)


def ok(response: Any) -> Any:
    assert response.code == 200, response.error
    return response.data


@pytest.fixture
def pair(live_asgi: LiveServer) -> tuple[Instance, Instance]:
    return make_instance(authorized=True, phone="79002220001"), make_instance(authorized=True, phone="79002220002")


def test_sdk_drives_journals_marks_service_and_contacts(
    live_asgi: LiveServer, pair: tuple[Instance, Instance], settings: Any
) -> None:
    settings.RELAY_MEDIA_URL = live_asgi.url
    me, peer = pair
    client, other = sdk(live_asgi, me), sdk(live_asgi, peer)
    runner = Runner()
    question = ok(other.sending.sendMessage(me.wid, "Are you there?"))["idMessage"]
    runner.tick()
    runner.tick()
    answer = ok(client.sending.sendMessage(peer.wid, "Yes!", quotedMessageId=question))["idMessage"]
    runner.tick()
    from django.utils import timezone

    ingest_event(me, CallEvent(id_call="CALL1", chat_id=peer.wid, status="offer", timestamp=timezone.now()))

    # journals.*
    history = ok(client.journals.getChatHistory(peer.wid, 10))
    assert [m["idMessage"] for m in history] == [answer, question]
    assert history[0]["typeMessage"] == "quotedMessage"
    assert history[0]["quotedMessage"]["stanzaId"] == question
    assert ok(client.journals.getChatHistory(peer.wid))[1]["textMessage"] == "Are you there?"
    assert ok(client.journals.getMessage(peer.wid, question))["senderId"] == peer.wid
    assert [m["idMessage"] for m in ok(client.journals.lastIncomingMessages(60))] == [question]
    assert [m["idMessage"] for m in ok(client.journals.lastOutgoingMessages())] == [answer]
    assert ok(client.journals.lastIncomingCalls())[0]["idMessage"] == "CALL1"
    assert ok(client.journals.lastOutgoingCalls(30)) == []

    # marking.readChat: the peer sees its message read.
    assert ok(client.marking.readChat(peer.wid)) == {"setRead": True}
    assert ok(client.marking.readChat(peer.wid, question)) == {"setRead": True}
    assert OutgoingMessage.objects.get(instance=peer, id_message=question).status == "read"

    # serviceMethods.*
    service = client.serviceMethods
    assert ok(service.checkWhatsapp(int(peer.phone))) == {
        "existsWhatsapp": True,
        "chatId": peer.wid,
        "phoneNumber": int(peer.phone),
        "fromCache": False,
    }
    assert ok(service.checkWhatsapp(int(peer.phone)))["fromCache"] is True
    assert ok(service.checkWhatsapp(chatId=peer.wid, force=True))["fromCache"] is False
    assert ok(service.checkWhatsapp(chatId="79009999999@c.us")) == {"existsWhatsapp": False, "fromCache": False}
    avatar = ok(service.getAvatar(peer.wid))
    assert avatar["existsWhatsapp"] is True and avatar["urlAvatar"].startswith(live_asgi.url)
    assert ok(service.getContactInfo(peer.wid))["chatId"] == peer.wid
    edited = ok(service.editMessage(peer.wid, answer, "Yes, I am!"))["idMessage"]
    assert edited != answer
    archived = service.archiveChat(peer.wid)
    assert archived.code == 200
    assert ok(service.getChats())[0] == {
        "archive": True,
        "id": peer.wid,
        "ephemeralExpiration": 0,
        "ephemeralSettingTimestamp": 0,
        "name": "Test Phone",
        "type": "user",
    }
    assert service.unarchiveChat(peer.wid).code == 200
    assert ok(service.setDisappearingChat(peer.wid, 604800)) == {
        "chatId": peer.wid,
        "disappearingMessagesInChat": True,
        "ephemeralExpiration": 604800,
    }
    assert service.deleteMessage(peer.wid, answer).code == 200
    assert service.deleteMessage(peer.wid, question, onlySenderDelete=True).code == 200
    history = ok(client.journals.getChatHistory(peer.wid))
    assert [(m["idMessage"], m.get("isDeleted"), m.get("isEdited")) for m in history] == [(answer, True, True)]

    # contacts.*
    contacts = client.contacts
    assert ok(contacts.addContact(peer.wid, "Peer", "Two")) == {"addContact": True}
    assert ok(service.getContacts()) == [{"id": peer.wid, "name": "Test Phone", "contactName": "Peer Two", "type": "user"}]
    assert ok(service.getContacts(group=True, count=5)) == []
    assert ok(contacts.editContact(peer.wid, "Pal")) == {"editContact": True}
    assert ok(service.getContacts())[0]["contactName"] == "Pal"
    assert ok(contacts.deleteContact(peer.wid)) == {"deleteContact": True}
    assert ok(service.getContacts()) == []

    # The peer's side saw the edit and the revoke.
    runner.tick()
    (theirs,) = [m for m in ok(other.journals.getChatHistory(me.wid)) if m["idMessage"] == answer]
    assert (theirs["textMessage"], theirs["isEdited"], theirs["isDeleted"]) == ("Yes, I am!", True, True)
