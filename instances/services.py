"""Writes for accounts and instances. Every function here owns its transaction and
defers side effects (websocket pushes, tasks) to ``transaction.on_commit``."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from engines import registry, sink
from engines.contract import TransportError
from engines.events import StateEvent
from engines.registry import get_transport
from instances import events, settings_spec
from instances.dbclock import db_now
from instances.models import (
    Account,
    Instance,
    InstanceStateChange,
    SessionLease,
    State,
    new_api_token,
    new_secret,
)


class ServiceError(Exception):
    """A request that is valid on the wire but not possible now (reported in-band)."""


# --- Accounts and instances -----------------------------------------------------------


def ensure_account(user: AbstractBaseUser, name: str = "") -> Account:
    """The user's account, created on first use."""
    account, _ = Account.objects.get_or_create(user_id=user.pk, defaults={"name": name})
    return account


def _new_instance_id() -> int:
    # 10 digits like GREEN-API's ids; the prefix 7700 is ours (their hosts use the
    # first four digits, so clients that derive hosts from ids keep working).
    return 7700_000000 + secrets.randbelow(1_000_000)


def create_instance(
    *,
    account: Account,
    name: str = "",
    engine: str = "",
    settings_changes: dict[str, Any] | None = None,
    engine_options: Mapping[str, Any] | None = None,
) -> Instance:
    """Create an instance in ``notAuthorized`` state with GREEN-API's default settings
    (every flag "no"), overridden by ``settings_changes`` (stored form; ``InertSetting``
    for one the engine cannot honour).

    ``engine_options`` go to the engine (``engines.registry.configure``, e.g. the
    cloud engine's credentials; ``EngineOptionsInvalid`` when refused). An engine
    without live sessions is connected right after the commit
    (``engines.registry.connect``), so the answer already shows its state."""
    engine = engine or settings.RELAY_DEFAULT_ENGINE
    # ``UnknownEngine`` (a 400 at the views) for an engine this server cannot run.
    registry.check_installed(engine)
    check_settings_effective(engine, settings_changes or {})
    stored = settings_spec.default_settings()
    stored.update(settings_changes or {})
    for _ in range(20):
        try:
            with transaction.atomic():
                instance = Instance.objects.create(
                    id=_new_instance_id(),
                    account=account,
                    name=name,
                    engine=engine,
                    settings=stored,
                )
                if not instance.name:
                    instance.name = f"Instance {instance.id}"
                    instance.save(update_fields=["name"])
                SessionLease.objects.create(instance=instance)
                InstanceStateChange.objects.create(instance=instance, state=instance.state)
                registry.configure(instance, engine_options)
        except IntegrityError:
            continue  # id collision: draw again
        # Outside the transaction: the engine may call its network (seconds).
        registry.connect(instance)
        return instance
    raise RuntimeError("could not allocate an idInstance")


def delete_instance(instance: Instance) -> bool:
    """Soft-delete: the instance stops answering (403) and loses its lease.
    False if it was already deleted (two concurrent deletes: one wins)."""
    with transaction.atomic():
        deleted = Instance.objects.filter(pk=instance.pk, is_deleted=False).update(
            is_deleted=True, deleted_at=timezone.now(), state=State.NOT_AUTHORIZED, wid=""
        )
        SessionLease.objects.filter(instance_id=instance.pk).update(runner_id="", expires_at=None)
    return deleted == 1


def rename_instance(instance: Instance, name: str) -> None:
    instance.name = name
    instance.save(update_fields=["name"])


def update_api_token(instance: Instance) -> str:
    """Rotate the token; the old one stops working at once."""
    instance.api_token = new_api_token()
    instance.save(update_fields=["api_token"])
    return instance.api_token


def rotate_webhook_secret(instance: Instance) -> str:
    """A new signing secret for ``X-Webhook-Signature``; deliveries from now on are
    signed with it (an attempt already in flight keeps the old one)."""
    instance.webhook_secret = new_secret()
    instance.save(update_fields=["webhook_secret"])
    return instance.webhook_secret


def set_suspended(instance: Instance, suspended: bool) -> None:
    instance.is_suspended = suspended
    instance.save(update_fields=["is_suspended"])


# --- Settings ---------------------------------------------------------------------------


class InertSetting(ValueError):
    """A setting given a value (other than its default) that cannot have an effect on
    the instance's engine (``EngineSpec.inert_settings``); the 400's sentence."""

    def __init__(self, sentence: str, engine: str) -> None:
        super().__init__(sentence)
        self.engine = engine


def inert_setting(engine: str, changes: Mapping[str, Any]) -> tuple[str, str] | None:
    """(setting, refusal sentence) of the first setting in ``changes`` (stored form)
    that asks for an effect ``engine`` cannot have; None when all can. Its default
    (off) is always accepted: SDKs and the cabinet post every setting at once."""
    for name, value in changes.items():
        setting = settings_spec.BY_NAME.get(name)
        if setting is None or value == setting.default_for(engine):
            continue
        refused = registry.setting_refusal(engine, name)
        if refused:
            return name, refused
    return None


def check_settings_effective(engine: str, changes: Mapping[str, Any]) -> None:
    """``InertSetting`` when ``changes`` ask for an effect ``engine`` cannot have.
    Checked before anything is written, so a refused request stores nothing."""
    found = inert_setting(engine, changes)
    if found:
        raise InertSetting(found[1], engine)


def update_settings(instance: Instance, changes: dict[str, Any]) -> None:
    """Partial update of stored settings. Applied live: unlike GREEN-API there is no
    reboot and no five-minute wait; the next request and the next send see them.
    ``InertSetting`` (nothing written) for a value the engine cannot honour."""
    check_settings_effective(instance.engine, changes)
    with transaction.atomic():
        locked = Instance.objects.select_for_update(no_key=True).get(pk=instance.pk)
        merged = {**locked.settings, **changes}
        Instance.objects.filter(pk=instance.pk).update(settings=merged)
    instance.settings = merged


# --- State --------------------------------------------------------------------------


def change_state(
    instance: Instance,
    state: str,
    *,
    wid: str | None = None,
    profile_name: str | None = None,
    fence: tuple[str, int] | None = None,
    from_states: tuple[str, ...] = (),
    reason: str = "",
) -> bool:
    """Move an instance to ``state`` and record it in the state history (with the
    engine's ``reason`` when it gave one).

    ``fence=(runner_id, epoch)`` makes the write conditional on that runner still
    holding the lease at that epoch (session runners must pass it); ``from_states``
    makes it conditional on the current state (a compare-and-set, so two concurrent
    callers cannot both win). Returns False when a condition failed.
    """
    now = timezone.now()
    fields: dict[str, Any] = {"state": state, "state_changed_at": now}
    if wid is not None:
        fields["wid"] = wid
        fields["phone"] = wid.split("@", 1)[0] if wid else ""
    if profile_name is not None:
        fields["profile_name"] = profile_name
    with transaction.atomic():
        rows = Instance.objects.filter(pk=instance.pk)
        if from_states:
            rows = rows.filter(state__in=from_states)
        if fence is not None:
            runner_id, epoch = fence
            rows = rows.filter(
                lease__runner_id=runner_id, lease__epoch=epoch, lease__expires_at__gte=db_now()
            )
        if rows.update(**fields) != 1:
            return False
        phone = fields.get("phone", instance.phone)
        InstanceStateChange.objects.create(
            instance_id=instance.pk, state=state, phone=phone, reason=reason[:500], created_at=now
        )
        previous = instance.state
        for key, value in fields.items():
            setattr(instance, key, value)
        if previous != state:
            events.state_changed(instance.pk, state)
            # Journals record it (stateInstanceChanged), the send queue wakes on
            # ``authorized``: both consume the sink, which this layer sits below.
            sink.emit(instance, StateEvent(state=state, timestamp=now))
    return True


def reboot(instance: Instance) -> None:
    """Restart the engine session: the engine drops its connection, the session's
    lease is released so a runner opens a new session (a new epoch), and the
    instance is ``starting`` until that session is connected (``authorized``, or
    ``notAuthorized`` when no phone is linked), each step a stateInstanceChanged."""
    get_transport(instance).reboot()
    with transaction.atomic():
        change_state(instance, State.STARTING)
        SessionLease.objects.filter(instance_id=instance.pk).update(runner_id="", expires_at=None)
    # An engine without live sessions connects here (the cloud engine checks its
    # credentials again): no runner would take it past ``starting``.
    registry.connect(instance)


def logout(instance: Instance) -> bool:
    """Unlink the WhatsApp account; the instance needs a new QR scan or code. The
    engine is asked every time; True when something was undone (a linked device,
    a session, a pending pairing code), False when there was nothing to log out."""
    unlinked = get_transport(instance).logout(phone=instance.phone)
    changed = False
    if unlinked or instance.state != State.NOT_AUTHORIZED:
        changed = change_state(instance, State.NOT_AUTHORIZED, wid="", profile_name="")
    # A pending pairing code or registration is cancelled too.
    dropped = (
        Instance.objects.filter(pk=instance.pk)
        .exclude(pairing_code="", pairing_phone="")
        .update(pairing_code="", pairing_phone="", pairing_expires_at=None)
    )
    return unlinked or changed or dropped > 0


# --- Pairing code and SMS registration ------------------------------------------------


def request_pairing_code(instance: Instance, *, phone: str) -> str:
    """getAuthorizationCode: a code valid for ~2.5 minutes; instance must be unlinked."""
    if instance.state != State.NOT_AUTHORIZED:
        raise ServiceError("Instance has auth. You need to make log out")
    try:
        code = get_transport(instance).request_pairing_code(phone=phone)
    except TransportError as exc:
        if not exc.permanent:
            raise
        raise ServiceError(str(exc)) from exc
    Instance.objects.filter(pk=instance.pk).update(
        pairing_code=code,
        pairing_phone=phone,
        pairing_expires_at=timezone.now() + timedelta(seconds=settings.PAIRING_CODE_TTL_SECONDS),
    )
    return code


def start_authorization(instance: Instance, *, phone: str, method: str) -> None:
    """Register a number by SMS/voice code (regional docs): state ``pendingCode``."""
    if instance.state not in (State.NOT_AUTHORIZED, State.PENDING_CODE):
        raise ServiceError("already_registered")
    try:
        code = get_transport(instance).start_registration(phone=phone, method=method)
    except TransportError as exc:
        if not exc.permanent:
            raise
        raise ServiceError(str(exc)) from exc
    Instance.objects.filter(pk=instance.pk).update(
        pairing_code=code,
        pairing_phone=phone,
        pairing_expires_at=timezone.now() + timedelta(minutes=10),
    )
    change_state(instance, State.PENDING_CODE)


def send_authorization_code(instance: Instance, *, code: str) -> None:
    fresh = Instance.objects.get(pk=instance.pk)
    if fresh.state != State.PENDING_CODE or not fresh.pairing_code:
        raise ServiceError("no_pending_registration")
    if fresh.pairing_expires_at is None or fresh.pairing_expires_at < timezone.now():
        raise ServiceError("code_expired")
    if not secrets.compare_digest(code.replace("-", "").strip(), fresh.pairing_code):
        raise ServiceError("invalid_code")
    try:
        get_transport(fresh).complete_registration(phone=fresh.pairing_phone)
    except TransportError as exc:
        if not exc.permanent:
            raise
        raise ServiceError(str(exc)) from exc


def set_profile_picture(instance: Instance, *, data: bytes) -> str:
    """Set the linked account's picture; returns its URL."""
    if instance.state != State.AUTHORIZED or not instance.phone:
        raise ServiceError("instance account not authorized")
    url = get_transport(instance).set_profile_picture(phone=instance.phone, data=data)
    instance.avatar_url = url
    instance.save(update_fields=["avatar_url"])
    return url


