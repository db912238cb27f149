"""Which engines exist, whether each is installed, what each can do, and the
transport bound to an instance. The only place that loads engine modules by name, so
nothing above the contract imports an engine implementation.

An engine is described by an ``EngineSpec`` in its package's ``spec`` module, which
imports nothing heavy: listing engines or checking a capability never loads neonize
or httpx.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import import_string

from engines.contract import NotSupportedYet, Transport
from engines.sandbox import Sandbox

if TYPE_CHECKING:
    from instances.models import Instance

# Methods answered from Relay's own tables (settings, queues, notifications,
# journals, the account): they work on every engine and never reach one.
PRODUCT_METHODS: frozenset[str] = frozenset(
    {
        "getSettings",
        "setSettings",
        "getStateInstance",
        "getStatusInstance",
        "updateApiToken",
        "getStateInstanceHistory",
        "getSessionHealth",
        "setSystemProxy",
        "uploadFile",
        "receiveNotification",
        "deleteNotification",
        "downloadFile",
        "getChatHistory",
        "getMessage",
        "lastIncomingMessages",
        "lastOutgoingMessages",
        "lastIncomingCalls",
        "lastOutgoingCalls",
        "showMessagesQueue",
        "clearMessagesQueue",
        "getMessagesCount",
        "getWebhooksCount",
        "clearWebhooksQueue",
        "getChats",
        "getInstances",
        "createInstance",
        "deleteInstanceAccount",
        "getStatusStatistic",
        "getIncomingStatuses",
        "getOutgoingStatuses",
        "callsGetIceServers",
    }
)


@dataclass(frozen=True)
class EngineSpec:
    """One engine. ``capabilities`` are the GREEN-API methods (beyond
    ``PRODUCT_METHODS``) it really performs; ``requires`` the Python modules it
    needs (the engine is "not installed" without them); ``transport`` the dotted
    path of its ``Transport`` class; ``session`` the dotted path of the function a
    runner calls each tick for the instances it leases (None: no live session)."""

    name: str
    label: str
    transport: str
    capabilities: frozenset[str]
    requires: tuple[str, ...] = ()
    session: str | None = None
    # Dotted path of the engine's ``engines.sandbox.Sandbox`` (None: no sandbox).
    sandbox: str | None = None
    # Why a method outside ``capabilities`` cannot work, per method (the error's
    # description); others get a generic reason.
    why_not: dict[str, str] = field(default_factory=dict)
    # Dotted path of ``configure(instance, options)``: stores the engine's own options
    # of a new instance (createInstance's Relay extension field named like the
    # engine) inside the creating transaction; raises ``EngineOptionsInvalid``.
    # None: the engine takes no options.
    configure: str | None = None
    # Dotted path of ``connect(instance)``: for engines without a live session, brings
    # an instance to the state its credentials allow (on creation and on reboot) and
    # records it; never raises for the engine's refusal (it is a state, not a 500).
    connect: str | None = None
    # Dotted path of ``describe(instance) -> list[EngineFact]``: what the cabinet
    # shows about an instance's engine (e.g. the callback URL to paste at Meta).
    describe: str | None = None
    # Why a status cannot be posted to chosen ``participants`` (the 400's text) when
    # the engine posts every status to a fixed audience; empty: participants work.
    refuses_status_participants: str = ""
    # Dotted path of ``health(instance, now) -> SessionHealth``: how the instance's
    # live session is doing, as its engine observed it. None: the engine keeps no
    # session health (its sessions are simulated, or it has no live session).
    health: str | None = None
    # Settings (wire name -> why) that cannot have an effect on this engine: setSettings,
    # createInstance and the cabinet refuse any value but the default with the
    # ``Unsupported`` 400 (``setting_refusal``), so no saved setting claims an effect.
    inert_settings: dict[str, str] = field(default_factory=dict)
    # The send queue types for this engine: before a text with a typing time
    # (typingTime, autoTyping) it shows 'typing…' with ``send_presence`` and holds the
    # message that long (messaging.pacing), so the engine's send never blocks on it.
    # False: the engine types while it sends (the emulator) or cannot type (cloud).
    types_in_queue: bool = False

    def supports(self, method: str) -> bool:
        return method in PRODUCT_METHODS or method in self.capabilities


# name -> dotted path of its EngineSpec. Order is the order the cabinet lists them.
ENGINES: dict[str, str] = {
    "emulator": "engines.emulator.spec.SPEC",
    "waweb": "engines.waweb.spec.SPEC",
    "cloud": "engines.cloud.spec.SPEC",
}


@dataclass(frozen=True)
class EngineFact:
    """One line the cabinet shows about an instance's engine. ``copy``: offer a copy
    button; ``problem``: shown as an error (why the engine is not connected)."""

    label: str
    value: str
    copy: bool = False
    problem: bool = False
    help: str = ""


@dataclass(frozen=True)
class SessionHealth:
    """How an instance's live session is doing, as its engine observed it.

    ``status``: ``healthy`` (connected, with recent proof of traffic), ``silent``
    (says it is connected, but nothing proved traffic for ``silent_after_seconds``:
    its runner restarts it), ``dialing`` (started, not connected yet: dialling or
    waiting for a QR scan), ``backingOff`` (its runner waits before starting it
    again, until ``backing_off_until``), ``stopped`` (no session process runs).
    Times are aware datetimes; None means never (or not known)."""

    status: str
    started_at: datetime | None
    connected_at: datetime | None
    last_event_at: datetime | None
    alive_at: datetime | None
    reconnects: int
    keepalive_failures: int
    restarts: int
    silent_restarts: int
    last_error: str
    backing_off_reason: str
    backing_off_until: datetime | None
    silent_after_seconds: float


class UnknownEngine(ValueError):
    """An engine name this server does not know or has not installed."""


class EngineOptionsInvalid(ValueError):
    """An engine's creation options are missing or wrong (the 400's sentence)."""


@cache
def spec(name: str) -> EngineSpec:
    """The engine's spec; ``UnknownEngine`` for a name not in ``ENGINES``."""
    path = ENGINES.get(name)
    if path is None:
        raise UnknownEngine(f"unknown engine '{name}'")
    loaded: EngineSpec = import_string(path)
    return loaded


def names() -> list[str]:
    return list(ENGINES)


def is_installed(name: str) -> bool:
    """Whether the engine is known and everything it needs imports here."""
    try:
        engine = spec(name)
    except UnknownEngine:
        return False
    return all(importlib.util.find_spec(module) is not None for module in engine.requires)


def installed() -> list[str]:
    return [name for name in ENGINES if is_installed(name)]


def check_installed(name: str) -> None:
    """``UnknownEngine`` (with a sentence for the 400) unless ``name`` can run here."""
    if name not in ENGINES:
        raise UnknownEngine(f"unknown engine '{name}'; this server has: {', '.join(installed())}")
    if not is_installed(name):
        missing = [m for m in spec(name).requires if importlib.util.find_spec(m) is None]
        raise UnknownEngine(
            f"the {name} engine is not installed on this server (missing: {', '.join(missing)})"
        )


def refusal(engine: str, method: str) -> str | None:
    """None when ``engine`` can do ``method``; otherwise why not (the 4xx text)."""
    if not is_installed(engine):
        if method in PRODUCT_METHODS:
            return None  # Relay's own tables answer, engine or not
        return f"{method} is not supported by the {engine} engine: it is not installed on this server"
    engine_spec = spec(engine)
    if engine_spec.supports(method):
        return None
    why = engine_spec.why_not.get(method, "")
    return f"{method} is not supported by the {engine} engine" + (f": {why}" if why else "")


def setting_refusal(engine: str, name: str) -> str | None:
    """None when setting ``name`` can have its effect on ``engine``; otherwise why
    not, worded like a method's refusal (the 400's text)."""
    try:
        why = spec(engine).inert_settings.get(name)
    except UnknownEngine:
        return None
    if why is None:
        return None
    return f"{name} is not supported by the {engine} engine: {why}"


def get_transport(instance: Instance) -> Transport:
    """The transport bound to an instance. Raises ``NotSupportedYet`` (a permanent
    ``TransportError``) for an engine that is unknown or not installed here."""
    try:
        check_installed(instance.engine)
    except UnknownEngine as exc:
        raise NotSupportedYet("this engine", instance.engine) from exc
    cls = _transport_class(instance.engine)
    transport: Transport = cls(instance)
    return transport


@cache
def _transport_class(name: str) -> Any:
    return import_string(spec(name).transport)


def session_steps() -> list[tuple[str, Any]]:
    """(engine name, tick function) of every installed engine with live sessions."""
    steps = []
    for name in installed():
        path = spec(name).session
        if path:
            steps.append((name, import_string(path)))
    return steps


def _call(path: str, *args: Any) -> Any:
    return import_string(path)(*args)


def configure(instance: Instance, options: Mapping[str, Any] | None) -> None:
    """Hand a new instance's engine options to its engine (``EngineSpec.configure``).
    ``EngineOptionsInvalid`` when the engine takes none but some were given, or the
    engine refuses them."""
    path = spec(instance.engine).configure
    if path is None:
        if options:
            raise EngineOptionsInvalid(f"the {instance.engine} engine takes no engine options")
        return
    _call(path, instance, options or {})


def connect(instance: Instance) -> bool:
    """Connect an instance of an engine without live sessions (``EngineSpec.connect``);
    False when its engine has sessions (a runner connects it)."""
    path = spec(instance.engine).connect
    if path is None:
        return False
    _call(path, instance)
    return True


def describe(instance: Instance) -> list[EngineFact]:
    """What the cabinet shows about the instance's engine (``EngineSpec.describe``);
    empty for engines that tell nothing or are not installed here."""
    if not is_installed(instance.engine):
        return []
    path = spec(instance.engine).describe
    return list(_call(path, instance)) if path else []


def session_health(instance: Instance, now: datetime) -> SessionHealth | None:
    """The instance's session health (``EngineSpec.health``) at ``now``; None for
    engines that keep none or are not installed here."""
    if not is_installed(instance.engine):
        return None
    path = spec(instance.engine).health
    if not path:
        return None
    found: SessionHealth = _call(path, instance, now)
    return found


def sandbox(name: str) -> Sandbox | None:
    """The engine's sandbox (``engines.sandbox``), or None: only an engine that
    simulates the other side has one, and only when it is installed here."""
    if not is_installed(name):
        return None
    path = spec(name).sandbox
    if not path:
        return None
    found: Sandbox = import_string(path)
    return found
