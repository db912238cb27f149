"""The emulator sandbox panel: simulated contacts, "send as contact" for every
typeMessage the emulator supports, calls (offer, then how they end), poll votes,
read receipts, blocks and forced states. Emulator instances only (404 otherwise)."""

from __future__ import annotations

from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard import forms, sandbox
from dashboard.views import instance_view, is_htmx, page, sandbox_of
from engines.sandbox import Sandbox, SandboxError
from instances.models import Instance, State
from journals.models import Call, Direction
from messaging import calls

DEFAULT_KIND = "textMessage"
RINGING_LIMIT = 5


def _kind_param(request: HttpRequest) -> str:
    # ?kind= from links; send-kind= from the picker (HTMX, or the no-JS button).
    return str(request.GET.get("kind") or request.GET.get("send-kind") or DEFAULT_KIND)


def _event_context(box: Sandbox, kind_name: str, **extra: Any) -> dict[str, Any]:
    kind = sandbox.kind_by_name(box, kind_name) or sandbox.kind_by_name(box, DEFAULT_KIND)
    return {"kind": kind, "values": {}, "errors": {}, **extra}


def _sandbox(request: HttpRequest, instance: Instance, status: int = 200, **context: Any) -> HttpResponse:
    box = sandbox_of(instance)
    ringing = list(
        Call.objects.filter(instance=instance, direction=Direction.INCOMING, status="offer").order_by("-timestamp")[
            :RINGING_LIMIT
        ]
    )
    base: dict[str, Any] = {
        "contacts": box.contacts(instance),
        "contact_form": forms.ContactForm(initial={"registered": True}, prefix="contact"),
        "call_form": forms.CallForm(prefix="call"),
        "state_form": forms.ForceStateForm(prefix="state", choices=box.forceable_states),
        "paired": instance.state == State.AUTHORIZED and bool(instance.phone),
        "kinds": sandbox.kinds(box),
        "who_choices": sandbox.WHO,
        "who": "contact",
        "send": {"phone": "", "name": ""},
        "recent": sandbox.recent_messages(box, instance),
        "polls": sandbox.sent_polls(box, instance),
        "ringing": ringing,
        "call": call_panel(box, instance),
        "dial_form": forms.DialForm(prefix="dial"),
        "call_outcomes": (("pickUp", "Pick up"), ("hungUp", "Caller hangs up"), ("declined", "Decline")),
        **_event_context(box, _kind_param(request)),
    }
    base.update(context)
    response = page(request, "dashboard/sandbox.html", instance, "sandbox", **base)
    if status != 200 or any(f.errors for f in base.values() if isinstance(f, django_forms.Form)):
        response.status_code = status if status != 200 else 422
    return response


def _done(request: HttpRequest, instance: Instance, text: str, kind: str = "") -> HttpResponseRedirect:
    messages.success(request, text)
    response = redirect("dashboard:sandbox", instance.id)
    if kind and kind != DEFAULT_KIND:
        response["Location"] += f"?kind={kind}"
    return response


@instance_view
def sandbox_page(request: HttpRequest, instance: Instance) -> HttpResponse:
    box = sandbox_of(instance)
    if is_htmx(request) and request.GET.get("partial") == "fields":
        context = _event_context(box, _kind_param(request), instance=instance)
        return render(
            request, "dashboard/_sandbox_fields.html", {"recent": sandbox.recent_messages(box, instance), **context}
        )
    if request.GET.get("partial") == "call":
        return render(request, "dashboard/_call_panel.html", {"instance": instance, "call": call_panel(box, instance)})
    return _sandbox(request, instance)


@instance_view
@require_POST
def sandbox_contact(request: HttpRequest, instance: Instance) -> HttpResponse:
    box = sandbox_of(instance)
    form = forms.ContactForm(request.POST, prefix="contact")
    if not instance.phone:
        return _sandbox(request, instance, status=409, error="Pair the instance first: contacts belong to its phone.")
    if not form.is_valid():
        return _sandbox(request, instance, contact_form=form)
    try:
        box.add_contact(
            instance, phone=form.cleaned_data["phone"], name=form.cleaned_data["name"],
            registered=form.cleaned_data["registered"], script=form.cleaned_data["script"],
            call_rule=form.cleaned_data["call_rule"] or None,
        )  # fmt: skip
    except SandboxError as exc:
        return _sandbox(request, instance, status=409, error=f"{exc}: add it without changing its settings.")
    return _done(request, instance, f"Contact +{form.cleaned_data['phone']} saved.")


@instance_view
@require_POST
def sandbox_send(request: HttpRequest, instance: Instance) -> HttpResponse:
    """Send as contact (or as the linked phone): any typeMessage of the control API."""
    box = sandbox_of(instance)
    post = request.POST
    kind = sandbox.kind_by_name(box, str(post.get("send-kind", "")))
    who = "phone" if post.get("send-who") == "phone" else "contact"
    send = {"phone": str(post.get("send-phone", "")), "name": str(post.get("send-name", ""))}
    values = {k[2:]: v for k, v in post.items() if k.startswith("f-")}
    errors: dict[str, str] = {}
    if kind is None:
        errors["kind"] = "Pick a message type from the list."
        kind = sandbox.kind_by_name(box, DEFAULT_KIND)
    assert kind is not None
    try:
        phone = forms.clean_phone(send["phone"])
    except django_forms.ValidationError as exc:
        errors["phone"] = " ".join(exc.messages)
        phone = ""
    fields: dict[str, Any] = {}
    try:
        fields = sandbox.event_fields(box, kind, post, request.FILES)
    except sandbox.EventInputError as exc:
        errors.update({k or "kind": v for k, v in exc.errors.items()})
    context = {"kind": kind, "values": values, "errors": errors, "who": who, "send": send}
    if errors:
        return _sandbox(request, instance, status=422, **context)
    try:
        id_message = sandbox.send_event(box, instance, who=who, phone=phone, name=send["name"], kind=kind, fields=fields)
    except SandboxError as exc:
        return _sandbox(request, instance, status=409, error=str(exc).capitalize() + ".", **context)
    sender = f"+{phone}" if who == "contact" else "Your phone"
    return _done(
        request, instance,
        f"{sender} sent a {kind.label.lower()} ({id_message}). It arrives in a moment.", kind.name,
    )


@instance_view
@require_POST
def sandbox_call(request: HttpRequest, instance: Instance) -> HttpResponse:
    box = sandbox_of(instance)
    form = forms.CallForm(request.POST, prefix="call")
    if not form.is_valid():
        return _sandbox(request, instance, call_form=form)
    try:
        box.contact_calls(instance, phone=form.cleaned_data["phone"], outcome=form.cleaned_data["outcome"])
    except SandboxError as exc:
        return _sandbox(request, instance, status=409, call_form=form, error=str(exc).capitalize() + ".")
    ends = "" if form.cleaned_data["outcome"] else " It keeps ringing until you end it below."
    return _done(request, instance, f"+{form.cleaned_data['phone']} is calling.{ends}")


def call_panel(box: Sandbox, instance: Instance) -> dict[str, Any] | None:
    """The instance's call as callsState shows it, for the live call panel (None
    when the instance cannot call now: not paired)."""
    try:
        status = calls.calls_state(instance)
    except (calls.CallRefused, calls.CallsUnsupported):
        return None
    return {
        "state": status.state,
        "peer": status.peer,
        "name": status.name or "",
        "reason": status.reason or "",
        "id_call": status.id_call,
        "simulated": bool(status.peer) and box.is_simulated(status.peer),
    }


@instance_view
@require_POST
def sandbox_dial(request: HttpRequest, instance: Instance) -> HttpResponse:
    """The instance dials a contact (callsDial through the same service)."""
    sandbox_of(instance)
    form = forms.DialForm(request.POST, prefix="dial")
    if not form.is_valid():
        return _sandbox(request, instance, dial_form=form)
    try:
        calls.calls_dial(instance, chat_id=f"{form.cleaned_data['phone']}@c.us")
    except (calls.CallRefused, calls.CallsUnsupported) as exc:
        return _sandbox(request, instance, status=409, dial_form=form, error=str(exc).capitalize() + ".")
    return _done(request, instance, f"Calling +{form.cleaned_data['phone']}.")


INSTANCE_CALL_ACTIONS = {
    "accept": (calls.calls_accept, "Call accepted."),
    "reject": (calls.calls_reject, "Call rejected."),
    "hangup": (calls.calls_hang_up, "Hung up."),
}


@instance_view
@require_POST
def sandbox_call_act(request: HttpRequest, instance: Instance) -> HttpResponse:
    """The instance (as callsAccept / callsReject / callsHangUp would) or the simulated
    contact on the other end acts on the current call."""
    box = sandbox_of(instance)
    action = str(request.POST.get("action", ""))
    try:
        if action.startswith("contact-"):
            box.contact_acts_on_call(instance, action=action.removeprefix("contact-"))
            return _done(request, instance, "The contact acted on the call.")
        if action not in INSTANCE_CALL_ACTIONS:
            return _sandbox(request, instance, status=409, error="Unknown call action.")
        service, text = INSTANCE_CALL_ACTIONS[action]
        service(instance)
    except (calls.CallRefused, calls.CallsUnsupported, SandboxError) as exc:
        return _sandbox(request, instance, status=409, error=str(exc).capitalize() + ".")
    return _done(request, instance, text)


@instance_view
@require_POST
def sandbox_call_end(request: HttpRequest, instance: Instance) -> HttpResponse:
    """A ringing call ends: picked up, hung up by the caller, or declined."""
    box = sandbox_of(instance)
    outcome = str(request.POST.get("outcome", ""))
    try:
        box.call_ends(instance, id_call=str(request.POST.get("id_call", "")), outcome=outcome)
    except SandboxError as exc:
        return _sandbox(request, instance, status=409, error=str(exc).capitalize() + ".")
    return _done(request, instance, f"The call ended ({outcome}).")


@instance_view
@require_POST
def sandbox_vote(request: HttpRequest, instance: Instance) -> HttpResponse:
    """The poll's recipient votes (pollUpdateMessage): the chosen options, or none
    to retract."""
    box = sandbox_of(instance)
    poll = next((p for p in sandbox.sent_polls(box, instance, limit=50) if p.id_message == request.POST.get("poll")), None)
    if poll is None:
        return _sandbox(request, instance, status=409, error="That poll is not one of this instance's recent polls.")
    votes = [v for v in request.POST.getlist("votes") if v in poll.options]
    try:
        box.contact_sends(
            instance, phone=poll.voter, kind="pollUpdateMessage", fields={"stanzaId": poll.id_message, "votes": votes}
        )
    except SandboxError as exc:
        return _sandbox(request, instance, status=409, error=str(exc).capitalize() + ".")
    chosen = ", ".join(votes) if votes else "nothing (vote retracted)"
    return _done(request, instance, f"+{poll.voter} voted for {chosen}.")


@instance_view
@require_POST
def sandbox_read(request: HttpRequest, instance: Instance) -> HttpResponse:
    """Receipts now: the contact reads what the instance sent it (delivered + read)."""
    box = sandbox_of(instance)
    try:
        phone = forms.clean_phone(str(request.POST.get("phone", "")))
        count = box.contact_reads(instance, phone=phone)
    except django_forms.ValidationError as exc:
        return _sandbox(request, instance, status=422, error=" ".join(exc.messages))
    except SandboxError as exc:
        return _sandbox(request, instance, status=409, error=str(exc).capitalize() + ".")
    if not count:
        return _done(request, instance, f"+{phone} has nothing unread from you.")
    return _done(request, instance, f"+{phone} read {count} message{'s' if count != 1 else ''}: the ticks turn blue.")


@instance_view
@require_POST
def sandbox_block(request: HttpRequest, instance: Instance) -> HttpResponse:
    box = sandbox_of(instance)
    try:
        phone = forms.clean_phone(str(request.POST.get("phone", "")))
        box.contact_blocks(instance, phone=phone)
    except django_forms.ValidationError as exc:
        return _sandbox(request, instance, status=422, error=" ".join(exc.messages))
    except SandboxError as exc:
        return _sandbox(request, instance, status=409, error=str(exc).capitalize() + ".")
    return _done(request, instance, f"+{phone} blocked this number.")


@instance_view
@require_POST
def sandbox_state(request: HttpRequest, instance: Instance) -> HttpResponse:
    box = sandbox_of(instance)
    form = forms.ForceStateForm(request.POST, prefix="state", choices=box.forceable_states)
    if not form.is_valid():
        return _sandbox(request, instance, state_form=form)
    try:
        box.force_state(instance, form.cleaned_data["state"])
    except SandboxError as exc:
        return _sandbox(request, instance, status=409, state_form=form, error=str(exc).capitalize() + ".")
    return _done(request, instance, f"State forced to {form.cleaned_data['state']}.")
