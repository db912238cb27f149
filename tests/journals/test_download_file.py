"""downloadFile: ``{"downloadUrl": …}`` for the file of a received or sent message."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from instances.models import Instance
from tests.conftest import LiveServer, method_url
from tests.journals.emulated import CONTACT_WID, Control, notifying_instance, take, tick


@pytest.fixture
def live(live_asgi: LiveServer, settings: Any) -> LiveServer:
    settings.RELAY_MEDIA_URL = live_asgi.url  # links point at the server under test
    return live_asgi


def download_file(live: LiveServer, instance: Instance, body: Any) -> httpx.Response:
    return httpx.post(f"{live.url}{method_url(instance, 'downloadFile')}", json=body, timeout=30)


def test_it_links_a_received_file(live: LiveServer) -> None:
    instance = notifying_instance()
    id_message = Control(live, instance).incoming("imageMessage", caption="pic")
    tick()
    webhook_url = take(live, instance)["messageData"]["fileMessageData"]["downloadUrl"]
    r = download_file(live, instance, {"chatId": CONTACT_WID, "idMessage": id_message})
    assert r.status_code == 200
    assert r.json() == {"downloadUrl": webhook_url}
    got = httpx.get(webhook_url, timeout=30)
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/jpeg"
    assert got.content[:2] == b"\xff\xd8"


def test_it_links_a_file_sent_from_the_phone(live: LiveServer) -> None:
    instance = notifying_instance()
    id_message = Control(live, instance).phone_sent("documentMessage", fileName="terms.pdf")
    tick()
    r = download_file(live, instance, {"chatId": CONTACT_WID, "idMessage": id_message})
    assert r.status_code == 200
    got = httpx.get(r.json()["downloadUrl"], timeout=30)
    assert got.content.startswith(b"%PDF")
    assert "terms.pdf" in got.headers["content-disposition"]


def test_it_links_a_file_sent_through_the_api(live: LiveServer) -> None:
    instance = notifying_instance()
    r = httpx.post(
        f"{live.url}{method_url(instance, 'sendFileByUpload')}",
        data={"chatId": CONTACT_WID, "caption": "notes"},
        files={"file": ("notes.txt", b"some notes", "text/plain")},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    sent = r.json()
    r = download_file(live, instance, {"chatId": CONTACT_WID, "idMessage": sent["idMessage"]})
    assert r.status_code == 200
    assert r.json() == {"downloadUrl": sent["urlFile"]}
    assert httpx.get(sent["urlFile"], timeout=30).content == b"some notes"


def test_unknown_or_fileless_messages_are_refused(live: LiveServer) -> None:
    instance = notifying_instance()
    text = Control(live, instance).incoming("textMessage", message="no file here")
    tick()
    for body in (
        {"chatId": CONTACT_WID, "idMessage": "NOSUCHMESSAGE"},
        {"chatId": CONTACT_WID, "idMessage": text},
        {"chatId": "79000000000@c.us", "idMessage": text},
    ):
        r = download_file(live, instance, body)
        assert r.status_code == 400
        assert set(r.json()) == {"statusCode", "timestamp", "path", "message"}


def test_it_validates_the_body(live: LiveServer) -> None:
    instance = notifying_instance()
    r = download_file(live, instance, {"chatId": CONTACT_WID})
    assert r.status_code == 400
    assert r.json()["message"] == "Validation failed. Details: 'idMessage' is required"
    r = download_file(live, instance, {"chatId": CONTACT_WID, "idMessage": "X", "extra": 1})
    assert r.json()["message"] == "Validation failed. Details: 'extra' is not allowed"


def test_it_checks_credentials(live: LiveServer) -> None:
    instance = notifying_instance()
    r = httpx.post(
        f"{live.url}{method_url(instance, 'downloadFile', token='wrong')}",
        json={"chatId": CONTACT_WID, "idMessage": "X"},
    )
    assert r.status_code == 401
    r = httpx.get(f"{live.url}{method_url(instance, 'downloadFile')}")
    assert r.status_code == 404  # fixed verb: POST
