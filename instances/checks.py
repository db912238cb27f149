"""System checks of Relay's own settings (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register


@register(Tags.security, deploy=True)
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A deployment never signs with the public built-in key or .env.example's
    placeholder (config.settings refuses to start with them outside the embedded
    development default; this reports it wherever ``check --deploy`` runs)."""
    if settings.SECRET_KEY in settings.INSECURE_SECRET_KEYS:
        return [
            Error(
                "SECRET_KEY is Relay's built-in development key (or .env.example's placeholder), which is public.",
                hint="Set SECRET_KEY (or SECRET_KEY_FILE) to 50+ random characters.",
                id="relay.E001",
            )
        ]
    return []
