"""The method coverage test's engine-independent parts (the engine-parametrised tests
are in ``tests/engines/method_coverage.py`` and run from one module per engine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rest_framework.test import APIClient

from instances import registry as methods
from instances.models import Account
from tests.conftest import method_url
from tests.engines.method_coverage import (
    CASES,
    LIVE,
    NOT_SERVED,
    PEER_FALLBACK,
    WEBSOCKET,
    engines_under_test,
)
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


def test_every_engine_has_its_module() -> None:
    """Each engine (and the unknown one) runs the coverage from a module of its own."""
    here = Path(__file__).parent
    modules = {p.stem.removeprefix("test_method_coverage_") for p in here.glob("test_method_coverage_*.py")}
    assert modules == set(engines_under_test()), "add tests/engines/test_method_coverage_<engine>.py"


def test_every_method_has_a_case() -> None:
    missing = {m.name for m in methods.METHODS} - set(CASES) - NOT_SERVED - WEBSOCKET - LIVE
    assert not missing, f"add a CASES entry (minimal valid request and its effect) for {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(NOT_SERVED))
def test_removed_methods_answer_the_same_on_every_engine(name: str, account: Account) -> None:
    answers = set()
    for engine in engines_under_test():
        instance = make_instance(account, engine=engine)
        r = APIClient().post(method_url(instance, name), {"chatId": PEER_FALLBACK}, format="json")
        assert r.status_code < 500 and r.status_code != 200, (name, engine, r.status_code)
        answers.add(r.status_code)
    assert len(answers) == 1
