"""The OpenAPI schema is generated from the registry and the method views."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from instances import registry

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def schema(django_db_blocker: Any) -> Schema:
    with django_db_blocker.unblock():
        r = Client().get("/api/schema/?format=json")
    assert r.status_code == 200
    body: Schema = r.json()
    return body


def wire_path(spec: registry.MethodSpec) -> str:
    if spec.host == "partner":
        return f"/partner/{spec.name}/{{token}}"
    return f"/waInstance{{id_instance}}/{spec.name}/{{token}}"


def operation(schema: Schema, spec: registry.MethodSpec, verb: str | None = None) -> Schema:
    ops: Schema = schema["paths"][wire_path(spec)]
    return dict(ops[(verb or spec.verb).lower()])


def resolve(schema: Schema, ref_or_schema: Schema) -> Schema:
    if "$ref" in ref_or_schema:
        name = ref_or_schema["$ref"].rsplit("/", 1)[-1]
        return dict(schema["components"]["schemas"][name])
    return ref_or_schema


IMPLEMENTED = registry.implemented()


def test_schema_is_openapi_3(schema: Schema) -> None:
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"]


def test_registry_lists_the_partner_methods() -> None:
    names = {spec.name for spec, _ in IMPLEMENTED}
    assert {"getInstances", "createInstance", "deleteInstanceAccount", "getStateInstance"} <= names


@pytest.mark.parametrize(("spec", "view"), IMPLEMENTED, ids=[spec.name for spec, _ in IMPLEMENTED])
def test_every_implemented_method_has_an_operation(schema: Schema, spec: registry.MethodSpec, view: Any) -> None:
    assert wire_path(spec) in schema["paths"], f"{spec.name} is missing from the schema"
    op = operation(schema, spec)
    assert op["operationId"] == spec.name
    assert op["tags"] == [spec.section]
    assert f"`{spec.name}`" in op["description"]
    ok = op["responses"]["200"]
    if view.Output is None:  # methods whose 200 has an empty body (sendTyping)
        assert "content" not in ok
        assert ok["description"] == "No response body"
    else:
        assert resolve(schema, ok["content"]["application/json"]["schema"]), f"{spec.name}: empty 200 schema"
    if spec.verb == "POST" and view.Input is not None:
        body = op["requestBody"]["content"]["application/json"]["schema"]
        fields = resolve(schema, body)["properties"]
        assert set(fields) == set(view.Input().fields)


def test_operation_ids_are_unique(schema: Schema) -> None:
    ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_second_verb_gets_its_own_operation_id(schema: Schema) -> None:
    spec = registry.BY_NAME["startAuthorization"]
    assert operation(schema, spec, "POST")["operationId"] == "startAuthorization"
    assert operation(schema, spec, "GET")["operationId"] == "startAuthorizationGet"


def test_request_bodies_of_different_methods_do_not_collide(schema: Schema) -> None:
    # Every method view names its body serializer ``Input``: each must keep its own fields.
    code = resolve(schema, operation(schema, registry.BY_NAME["getAuthorizationCode"])["requestBody"]["content"]["application/json"]["schema"])
    delete = resolve(schema, operation(schema, registry.BY_NAME["deleteInstanceAccount"])["requestBody"]["content"]["application/json"]["schema"])
    assert set(code["properties"]) == {"phoneNumber"}
    assert set(delete["properties"]) == {"idInstance"}
    assert delete["required"] == ["idInstance"]


def test_create_instance_documents_settings_and_engine(schema: Schema) -> None:
    op = operation(schema, registry.BY_NAME["createInstance"])
    body = resolve(schema, op["requestBody"]["content"]["application/json"]["schema"])
    assert {"name", "engine", "webhookUrl", "incomingWebhook", "delaySendMessagesMilliseconds"} <= set(body["properties"])
    assert "required" not in body  # every field is optional
    out = resolve(schema, op["responses"]["200"]["content"]["application/json"]["schema"])
    assert set(out["properties"]) == {"idInstance", "apiTokenInstance", "typeInstance"}


def test_get_instances_answers_a_list(schema: Schema) -> None:
    ok = operation(schema, registry.BY_NAME["getInstances"])["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["type"] == "array"
    assert "idInstance" in resolve(schema, ok["items"])["properties"]


def test_upload_method_documents_multipart(schema: Schema) -> None:
    op = operation(schema, registry.BY_NAME["setProfilePicture"])
    body = resolve(schema, op["requestBody"]["content"]["multipart/form-data"]["schema"])
    assert body["properties"]["file"]["format"] == "binary"


def test_emulator_extensions_are_documented(schema: Schema) -> None:
    scan = schema["paths"]["/api/v1/emulator/instances/{id_instance}/scan-qr"]["post"]
    assert scan["tags"] == ["emulator"]
    assert "phoneNumber" in resolve(schema, scan["requestBody"]["content"]["application/json"]["schema"])["properties"]


def test_swagger_ui_is_served(db: None) -> None:
    r = Client().get("/api/docs/")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/html")
    assert b"swagger" in r.content.lower()
    assert b"/api/schema/" in r.content


def test_schema_yaml_is_served(db: None) -> None:
    r = Client().get("/api/schema/")
    assert r.status_code == 200
    assert b"openapi: 3" in r.content


def test_schema_generates_without_name_collisions(db: None) -> None:
    # Two serializer classes under one component name make drf-spectacular reuse the
    # first for both: the second method's schema is then silently wrong.
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        SchemaGenerator().get_schema(request=None, public=True)
    collisions = [msg for msg in GENERATOR_STATS._warn_cache if "identical names" in msg or "collisions" in msg]
    problems = collisions + list(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert problems == []
