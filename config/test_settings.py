"""Test overrides only. Runs on SQLite + in-memory layer by default, and on
PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set (CI)."""

import os

# Tests (and the processes they start) run on PostgreSQL with DATABASE_URL set: give
# them a key of their own, never the public built-in one (config.settings refuses it).
os.environ.setdefault("SECRET_KEY", "relay-tests-only-4q2Jx0nH7cVbT9mLw3sKz8eRf5yUa1pGd6")

from config.settings import *  # noqa: E402, F403
from config.settings import REDIS_URL, VAR_DIR, env  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Unit tests run tasks inline; integration tests start real workers and turn this off.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
RATE_LIMITS_ENABLED = True
EMULATOR_STARTUP_SECONDS = 0.0
MEDIA_ROOT = VAR_DIR / "test-media"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# Each test process (xdist worker) has its own live spool, unless a test hands one
# to the subprocess it starts (RELAY_LIVE_SPOOL_DIR).
if not REDIS_URL and not env.str("RELAY_LIVE_SPOOL_DIR", default=""):
    LIVE_SPOOL_DIR = VAR_DIR / f"test-live-{os.getpid()}"
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "instances.spool_layer.SpoolChannelLayer", "CONFIG": {"spool_dir": str(LIVE_SPOOL_DIR)}}
    }
