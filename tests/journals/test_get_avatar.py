from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

from engines.emulator.transport import ensure_phone
from instances.models import Instance
from tests.conftest import LiveServer
from tests.factories import make_instance
from tests.journals.chat_helpers import PEER, PEER_WID, assert_validation, assert_wire_guards, post


def test_it_returns_a_real_image_url(live_asgi: LiveServer, settings: Any) -> None:
    settings.RELAY_MEDIA_URL = live_asgi.url
    instance = make_instance(authorized=True)
    ensure_phone(PEER, "John Smith")
    r = httpx.post(f"{live_asgi.url}/waInstance{instance.id}/getAvatar/{instance.api_token}", json={"chatId": PEER_WID})
    body = r.json()
    assert r.status_code == 200
    assert body == {"existsWhatsapp": True, "urlAvatar": body["urlAvatar"], "available": True}
    picture = httpx.get(body["urlAvatar"])
    assert picture.status_code == 200
    assert picture.headers["content-type"] == "image/png"


def test_unknown_numbers_get_the_empty_answer(api_client: APIClient, authorized_instance: Instance) -> None:
    r = post(api_client, authorized_instance, "getAvatar", {"chatId": "79009999999@c.us"})
    assert r.json() == {"existsWhatsapp": False, "urlAvatar": "", "available": False}
    r = post(api_client, authorized_instance, "getAvatar", {"chatId": "120363043968066561@g.us"})
    assert r.json() == {"existsWhatsapp": False, "urlAvatar": "", "available": False}


def test_it_needs_an_authorized_instance(api_client: APIClient, instance: Instance) -> None:
    assert post(api_client, instance, "getAvatar", {"chatId": PEER_WID}).status_code == 400


@pytest.mark.parametrize(
    ("body", "detail"),
    [({}, "'chatId' is required"), ({"chatId": PEER}, "'chatId' must be one of the next formats: 'phone_number@c.us', 'chat_id@lid' or 'group_id@g.us'")],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "getAvatar", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "getAvatar", "POST", {"chatId": PEER_WID})


def test_the_js_sdk_numeric_phone_number_is_that_chat(api_client: APIClient, authorized_instance: Instance) -> None:
    ensure_phone(PEER, "John Smith")
    by_chat = post(api_client, authorized_instance, "getAvatar", {"chatId": PEER_WID}).json()
    by_number = post(api_client, authorized_instance, "getAvatar", {"phoneNumber": int(PEER)})
    assert by_number.status_code == 200
    assert by_number.json() == by_chat and by_chat["existsWhatsapp"] is True
    refused = post(api_client, authorized_instance, "getAvatar", {"phoneNumber": "+7900"})
    assert refused.status_code == 400
