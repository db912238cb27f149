"""Credentials at rest: Fernet (AES-128-CBC + HMAC-SHA256) with a key derived by HKDF
from ``CLOUD_CREDENTIALS_KEY``, or from ``SECRET_KEY`` when that is empty.

A value that no longer decrypts (the key changed) reads as empty, so the instance
shows "credentials unreadable" instead of crashing a page; the owner pastes them
again."""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models


@cache
def _fernet(material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"relay cloud credentials").derive(
        material.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def fernet() -> Fernet:
    return _fernet(settings.CLOUD_CREDENTIALS_KEY or settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return ""


def mask(value: str) -> str:
    """What may be shown of a secret after creation: its last four characters."""
    if not value:
        return ""
    return "…" + value[-4:] if len(value) > 8 else "…"


class EncryptedField(models.TextField):  # type: ignore[type-arg]
    """A text column stored encrypted; Python sees the plain value."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str:
        return decrypt(value or "")

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return encrypt(value) if value else ""
