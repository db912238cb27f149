"""Every wire method the Cloud API cannot do answers GREEN-API's 400 naming the cloud
engine (and why), before anything reaches Meta; every method it can do is let
through to its view."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from engines import registry as engines
from instances import registry
from instances.models import Instance
from tests.conftest import method_url
from tests.engines.cloud.fakegraph import FakeGraph

SPEC = engines.spec("cloud")
WIRE = [(spec.name, spec.verb) for spec, _ in registry.implemented() if spec.host != "ws"]
REFUSED = [(name, verb) for name, verb in WIRE if not SPEC.supports(name)]


def call(client: APIClient, instance: Instance, name: str, verb: str) -> tuple[int, str]:
    url = method_url(instance, name)
    r = client.generic(verb, url, "{}", content_type="application/json")
    return r.status_code, r.content.decode()


def test_the_refused_list_is_what_the_issue_names() -> None:
    names = {name for name, _ in REFUSED}
    assert {"qr", "getAuthorizationCode", "logout", "sendPoll", "deleteMessage", "editMessage", "archiveChat",
            "setDisappearingChat", "checkWhatsapp", "getAvatar", "getContacts", "getContactInfo", "createGroup",
            "sendTextStatus", "callsDial"} <= names
    assert not names & {"sendMessage", "sendFileByUpload", "sendTemplate", "sendReaction", "readChat", "reboot"}


@pytest.mark.parametrize(("name", "verb"), REFUSED)
def test_what_the_cloud_api_cannot_do_is_a_400_naming_the_engine(
    api_client: APIClient, cloud_instance: Instance, graph: FakeGraph, name: str, verb: str
) -> None:
    status, body = call(api_client, cloud_instance, name, verb)
    assert status == 400, body
    assert f"{name} is not supported by the cloud engine" in body
    assert graph.sent == [] and graph.uploads == {}


def test_qr_says_how_cloud_instances_are_linked(api_client: APIClient, cloud_instance: Instance, graph: FakeGraph) -> None:
    status, body = call(api_client, cloud_instance, "qr", "GET")
    assert status == 400 and "linked by their credentials" in body


@pytest.mark.parametrize("name", sorted(SPEC.capabilities))
def test_what_it_can_do_reaches_its_view(api_client: APIClient, cloud_instance: Instance, graph: FakeGraph,
                                         name: str) -> None:
    status, body = call(api_client, cloud_instance, name, registry.BY_NAME[name].verb)
    assert "not supported by the cloud engine" not in body, (status, body)
