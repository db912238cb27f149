import base64
import io

import pytest
from PIL import Image
from rest_framework.test import APIClient

from engines.emulator import transport as emulator
from instances import services
from instances.models import Instance, State
from tests.conftest import method_url


def test_it_returns_a_base64_png_for_an_unlinked_instance(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "qr"))
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["type", "message"]
    assert body["type"] == "qrCode"
    png = base64.b64decode(body["message"], validate=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size[0] == image.size[1] > 100


def test_the_png_encodes_this_instance_current_code(api_client: APIClient, instance: Instance) -> None:
    message = api_client.get(method_url(instance, "qr")).json()["message"]
    window = emulator.qr_window()
    expected = {
        emulator.render_qr_png(emulator.qr_text(instance.id, instance.qr_secret, w))
        for w in (window - 1, window)
    }
    assert message in expected


def test_authorized_instance_is_already_logged(api_client: APIClient, authorized_instance: Instance) -> None:
    r = api_client.get(method_url(authorized_instance, "qr"))
    assert r.json() == {"type": "alreadyLogged", "message": "instance account already authorized"}


def test_starting_instance_answers_error(api_client: APIClient, authorized_instance: Instance) -> None:
    api_client.get(method_url(authorized_instance, "reboot"))
    r = api_client.get(method_url(authorized_instance, "qr"))
    assert r.status_code == 200
    assert r.json() == {"type": "error", "message": "instance in starting process try later"}


@pytest.mark.parametrize("state", [State.BLOCKED, State.YELLOW_CARD, State.SLEEP_MODE, State.PENDING_CODE])
def test_other_states_answer_error(api_client: APIClient, authorized_instance: Instance, state: str) -> None:
    services.change_state(authorized_instance, state)
    r = api_client.get(method_url(authorized_instance, "qr"))
    assert r.json() == {"type": "error", "message": "Instance has auth. You need to make log out"}


def test_it_rejects_wrong_token(api_client: APIClient, instance: Instance) -> None:
    r = api_client.get(method_url(instance, "qr", token="0" * 50))
    assert r.status_code == 401
    assert r.json() == {"code": 401, "description": "Unauthorized"}


def test_it_rejects_unknown_instance(api_client: APIClient, instance: Instance) -> None:
    assert api_client.get(f"/waInstance1{instance.id}/qr/{instance.api_token}").status_code == 403


def test_wrong_verb_is_404(api_client: APIClient, instance: Instance) -> None:
    assert api_client.post(method_url(instance, "qr")).status_code == 404
