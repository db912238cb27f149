"""The method coverage test (``tests/engines/method_coverage.py``) on the emulator: one
module per engine, so xdist spreads the engines over its workers."""

from __future__ import annotations

import pytest

from tests.engines.method_coverage import harnessed, test_live_methods, test_method_on_engine

__all__ = ["harnessed", "test_live_methods", "test_method_on_engine"]  # collected and used here

pytestmark = pytest.mark.django_db


@pytest.fixture
def engine() -> str:
    return "emulator"
