"""docs/api.md's method table is the registry's and says, for every method, what
the emulator really does."""

from __future__ import annotations

from pathlib import Path

from instances import registry
from instances.method_docs import EMULATOR, method_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_implemented_method_says_what_the_emulator_does() -> None:
    names = {spec.name for spec, _ in registry.implemented() if spec.host != "ws"}
    assert names - set(EMULATOR) == set()
    assert all(EMULATOR[name].strip() for name in names)
    assert set(EMULATOR) - names == set()  # no stale rows


def test_the_page_shows_the_generated_table() -> None:
    assert method_table() in DOC.read_text(encoding="utf-8")
