"""Issue 18: a setting that cannot have its effect on an instance's engine
(``EngineSpec.inert_settings``) is refused with the engine's 400 when turned on,
nothing is written, and its default (off) is accepted: SDKs and the cabinet post
every setting at once. The emulator honours every setting."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from dashboard.forms import SettingsForm
from engines import registry
from instances import settings_spec
from instances.models import Account, Instance
from tests.conftest import method_url, partner_url
from tests.factories import make_instance

# (engine, setting, a value asking for its effect): every inert setting of every engine.
INERT = [
    (engine, name, {"flag": "yes", "bool": True, "int": 2}.get(settings_spec.BY_NAME[name].kind, "10.0.0.1:3128:u:p"))
    for engine in registry.names()
    for name in registry.spec(engine).inert_settings
]
WIRE_OFF = {"flag": "no", "bool": False, "int": 0}


def off(name: str, engine: str) -> Any:
    spec = settings_spec.BY_NAME[name]
    return WIRE_OFF.get(spec.kind, spec.default_for(engine))


def test_the_audited_settings_are_listed() -> None:
    assert set(registry.spec("cloud").inert_settings) == {
        "keepOnlineStatus", "autoTyping", "enableLidMode", "enableMessagesHistory", "outgoingCallWebhook",
        "proxyInstance",
    }
    assert {"outgoingCallWebhook"} <= set(registry.spec("waweb").inert_settings)
    assert "autoTyping" not in registry.spec("waweb").inert_settings  # the send queue types for it
    assert registry.spec("emulator").inert_settings == {}
    assert all(name in settings_spec.BY_NAME for _, name, _ in INERT)


@pytest.mark.parametrize(("engine", "name", "value"), INERT)
def test_turning_it_on_is_the_engines_400_and_stores_nothing(
    api_client: APIClient, account: Account, engine: str, name: str, value: Any
) -> None:
    instance = make_instance(account, engine=engine)
    before = dict(Instance.objects.get(pk=instance.pk).settings)
    # A valid change in the same body is not written either: all or nothing.
    r = api_client.post(
        method_url(instance, "setSettings"), {"incomingWebhook": "yes", name: value}, format="json"
    )
    assert r.status_code == 400, r.content
    why = registry.spec(engine).inert_settings[name]
    assert f"{name} is not supported by the {engine} engine: {why}" in r.content.decode()
    assert Instance.objects.get(pk=instance.pk).settings == before


@pytest.mark.parametrize(("engine", "name", "value"), INERT)
def test_its_default_is_accepted(api_client: APIClient, account: Account, engine: str, name: str, value: Any) -> None:
    instance = make_instance(account, engine=engine)
    r = api_client.post(
        method_url(instance, "setSettings"), {"incomingWebhook": "yes", name: off(name, engine)}, format="json"
    )
    assert r.json() == {"saveSettings": True}
    body = api_client.get(method_url(instance, "getSettings")).json()
    assert body["incomingWebhook"] == "yes"
    assert body[name] == off(name, engine)


@pytest.mark.parametrize(("engine", "name", "value"), INERT)
def test_the_emulator_honours_it(api_client: APIClient, instance: Instance, engine: str, name: str, value: Any) -> None:
    r = api_client.post(method_url(instance, "setSettings"), {name: value}, format="json")
    assert r.json() == {"saveSettings": True}
    assert api_client.get(method_url(instance, "getSettings")).json()[name] == value


def test_create_instance_refuses_it_and_creates_nothing(api_client: APIClient, account: Account) -> None:
    r = api_client.post(
        partner_url("createInstance", account.partner_token),
        {"engine": "waweb", "outgoingCallWebhook": "yes"},
        format="json",
    )
    assert r.status_code == 400
    assert "outgoingCallWebhook is not supported by the waweb engine" in r.content.decode()
    assert not Instance.objects.filter(account=account).exists()
    ok = api_client.post(
        partner_url("createInstance", account.partner_token),
        {"engine": "waweb", "outgoingCallWebhook": "no"},
        format="json",
    )
    assert ok.status_code == 200, ok.content


def _form_data(instance: Instance, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for spec in settings_spec.SETTINGS:
        value = instance.setting(spec.name)
        if spec.kind in ("flag", "bool"):
            if value:
                data[spec.name] = "on"
        else:
            data[spec.name] = value
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_cabinet_form_refuses_it_on_its_field(account: Account) -> None:
    instance = make_instance(account, engine="cloud")
    form = SettingsForm(_form_data(instance, keepOnlineStatus="on"), instance=instance)
    assert not form.is_valid()
    assert "keepOnlineStatus is not supported by the cloud engine" in " ".join(form.errors["keepOnlineStatus"])
    # Everything at its default (what the cabinet posts untouched) saves.
    assert SettingsForm(_form_data(instance, incomingWebhook="on"), instance=instance).is_valid()
