"""A bounded, deterministic schemathesis run over the served OpenAPI (/api/schema/):
every operation gets generated requests through the whole Django stack in-process
(no sockets, no outbound traffic), with a real instance's id and token in the path
so bodies reach validation. No answer may be a server error, and every answer must
be one the schema documents (status code, content type, body shape).

Bounded: ``FUZZ_EXAMPLES`` examples per operation (default 5), derandomized (the
same cases every run), no deadline per example. Destructive methods (logout,
reboot, token rotation, deleting instances, clearing queues) and methods that make
the server fetch a URL are left out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from instances.models import Instance
from tests.factories import make_instance

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
EXCLUDED = (
    r"(logout|reboot|updateApiToken|deleteInstanceAccount|clearMessagesQueue|Url"
    r"|setProfilePicture|setGroupPicture|uploadFile|sendFileByUpload|/seed)"
)


@pytest.fixture
def wire_schema(db: None) -> Iterator[Any]:
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from config.wsgi import application

    # As Django's test client does: the WSGI handler would otherwise close the
    # connection that holds the test's transaction after every request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_instance(db: None) -> Instance:
    return make_instance(authorized=True, phone="79001119999")


def _point_at(case: Any, instance: Instance) -> dict[str, str] | None:
    """A real instance's id and token in the path (bodies then reach validation);
    the emulator control API takes the token as a Bearer header."""
    params = case.path_parameters or {}
    for name in ("id_instance", "idInstance"):
        if name in params:
            params[name] = instance.id
    if "token" in params:
        partner = case.path.startswith("/partner/")
        params["token"] = instance.account.partner_token if partner else instance.api_token
    if case.path.startswith("/api/v1/"):
        return {"Authorization": f"Bearer {instance.api_token}"}
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_no_server_errors_and_documented_answers(wire_schema: Any, fuzz_instance: Instance) -> None:
    """One test over every included operation (schemathesis's pytest plugin does not
    support this pytest): failures are collected, then reported together."""
    failures: list[str] = []
    operations = 0
    for result in wire_schema.exclude(path_regex=EXCLUDED).get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],  # no shrinking: report, then move on
        )
        def run(case: Any) -> None:
            headers = _point_at(case, fuzz_instance)
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert operations > 50  # the schema was read and most of it exercised
    assert failures == [], "\n\n".join(failures)
