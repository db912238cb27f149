"""Where whatsmeow keeps an account's keys (its "store"), and erasing them.

On PostgreSQL the store is a PostgreSQL database (``WAWEB_STORE_URL``, by default
the product's own database, whose ``whatsmeow_*`` tables it creates), so a restart or
a move to another runner resumes without a new scan. On the embedded default it is
one SQLite file per instance under ``var/waweb/`` (several accounts in one SQLite
file lock each other out). ``logout`` and instance deletion erase the keys: they
*are* the linked device."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from urllib.parse import quote

from django.conf import settings

from engines.waweb.models import WawebSession

log = logging.getLogger(__name__)


def store_name(instance_id: int) -> str:
    """The first argument of neonize's ``NewClient``: a PostgreSQL DSN, or a path."""
    if settings.WAWEB_STORE_URL:
        return str(settings.WAWEB_STORE_URL)
    db = settings.DATABASES["default"]
    if "postgresql" in db["ENGINE"]:
        user = quote(str(db.get("USER") or "postgres"))
        password = f":{quote(str(db['PASSWORD']))}" if db.get("PASSWORD") else ""
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or 5432
        sslmode = (db.get("OPTIONS") or {}).get("sslmode", "disable")
        return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}?sslmode={sslmode}"
    return str(sqlite_path(instance_id))


def sqlite_path(instance_id: int) -> Path:
    folder = Path(settings.VAR_DIR) / "waweb"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{instance_id}.sqlite3"


def erase_keys(instance_id: int, device_jid: str) -> None:
    """Forget the linked device's keys (after logout, LoggedOut or deletion)."""
    name = store_name(instance_id)
    if not name.startswith("postgres"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                Path(name + suffix).unlink()
        return
    if not device_jid:
        return
    import psycopg  # the store may be another database than Django's

    try:
        with psycopg.connect(name, connect_timeout=5) as conn:
            exists = conn.execute("SELECT to_regclass('whatsmeow_device')").fetchone()
            if exists and exists[0]:
                # Every other whatsmeow table references the device ON DELETE CASCADE.
                conn.execute("DELETE FROM whatsmeow_device WHERE jid = %s", (device_jid,))
    except psycopg.Error:
        log.exception("waweb: could not erase the keys of instance %s", instance_id)
        raise


def forget_device(instance_id: int) -> bool:
    """Erase the linked device of an instance whose session is not running (logout
    with no session, deletion). True when there was one."""
    row = WawebSession.objects.filter(instance_id=instance_id).first()
    device = row.device_jid if row is not None else ""
    erase_keys(instance_id, device)
    if row is not None:
        WawebSession.objects.filter(instance_id=instance_id).update(
            device_jid="", push_name="", qr_text="", qr_png="", pairing_code=""
        )
    return bool(device)
