"""Writes of the cloud engine: credentials (on creation), the credentials check that
sets the instance's state (creation, reboot), and what Meta's webhooks report."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from engines.cloud import graph
from engines.cloud.crypto import mask
from engines.cloud.models import CloudAccount
from engines.registry import EngineFact, EngineOptionsInvalid
from instances.models import Instance, State
from instances.services import change_state

log = logging.getLogger(__name__)

FIELDS = ("phoneNumberId", "accessToken", "appSecret", "verifyToken")
PHONE_NUMBER_ID = re.compile(r"\d{1,64}")


def configure(instance: Instance, options: Mapping[str, Any]) -> None:
    """Store a new instance's credentials (createInstance's ``cloud`` field, the
    cabinet's form), inside the creating transaction. ``verifyToken`` may be left
    out: a random one is made (the cabinet shows it, to paste in Meta's settings)."""
    cleaned = check_credentials(options)
    CloudAccount.objects.create(
        instance=instance,
        phone_number_id=cleaned["phoneNumberId"],
        access_token=cleaned["accessToken"],
        app_secret=cleaned["appSecret"],
        verify_token=cleaned["verifyToken"] or secrets.token_urlsafe(24),
    )


def check_credentials(options: Mapping[str, Any]) -> dict[str, str]:
    """The four fields as strings, or ``EngineOptionsInvalid`` naming what is wrong."""
    if not isinstance(options, Mapping) or not options:
        raise EngineOptionsInvalid(
            "the cloud engine needs 'cloud': {phoneNumberId, accessToken, appSecret, verifyToken}"
        )
    unknown = sorted(set(options) - set(FIELDS))
    if unknown:
        raise EngineOptionsInvalid(f"'cloud.{unknown[0]}' is not allowed")
    cleaned: dict[str, str] = {}
    for name in FIELDS:
        value = options.get(name, "")
        if not isinstance(value, str):
            raise EngineOptionsInvalid(f"'cloud.{name}' must be a string")
        value = value.strip()
        if not value and name != "verifyToken":
            raise EngineOptionsInvalid(f"'cloud.{name}' is required")
        if len(value) > 1000:
            raise EngineOptionsInvalid(f"'cloud.{name}' length must be less than or equal to 1000 characters long")
        cleaned[name] = value
    if not PHONE_NUMBER_ID.fullmatch(cleaned["phoneNumberId"]):
        raise EngineOptionsInvalid("'cloud.phoneNumberId' must be the numeric id of the number in WhatsApp Manager")
    return cleaned


def connect(instance: Instance) -> None:
    """Check the credentials with ``GET /{phone_number_id}``: the instance becomes
    ``authorized`` as ``<display digits>@c.us``, or stays (becomes) ``notAuthorized``
    with Meta's reason in ``CloudAccount.problem`` and the state history. Graph
    failures are states here, never exceptions."""
    account = CloudAccount.objects.filter(instance_id=instance.pk).first()
    now = timezone.now()
    if account is None or not account.access_token:
        problem = "no readable credentials: enter them again in the cabinet"
        info: dict[str, Any] = {}
    else:
        try:
            info = graph.call(
                "GET",
                account.phone_number_id,
                account.access_token,
                params={"fields": "display_phone_number,verified_name,quality_rating"},
            )
            problem = ""
        except graph.GraphError as exc:
            info = {}
            problem = refusal_text(exc)
    digits = re.sub(r"\D", "", str(info.get("display_phone_number", "")))
    if not problem and not digits:
        problem = "Meta did not tell this number's display_phone_number"
    with transaction.atomic():
        if account is not None:
            CloudAccount.objects.filter(pk=account.pk).update(
                problem=problem[:500],
                checked_at=now,
                display_phone_number=digits or account.display_phone_number,
                verified_name=str(info.get("verified_name", "")) or account.verified_name,
            )
        if problem:
            log.warning("cloud instance %s not authorized: %s", instance.pk, problem)
            change_state(instance, State.NOT_AUTHORIZED, reason=problem)
        else:
            change_state(
                instance, State.AUTHORIZED, wid=f"{digits}@c.us", profile_name=str(info.get("verified_name", ""))
            )


def refusal_text(exc: graph.GraphError) -> str:
    """Meta's refusal of the credentials in a person's words, then Meta's own."""
    if exc.status == 0:
        return f"Meta's Graph API could not be reached ({exc.details or exc.message})"
    if exc.code == graph.TOKEN_INVALID or exc.status == 401:
        return f"Meta refused the access token: {exc.message or exc.title} (code {exc.code})"
    if exc.status == 404 or exc.code == 100:
        return f"Meta does not know this phoneNumberId for this token: {exc.message or exc.title} (code {exc.code})"
    return f"Meta answered HTTP {exc.status}: {exc.message or exc.title} (code {exc.code})"


def callback_url(instance: Instance) -> str:
    return settings.RELAY_API_URL.rstrip("/") + reverse("cloud-webhook", args=[instance.pk])


def describe(instance: Instance) -> list[EngineFact]:
    """The cabinet's view of a cloud instance: what to paste into Meta's app settings
    (callback URL, verify token), the number, the masked secrets, the last check."""
    account = CloudAccount.objects.filter(instance_id=instance.pk).first()
    if account is None:
        return [EngineFact("Credentials", "none stored: delete this instance and create it again", problem=True)]
    facts = [
        EngineFact("Callback URL", callback_url(instance), copy=True,
                   help="Meta app → WhatsApp → Configuration → Webhook: Callback URL; subscribe to 'messages'."),
        EngineFact("Verify token", account.verify_token, copy=True, help="Paste it beside the callback URL."),
        EngineFact("Phone number ID", account.phone_number_id),
        EngineFact("Display number", account.display_phone_number or "not checked yet"),
        EngineFact("Access token", mask(account.access_token) or "unreadable: enter the credentials again"),
        EngineFact("App secret", mask(account.app_secret) or "unreadable: enter the credentials again"),
    ]
    if account.problem:
        facts.append(EngineFact("Last check", account.problem, problem=True,
                                help="Fix it in Meta's settings, then Reboot the instance to check again."))
    elif account.checked_at:
        facts.append(EngineFact("Last check", f"credentials accepted at {account.checked_at:%Y-%m-%d %H:%M} UTC"))
    return facts
