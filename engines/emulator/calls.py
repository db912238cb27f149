"""Voice calls on the emulated network (API.md §9.13), as the phones see them.

One ``EmuCall`` row per call: ``ringing`` -> ``active`` -> ``ended`` (or ``ringing``
-> ``ended`` when it is rejected, cancelled or not answered). A phone is in at most
one call at a time; writers lock both phones' ``EmuPhone`` rows in phone order
before they look at or change calls, and every transition is a conditional UPDATE
on the call's state, so two processes never move one call twice.

Each side learns what happened the way it learns a message: an ``EmuSignal`` row to
its phone, which the session runner that leases the instance turns into the
journal row (``journals.Call``) and, for the callee, the ``incomingCall``
notifications (offer, then pickUp / hungUp / declined). The caller's signals carry
``direction: outgoing`` (journal only; GREEN-API has no outgoing-call webhook).

Simulated contacts (phones no instance is linked to) take calls by their
``EmuPhone.call_rule`` (answer, reject, stay silent) after
``EMULATOR_CALL_ANSWER_AFTER_SECONDS``; any call still ringing after
``EMULATOR_CALL_RING_SECONDS`` ends unanswered. ``step`` applies both; runners call
it each tick. No media flows: the emulator answers WebRTC signalling
(``answer_sdp``) so a client's state machine completes, and nothing more.

These functions are the emulator engine's I/O: they write the network tables only.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from engines.contract import CallError, CallStatus
from engines.emulator.models import (
    CallRule,
    EmuCall,
    EmuCallState,
    EmuContact,
    EmuPhone,
    EmuSignal,
    SignalKind,
)
from instances.models import Engine, Instance

# Why a call ended (``reason`` of callsState and the callsRtc state frames).
HANGUP = "hangup"  # an answered call was hung up
REJECTED = "rejected"  # the callee declined
CANCELLED = "cancelled"  # the caller hung up before an answer
NO_ANSWER = "no-answer"  # nobody answered in EMULATOR_CALL_RING_SECONDS
BUSY = "busy"  # the callee was in another call

# A call that ended this recently still explains the ``idle`` state (its reason).
REASON_SECONDS = 60


def new_id_call() -> str:
    return secrets.token_hex(16).upper()


def current(phone: str) -> EmuCall | None:
    """The phone's call that has not ended, if any."""
    return (
        EmuCall.objects.filter(Q(caller=phone) | Q(callee=phone))
        .exclude(state=EmuCallState.ENDED)
        .order_by("-created_at", "-id")
        .first()
    )


def status(phone: str, *, now: datetime | None = None) -> CallStatus:
    """callsState of the phone: its current call, or ``idle`` with the reason the
    last call ended (if it ended less than a minute ago)."""
    call = current(phone)
    if call is None:
        last = (
            EmuCall.objects.filter(Q(caller=phone) | Q(callee=phone)).order_by("-created_at", "-id").first()
        )
        moment = now or timezone.now()
        recent = last is not None and last.ended_at is not None and last.ended_at > moment - timedelta(seconds=REASON_SECONDS)
        return CallStatus(state="idle", reason=last.reason if recent and last is not None else None)
    peer = call.callee if call.caller == phone else call.caller
    if call.state == EmuCallState.ACTIVE:
        state = "on-call"
    else:
        state = "out-call" if call.caller == phone else "inc-call"
    return CallStatus(state=state, id_call=call.id_call, peer=peer, name=_name(phone, peer))


def _name(owner: str, peer: str) -> str | None:
    """How the owner's phone shows the peer: its contact name, else the profile name."""
    saved = (
        EmuContact.objects.filter(owner__phone=owner, contact__phone=peer).values_list("name", flat=True).first()
    )
    if saved:
        return saved
    return EmuPhone.objects.filter(phone=peer).values_list("name", flat=True).first() or None


def _lock(*phones: str) -> None:
    """Serialise call changes of these phones (rows locked in phone order)."""
    list(EmuPhone.objects.select_for_update().filter(phone__in=sorted(set(phones))).order_by("phone"))


def _signal(to_phone: str, from_phone: str, call: EmuCall, status_: str, **extra: Any) -> None:
    EmuSignal.objects.create(
        kind=SignalKind.CALL,
        from_phone=from_phone,
        to_phone=to_phone,
        payload={"idCall": call.id_call, "status": status_, **extra},
    )


def _tell(call: EmuCall, status_: str, **extra: Any) -> None:
    """Both sides' journals hear it; only the callee's is an incomingCall."""
    _signal(call.callee, call.caller, call, status_, **extra)
    _signal(call.caller, call.callee, call, status_, direction="outgoing", **extra)


def dial(caller: str, callee: str) -> EmuCall:
    """``caller`` rings ``callee``. Raises ``CallError`` when the caller is already
    in a call or the callee has no WhatsApp; a callee in another call makes the call
    end at once as ``busy`` (the caller's journal records it declined)."""
    if caller == callee:
        raise CallError("a phone cannot call itself")
    with transaction.atomic():
        peer = EmuPhone.objects.filter(phone=callee).first()
        if peer is None or not peer.registered:
            raise CallError(f"+{callee} has no WhatsApp account")
        _lock(caller, callee)
        if current(caller) is not None:
            raise CallError("a call is already in progress")
        call = EmuCall.objects.create(id_call=new_id_call(), caller=caller, callee=callee)
        if current_other(callee, call) is not None:
            now = timezone.now()
            EmuCall.objects.filter(pk=call.pk).update(state=EmuCallState.ENDED, reason=BUSY, ended_at=now)
            _signal(caller, callee, call, "offer", direction="outgoing")
            _signal(caller, callee, call, "declined", direction="outgoing")
        else:
            _tell(call, "offer")
    call.refresh_from_db()
    return call


def current_other(phone: str, call: EmuCall) -> EmuCall | None:
    return (
        EmuCall.objects.filter(Q(caller=phone) | Q(callee=phone))
        .exclude(state=EmuCallState.ENDED)
        .exclude(pk=call.pk)
        .first()
    )


def accept(phone: str) -> EmuCall:
    """The phone answers the call ringing it."""
    with transaction.atomic():
        _lock(phone)
        call = current(phone)
        if call is None or call.callee != phone or call.state != EmuCallState.RINGING:
            raise CallError("there is no incoming call to accept")
        _answer(call)
    return call


def reject(phone: str) -> EmuCall:
    """The phone declines the call ringing it."""
    with transaction.atomic():
        _lock(phone)
        call = current(phone)
        if call is None or call.callee != phone or call.state != EmuCallState.RINGING:
            raise CallError("there is no incoming call to reject")
        _end(call, REJECTED)
    return call


def hang_up(phone: str) -> EmuCall:
    """The phone ends its call: hangs up an answered one, cancels its own ringing
    call, or declines one ringing it."""
    with transaction.atomic():
        _lock(phone)
        call = current(phone)
        if call is None:
            raise CallError("there is no call to hang up")
        if call.state == EmuCallState.ACTIVE:
            _end(call, HANGUP)
        else:
            _end(call, CANCELLED if call.caller == phone else REJECTED)
    return call


def _answer(call: EmuCall) -> bool:
    now = timezone.now()
    if not EmuCall.objects.filter(pk=call.pk, state=EmuCallState.RINGING).update(
        state=EmuCallState.ACTIVE, answered_at=now
    ):
        return False
    call.state, call.answered_at = EmuCallState.ACTIVE, now
    _tell(call, "pickUp")
    return True


def _end(call: EmuCall, reason: str) -> bool:
    """End a ringing or active call; False if it had already ended."""
    now = timezone.now()
    was = call.state
    if not EmuCall.objects.filter(pk=call.pk, state=was).update(state=EmuCallState.ENDED, reason=reason, ended_at=now):
        return False
    call.state, call.reason, call.ended_at = EmuCallState.ENDED, reason, now
    if was == EmuCallState.ACTIVE and call.answered_at is not None:
        duration = max(0, int((now - call.answered_at).total_seconds()))
        _tell(call, "pickUp", duration=duration, ended=True)
    elif reason == REJECTED:
        _tell(call, "declined")
    else:
        _tell(call, "hungUp")
    return True


# --- Simulated contacts and the control API ---------------------------------------------


def is_simulated(phone: str) -> bool:
    """No instance is linked to the phone: the emulator plays its user."""
    return not Instance.objects.filter(phone=phone, engine=Engine.EMULATOR, is_deleted=False).exists()


def contact_dials(contact: str, owner: str) -> EmuCall:
    """A simulated contact calls ``owner`` (the control API's ``calls``). Unlike an
    instance, a contact cannot dial a phone that is already in a call."""
    with transaction.atomic():
        _lock(contact, owner)
        if current(owner) is not None:
            raise CallError("the phone is in another call")
        if current(contact) is not None:
            raise CallError(f"+{contact} is in another call")
        call = EmuCall.objects.create(id_call=new_id_call(), caller=contact, callee=owner)
        _tell(call, "offer")
    return call


def settle(id_call: str, owner: str, outcome: str) -> EmuCall:
    """The control API ends or answers a call between a contact and ``owner``:
    ``pickUp`` (the owner's phone answers a ringing call), ``declined`` (it rejects),
    ``hungUp`` (the contact hangs up, before or after an answer)."""
    with transaction.atomic():
        call = EmuCall.objects.filter(id_call=id_call).filter(Q(caller=owner) | Q(callee=owner)).first()
        if call is None:
            raise CallError(f"call {id_call} is unknown")
        _lock(call.caller, call.callee)
        call.refresh_from_db()
        if call.state == EmuCallState.ENDED:
            raise CallError(f"call {id_call} has already ended")
        if outcome == "hungUp":
            _end(call, HANGUP if call.state == EmuCallState.ACTIVE else CANCELLED)
        elif call.state != EmuCallState.RINGING:
            raise CallError(f"call {id_call} was already answered")
        elif outcome == "pickUp":
            _answer(call)
        else:
            _end(call, REJECTED)
    return call


def step(now: datetime | None = None) -> list[EmuCall]:
    """Simulated contacts take the calls ringing them by their rule, and calls
    nobody answers end. Returns the calls that changed (callers re-read state)."""
    moment = now or timezone.now()
    changed: list[EmuCall] = []
    ringing = list(EmuCall.objects.filter(state=EmuCallState.RINGING).order_by("id")[:500])
    if not ringing:
        return changed
    answer_before = moment - timedelta(seconds=settings.EMULATOR_CALL_ANSWER_AFTER_SECONDS)
    ring_before = moment - timedelta(seconds=settings.EMULATOR_CALL_RING_SECONDS)
    rules = dict(EmuPhone.objects.filter(phone__in={c.callee for c in ringing}).values_list("phone", "call_rule"))
    linked = set(
        Instance.objects.filter(
            phone__in={c.callee for c in ringing}, engine=Engine.EMULATOR, is_deleted=False
        ).values_list("phone", flat=True)
    )
    for call in ringing:
        with transaction.atomic():
            if call.created_at <= ring_before:
                done = _end(call, NO_ANSWER)
            elif call.callee in linked or call.created_at > answer_before:
                continue
            elif rules.get(call.callee) == CallRule.ANSWER:
                done = _answer(call)
            elif rules.get(call.callee) == CallRule.REJECT:
                done = _end(call, REJECTED)
            else:
                continue  # silent: it rings until the caller gives up or the timeout
        if done:
            changed.append(call)
    return changed


# --- Signalling ---------------------------------------------------------------------------


def answer_sdp(offer: Mapping[str, Any]) -> dict[str, str]:
    """The emulated phone's SDP answer to a WebRTC offer: every offered media section
    accepted with its first codec, direction ``inactive`` (no media will flow),
    fresh ICE credentials and a DTLS fingerprint. Enough for a client's signalling
    state machine to complete; no ICE candidate follows. Raises ``CallError`` on
    something that is not an SDP offer."""
    sdp = offer.get("sdp") if isinstance(offer, Mapping) else None
    if offer.get("type") != "offer" or not isinstance(sdp, str) or "m=" not in sdp:
        raise CallError("offer must be {type: 'offer', sdp: '...'} with at least one media section")
    lines = [line.strip() for line in sdp.replace("\r\n", "\n").split("\n") if line.strip()]
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
    ufrag = secrets.token_hex(4)
    pwd = secrets.token_hex(12)
    digest = hashlib.sha256(secrets.token_bytes(32)).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    mids: list[str] = []
    body: list[str] = []
    for index, section in enumerate(sections):
        parts = section[0][2:].split()
        if len(parts) < 4:
            raise CallError("offer has a malformed media line")
        kind, _, proto, formats = parts[0], parts[1], parts[2], parts[3:]
        mid = next((a[6:] for a in section if a.startswith("a=mid:")), str(index))
        mids.append(mid)
        chosen = formats[0]
        body += [f"m={kind} 9 {proto} {chosen}", "c=IN IP4 0.0.0.0", f"a=mid:{mid}"]
        body += [a for a in section if a.startswith((f"a=rtpmap:{chosen} ", f"a=fmtp:{chosen} "))]
        if "a=rtcp-mux" in section:
            body.append("a=rtcp-mux")
        body += [
            f"a=ice-ufrag:{ufrag}",
            f"a=ice-pwd:{pwd}",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:active",
            "a=inactive",
            "a=end-of-candidates",
        ]
    head = ["v=0", f"o=- {secrets.randbelow(10**12)} 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    if any(line.startswith("a=group:BUNDLE") for line in lines):
        head.append("a=group:BUNDLE " + " ".join(mids))
    return {"type": "answer", "sdp": "\r\n".join(head + body) + "\r\n"}
