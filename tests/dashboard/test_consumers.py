"""The cabinet's live socket: state badges and the QR code, over the real ASGI stack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from engines.emulator import pairing
from instances import services
from instances.models import Account, State
from tests.conftest import LiveServer
from tests.factories import AccountFactory, make_instance

TIMEOUT = 20


def session_cookie(account: Account) -> str:
    client = Client()
    client.force_login(account.user)
    return f"sessionid={client.cookies['sessionid'].value}"


def open_socket(live: LiveServer, path: str, cookie: str = "", origin: str | None = None) -> ClientConnection:
    headers = {"Cookie": cookie} if cookie else {}
    return connect(
        live.ws_url + path, additional_headers=headers, origin=origin if origin is not None else live.url,  # type: ignore[arg-type]
        open_timeout=TIMEOUT,
    )


def frames_until(ws: ClientConnection, predicate: Any) -> dict[str, Any]:
    while True:
        frame = json.loads(ws.recv(timeout=TIMEOUT))
        if predicate(frame):
            return dict(frame)


def closed_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=TIMEOUT)
    return info.value.rcvd.code if info.value.rcvd else None


def test_list_socket_pushes_state_changes(live_asgi: LiveServer) -> None:
    account = AccountFactory()
    instance = make_instance(account)
    with open_socket(live_asgi, "/ws/dashboard/", session_cookie(account)) as ws:
        first = frames_until(ws, lambda f: f["type"] == "state")
        assert first == {"type": "state", "id": instance.id, "state": "notAuthorized", "label": "Not authorized",
                         "tone": "idle", "wid": ""}
        pairing.link_phone(instance, phone="79005550201")
        services.change_state(instance, State.AUTHORIZED)
        frame = frames_until(ws, lambda f: f.get("state") == "authorized")
        assert frame["id"] == instance.id and frame["label"] == "Authorized" and frame["tone"] == "ok"
        # A new instance makes the list refresh.
        make_instance(account)
        frames_until(ws, lambda f: f["type"] == "list_changed")


def test_instance_socket_streams_the_qr_then_the_pairing(live_asgi: LiveServer) -> None:
    account = AccountFactory()
    instance = make_instance(account)
    with open_socket(live_asgi, f"/ws/dashboard/instances/{instance.id}/", session_cookie(account)) as ws:
        assert frames_until(ws, lambda f: f["type"] == "state")["state"] == "notAuthorized"
        qr = frames_until(ws, lambda f: f["type"] == "qr")
        assert qr["png"].startswith("iVBOR")  # base64 PNG
        pairing.link_phone(instance, phone="79005550202")
        services.change_state(instance, State.AUTHORIZED)
        frame = frames_until(ws, lambda f: f.get("state") == "authorized")
        assert frame["wid"] == "79005550202@c.us"


def test_another_users_instance_is_refused(live_asgi: LiveServer) -> None:
    mine, theirs = AccountFactory(), AccountFactory()
    other = make_instance(theirs)
    with open_socket(live_asgi, f"/ws/dashboard/instances/{other.id}/", session_cookie(mine)) as ws:
        assert closed_code(ws) == 4404


def test_anonymous_and_cross_site_sockets_are_refused(live_asgi: LiveServer) -> None:
    account = AccountFactory()
    instance = make_instance(account)
    with open_socket(live_asgi, f"/ws/dashboard/instances/{instance.id}/") as ws:
        assert closed_code(ws) == 4403
    cookie = session_cookie(account)
    with open_socket(live_asgi, f"/ws/dashboard/instances/{instance.id}/", cookie, origin="http://evil.example") as ws:
        assert closed_code(ws) == 4403
