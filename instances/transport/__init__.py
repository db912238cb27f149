"""Lazy transport registry: the only place that loads engine modules by name."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from instances.transport.base import NotSupportedYet, Transport, TransportError

if TYPE_CHECKING:
    from instances.models import Instance

__all__ = ["NotSupportedYet", "Transport", "TransportError", "get_transport"]

_ENGINES = {
    "emulator": "instances.transport.emulator.EmulatorTransport",
}


def get_transport(instance: Instance) -> Transport:
    """The transport for an instance's engine. Engines not installed raise a
    permanent ``TransportError``."""
    path = _ENGINES.get(instance.engine)
    if path is None:
        raise NotSupportedYet("this engine", instance.engine)
    module_name, _, class_name = path.rpartition(".")
    cls = getattr(import_module(module_name), class_name)
    return cls(instance)
