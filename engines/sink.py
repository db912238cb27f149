"""The one sink every engine event goes into.

Engines call ``emit`` (or ``emit_many`` for a batch); the product's apps subscribe to
the kinds of event they consume with ``subscribe``, from their ``AppConfig.ready``.
That inversion is what keeps engines from importing ``journals`` or ``messaging``:
both sides import this module and nothing of each other.

Handlers run synchronously in the caller's transaction, so an event and the cursor
or network row that produced it commit together (a runner that crashes before the
commit takes the same events in again, and the consumers are idempotent per event).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from engines.events import SinkEvent

if TYPE_CHECKING:
    from instances.models import Instance

E = TypeVar("E", bound=SinkEvent)

# handler(pairs): every (target, event) of one kind from one emit, in order.
Handler = Callable[[Sequence[tuple[Any, Any]]], None]

_handlers: dict[type, list[Handler]] = defaultdict(list)


class NoSubscriber(RuntimeError):
    """An event kind nobody consumes: an engine reported something the product
    would silently drop, which is a wiring bug, not a runtime condition."""


def subscribe(kind: type[E], handler: Callable[[Sequence[tuple[Instance | int, E]]], None]) -> None:
    """Consume every event of ``kind`` (idempotent: the same handler once)."""
    if handler not in _handlers[kind]:
        _handlers[kind].append(handler)


def emit(target: Instance | int, *events: SinkEvent) -> None:
    """Report events for one instance, in order. ``target`` is the instance, or its
    id when the emitter does not hold the row (a receipt for the sender)."""
    emit_many([(target, event) for event in events])


def emit_many(pairs: Sequence[tuple[Instance | int, SinkEvent]]) -> None:
    """Report a batch (any instances): consecutive events of one kind reach their
    handlers as one call, so consumers can write them in one statement, while the
    batch's order is kept across kinds."""
    run: list[tuple[Instance | int, SinkEvent]] = []
    for pair in pairs:
        if run and type(pair[1]) is not type(run[0][1]):
            _dispatch(run)
            run = []
        run.append(pair)
    if run:
        _dispatch(run)


def _dispatch(run: list[tuple[Instance | int, SinkEvent]]) -> None:
    kind = type(run[0][1])
    handlers = _handlers.get(kind)
    if not handlers:
        raise NoSubscriber(f"no subscriber for {kind.__name__}")
    for handler in handlers:
        handler(run)


def subscribers() -> dict[type, list[Handler]]:
    """What consumes which kind (for the conformance suite and diagnostics)."""
    return {kind: list(handlers) for kind, handlers in _handlers.items() if handlers}
