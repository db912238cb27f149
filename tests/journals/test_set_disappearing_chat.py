from typing import Any

import pytest
from rest_framework.test import APIClient

from instances.models import Instance
from tests.journals.chat_helpers import PEER_WID, assert_validation, assert_wire_guards, post


@pytest.mark.parametrize("seconds", [86400, 604800, 7776000])
def test_it_sets_the_timer(api_client: APIClient, authorized_instance: Instance, seconds: int) -> None:
    r = post(api_client, authorized_instance, "setDisappearingChat", {"chatId": PEER_WID, "ephemeralExpiration": seconds})
    assert r.status_code == 200
    assert r.json() == {"chatId": PEER_WID, "disappearingMessagesInChat": True, "ephemeralExpiration": seconds}


def test_zero_or_nothing_turns_it_off(api_client: APIClient, authorized_instance: Instance) -> None:
    post(api_client, authorized_instance, "setDisappearingChat", {"chatId": PEER_WID, "ephemeralExpiration": 86400})
    r = post(api_client, authorized_instance, "setDisappearingChat", {"chatId": PEER_WID})
    assert r.json() == {"chatId": PEER_WID, "disappearingMessagesInChat": False, "ephemeralExpiration": 0}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"chatId": PEER_WID, "ephemeralExpiration": 3600}, "'ephemeralExpiration' must be one of [0, 86400, 604800, 7776000]"),
        ({"chatId": PEER_WID, "ephemeralExpiration": "day"}, "'ephemeralExpiration' must be a number"),
        ({"ephemeralExpiration": 0}, "'chatId' is required"),
    ],
)
def test_it_validates(api_client: APIClient, authorized_instance: Instance, body: Any, detail: str) -> None:
    assert_validation(post(api_client, authorized_instance, "setDisappearingChat", body), detail)


def test_wire_guards(api_client: APIClient, authorized_instance: Instance) -> None:
    assert_wire_guards(api_client, authorized_instance, "setDisappearingChat", "POST", {"chatId": PEER_WID})
