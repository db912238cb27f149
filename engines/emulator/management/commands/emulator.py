"""``manage.py emulator``: drive the emulated network from a shell.

  manage.py emulator scan <idInstance> <phone> [--name NAME]
  manage.py emulator confirm-code <idInstance> <code>
  manage.py emulator set-state <idInstance> <state>
  manage.py emulator add-contact <idInstance> <phone> [--name NAME] [--unregistered] [--script echo]
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from engines.emulator import pairing
from engines.emulator.phones import PhoneClaimed
from engines.emulator.services import FORCEABLE_STATES, add_simulated_contact
from instances import services
from instances.models import Engine, Instance


class Command(BaseCommand):
    help = "Control the emulated WhatsApp network (scan QR, confirm codes, force states, add contacts)."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        scan = sub.add_parser("scan")
        scan.add_argument("id_instance", type=int)
        scan.add_argument("phone")
        scan.add_argument("--name", default="")
        code = sub.add_parser("confirm-code")
        code.add_argument("id_instance", type=int)
        code.add_argument("code")
        state = sub.add_parser("set-state")
        state.add_argument("id_instance", type=int)
        state.add_argument("state", choices=[str(s) for s in FORCEABLE_STATES])
        contact = sub.add_parser("add-contact")
        contact.add_argument("id_instance", type=int)
        contact.add_argument("phone")
        contact.add_argument("--name", default="")
        contact.add_argument("--unregistered", action="store_true")
        contact.add_argument("--script", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        instance = Instance.objects.filter(pk=options["id_instance"], is_deleted=False).first()
        if instance is None or instance.engine != Engine.EMULATOR:
            raise CommandError("no such emulator instance")
        try:
            action = options["action"]
            if action == "scan":
                pairing.link_phone(instance, phone=options["phone"].lstrip("+"), name=options["name"])
            elif action == "confirm-code":
                pairing.confirm_pairing_code(instance, code=options["code"])
            elif action == "set-state":
                pairing.set_state_for_testing(instance, options["state"])
            elif action == "add-contact":
                if not instance.phone:
                    raise CommandError("pair the instance first")
                add_simulated_contact(
                    account_id=instance.account_id,
                    owner_phone=instance.phone,
                    phone=options["phone"].lstrip("+"),
                    name=options["name"],
                    registered=not options["unregistered"],
                    script=options["script"],
                )
        except (services.ServiceError, PhoneClaimed) as exc:
            raise CommandError(str(exc)) from exc
        instance.refresh_from_db()
        self.stdout.write(f"{instance.id}: {instance.state} {instance.wid}")
