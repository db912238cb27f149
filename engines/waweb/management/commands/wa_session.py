"""``manage.py wa_session --instance N --epoch E``: one waweb account's session
process (started by the runner that holds N's lease; see engines.waweb.supervisor)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run one waweb account's WhatsApp session (started by a session runner)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--instance", type=int, required=True)
        parser.add_argument("--epoch", type=int, required=True)
        parser.add_argument("--runner-id", default="")
        parser.add_argument("--parent", type=int, default=0, help="The runner's pid: exit if it is gone.")

    def handle(self, *args: Any, **options: Any) -> None:
        # neonize configures the root logger at import: set ours first.
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s waweb[%(process)d] %(levelname)s %(message)s"
        )
        from engines.waweb.session import run  # why: after logging is set (neonize configures it at import)

        code = run(options["instance"], options["epoch"], options["runner_id"], options["parent"] or None)
        sys.stdout.flush()
        sys.stderr.flush()
        # Never wait for neonize's non-daemon threads (a dial can block for a minute).
        os._exit(code)
