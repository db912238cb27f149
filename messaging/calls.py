"""VoIP calls (API.md §9.13): the call state machine as the wire sees it.

``idle`` -> ``out-call`` (callsDial) or ``inc-call`` (someone rings us) ->
``on-call`` (answered) -> ``idle``. The engine keeps the state (for the emulator,
the emulated network's ``EmuCall``); these services check the instance, ask the
transport to make the transition, and tell listening sockets of both sides once the
change is committed. A transition the state machine does not allow answers a 400
with the reason (``CallRefused``); an engine without calls answers
``CallsUnsupported``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings

from engines.contract import CallError, CallStatus, NotSupportedYet, Transport
from engines.registry import get_transport
from instances import events
from instances.models import Instance, State


class CallRefused(Exception):
    """The state machine cannot make this transition now (400 with this text)."""


class CallsUnsupported(Exception):
    """The instance's engine cannot place or take calls."""

    def __init__(self, engine: str, sentence: str = "") -> None:
        super().__init__(sentence or f"calls are not supported by the {engine} engine")


def _transport(instance: Instance) -> Transport:
    if instance.state != State.AUTHORIZED or not instance.wid:
        raise CallRefused("instance is starting or not authorized")
    try:
        return get_transport(instance)
    except NotSupportedYet as exc:
        raise CallsUnsupported(instance.engine) from exc


def _do(instance: Instance, change: Callable[[Transport], CallStatus]) -> CallStatus:
    transport = _transport(instance)
    try:
        # No transaction around it: an engine whose session lives in another process
        # (waweb) answers through the command channel, whose rows that process must
        # see. The emulator's transitions are atomic on their own (engines.emulator.calls).
        before = transport.call_status()
        after = change(transport)
        notify_call_change(instance, before, after)
    except CallError as exc:
        raise CallRefused(str(exc)) from exc
    except NotSupportedYet as exc:
        raise CallsUnsupported(instance.engine) from exc
    return after


def notify_call_change(instance: Instance, *statuses: CallStatus) -> None:
    """Wake the callsRtc sockets of this instance and of every instance on this
    server linked to a phone these statuses name (the other side), on commit."""
    peers = {s.peer for s in statuses if s.peer}
    ids = {instance.pk}
    if peers:
        ids |= set(Instance.objects.filter(phone__in=peers, is_deleted=False).values_list("pk", flat=True))
    events.calls_changed(sorted(ids))


def calls_state(instance: Instance) -> CallStatus:
    """callsState: where the instance's call is now."""
    transport = _transport(instance)
    try:
        return transport.call_status()
    except CallError as exc:
        raise CallRefused(str(exc)) from exc
    except NotSupportedYet as exc:
        raise CallsUnsupported(instance.engine) from exc


def calls_dial(instance: Instance, *, chat_id: str) -> CallStatus:
    """callsDial: ring a user (another instance on this server or a contact)."""
    phone = chat_id.split("@", 1)[0]
    if instance.phone and phone == instance.phone:
        raise CallRefused("an account cannot call itself")
    return _do(instance, lambda t: t.call_dial(phone=phone))


def calls_accept(instance: Instance) -> CallStatus:
    """callsAccept: answer the ringing incoming call."""
    return _do(instance, lambda t: t.call_accept())


def calls_reject(instance: Instance) -> CallStatus:
    """callsReject: decline the ringing incoming call."""
    return _do(instance, lambda t: t.call_reject())


def calls_hang_up(instance: Instance) -> CallStatus:
    """callsHangUp: end the current call (cancel, decline or hang up)."""
    return _do(instance, lambda t: t.call_hang_up())


def calls_get_ice_servers(instance: Instance) -> list[dict[str, Any]]:
    """callsGetIceServers: the STUN/TURN servers the operator configured
    (``CALLS_ICE_SERVERS``; none by default). Relay's own setting, never the
    engine's (``engines.registry.PRODUCT_METHODS``): only the state is checked."""
    if instance.state != State.AUTHORIZED or not instance.wid:
        raise CallRefused("instance is starting or not authorized")
    return [dict(server) for server in settings.CALLS_ICE_SERVERS]


def state_body(status: CallStatus) -> dict[str, Any]:
    """The callsState object (also the ``state`` of a callsRtc state frame)."""
    info = None
    if status.state != "idle":
        info = {"id": status.id_call, "wid": f"{status.peer}@c.us", "name": status.name}
    return {"state": status.state, "info": info, "reason": status.reason}


# --- Signalling (callsRtc) ----------------------------------------------------------------


def peer_instance_ids(instance: Instance, status: CallStatus) -> list[int]:
    """Instances on this server linked to the other side of the current call."""
    if not status.peer:
        return []
    return list(
        Instance.objects.filter(phone=status.peer, state=State.AUTHORIZED, is_deleted=False)
        .exclude(pk=instance.pk)
        .values_list("pk", flat=True)
    )


def answer_offer(instance: Instance, offer: Mapping[str, Any]) -> dict[str, str] | None:
    """An SDP offer from the instance's client: the engine's answer when it plays the
    other side (a simulated contact), else None (the offer is relayed)."""
    transport = _transport(instance)
    try:
        return transport.call_answer_offer(offer=offer)
    except CallError as exc:
        raise CallRefused(str(exc)) from exc
    except NotSupportedYet as exc:
        raise CallsUnsupported(instance.engine) from exc
