"""``manage.py bootstrap_demo``: a demo account and two authorized emulator instances.

Idempotent: running it again prints the same credentials. Used by ``make run``.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from engines.emulator.transport import ensure_phone
from instances import services
from instances.models import Instance, State

DEMO_USER = "demo"
DEMO_PHONES = [("79990000001", "Relay Demo One"), ("79990000002", "Relay Demo Two")]


class Command(BaseCommand):
    help = "Create the demo user and two authorized emulator instances; print their credentials."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            user = user_model.objects.filter(username=DEMO_USER).first()
            # The generated password is kept in var/ (mode 0600) so every run can print it.
            secret_file = settings.VAR_DIR / "demo-password.txt"
            password = secret_file.read_text().strip() if secret_file.exists() else ""
            if user is None:
                password = secrets.token_urlsafe(9)
                secret_file.write_text(password)
                secret_file.chmod(0o600)
                user = user_model.objects.create_user(
                    username=DEMO_USER, email="demo@relay.local", password=password, is_staff=True, is_superuser=True
                )
            account = services.ensure_account(user, "Demo account")
            for index, (phone, name) in enumerate(DEMO_PHONES, start=1):
                label = f"Demo {index}"
                instance = Instance.objects.filter(account=account, name=label, is_deleted=False).first()
                if instance is None:
                    instance = services.create_instance(account=account, name=label, engine="emulator")
                if instance.state != State.AUTHORIZED:
                    ensure_phone(phone, name)
                    services.change_state(instance, State.AUTHORIZED, wid=f"{phone}@c.us", profile_name=name)
                    # Demo instances poll (no webhook); a short delay keeps demos snappy.
                    services.update_settings(
                        instance,
                        {"delaySendMessagesMilliseconds": 500, "incomingWebhook": True, "outgoingWebhook": True,
                         "outgoingAPIMessageWebhook": True, "stateWebhook": True},
                    )
        api = settings.RELAY_API_URL.rstrip("/")
        out = self.stdout
        out.write("")
        out.write("=" * 72)
        out.write("Relay is ready. Cabinet/admin login: " + DEMO_USER + (f" / {password}" if password else " (`manage.py changepassword demo` to set a password)"))
        out.write(f"Partner token: {account.partner_token}")
        for instance in Instance.objects.filter(account=account, is_deleted=False).order_by("created_at"):
            out.write("")
            out.write(f"{instance.name}: idInstance={instance.id} apiTokenInstance={instance.api_token} ({instance.state}, {instance.wid or 'no phone'})")
            out.write(f"  curl {api}/waInstance{instance.id}/getStateInstance/{instance.api_token}")
        out.write("")
        out.write(f"API docs: {api}/api/docs/   Health: {api}/healthz")
        out.write("=" * 72)
