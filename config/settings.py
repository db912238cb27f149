"""Relay settings: one env-driven module.

Embedded defaults (no environment at all) give a complete single-machine product:
SQLite, the in-memory channel layer, a filesystem Celery broker and the emulator
engine. Setting ``DATABASE_URL`` and ``REDIS_URL`` switches the same code to
PostgreSQL, Redis as Celery broker and ``channels_redis``.

Every secret may also be given as ``NAME_FILE`` (a path whose content is the value).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env.smart_cast = False


def _secret(name: str, default: str) -> str:
    """Read ``NAME`` or the file named by ``NAME_FILE``; fail loudly on a bad path."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return str(env.str(name, default=default))


def _given(name: str) -> bool:
    """Whether the environment sets ``NAME`` or ``NAME_FILE``."""
    return bool(os.environ.get(name) or os.environ.get(f"{name}_FILE"))


VAR_DIR = Path(env.str("RELAY_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)
# The built-in key is public (it is in this file), and so is .env.example's
# placeholder: either one lets anyone forge sessions, CSRF tokens and media links.
# They are accepted only by the embedded development default (see the check below).
DEV_SECRET_KEY = "relay-insecure-dev-key-change-me-in-production-0123456789"
INSECURE_SECRET_KEYS = frozenset({DEV_SECRET_KEY, "change-me-to-50-random-characters"})
SECRET_KEY = _secret("SECRET_KEY", DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally: works offline
    "channels",
    "instances",
    "engines",
    "engines.emulator",
    "engines.waweb",
    "messaging",
    "groups",
    "statuses",
    "journals",
    "dashboard",
    "engines.cloud",
]

MIDDLEWARE = [
    "instances.middleware.WireMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "instances.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "instances.middleware.OutageMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------
DATABASE_URL = _secret("DATABASE_URL", f"sqlite:///{VAR_DIR / 'relay.sqlite3'}")
DATABASES: dict[str, dict[str, Any]] = {"default": env.db_url_config(DATABASE_URL)}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web, worker and runner processes read while one writes;
    # IMMEDIATE transactions take the write lock up front, so two writers queue
    # on the busy timeout instead of failing with "database is locked" mid-way.
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file so that subprocesses (runners, workers) see the same data.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    _db["ENGINE"] = "django.db.backends.postgresql"
    # Persistent connections for WSGI/threads; the ASGI server gets a pool instead
    # (CONN_MAX_AGE under ASGI leaks one connection per request thread).
    if env.bool("DB_POOL", default=False):
        _db["CONN_MAX_AGE"] = 0
        _db["OPTIONS"] = {"pool": {"min_size": 2, "max_size": env.int("DB_POOL_SIZE", 10)}}
    else:
        _db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    _db["CONN_HEALTH_CHECKS"] = True

# The embedded development default: no database configured (SQLite under var/),
# what `make run` gives with no environment at all. Anything else is a deployment,
# and a deployment must not start with a public SECRET_KEY (DEBUG=true, a developer's
# own machine, may). `manage.py check --deploy` reports it too (relay.E001).
EMBEDDED_DEFAULT = not _given("DATABASE_URL")
if SECRET_KEY in INSECURE_SECRET_KEYS and not EMBEDDED_DEFAULT and not DEBUG:
    raise ImproperlyConfigured(
        "SECRET_KEY is the built-in development key (or .env.example's placeholder) but DATABASE_URL is set: "
        "set SECRET_KEY (or SECRET_KEY_FILE) to 50+ random characters, e.g. "
        '`python -c "import secrets; print(secrets.token_urlsafe(50))"`'
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = _db["ENGINE"] == "django.db.backends.postgresql"

# --- Redis, channel layer, Celery ------------------------------------------------
REDIS_URL = _secret("REDIS_URL", "")
# Without Redis: where live-page hints cross processes (instances.spool_layer).
LIVE_SPOOL_DIR = Path(env.str("RELAY_LIVE_SPOOL_DIR", default=str(VAR_DIR / "live")))

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    # In-memory, plus a spool directory that carries group messages from the worker
    # and runner processes of `make run` to the web process (instances.spool_layer).
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "instances.spool_layer.SpoolChannelLayer", "CONFIG": {"spool_dir": str(LIVE_SPOOL_DIR)}}
    }

# Django's cache (login throttling): Redis when configured, so every web process
# counts the same failures; otherwise per-process memory.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Without Redis the broker is kombu's filesystem transport: it needs no server,
# survives restarts (messages are files under var/broker) and works across the
# web, worker and runner processes of `make run`. See docs/operations.md.
_broker_dir = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 3600}
else:
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# Broker priorities (Redis: 0 is served first; kombu keeps one list per step of
# 0, 3, 6, 9 and a worker pops the lower steps first). Every task is 3 unless it
# says otherwise; the send drain's tasks (messaging.tasks, DRAIN_PRIORITY) are 0,
# so a drain leader never waits behind the webhook runs published before it (one to
# three per sent message: under send load, hundreds, seconds of no drain).
CELERY_TASK_DEFAULT_PRIORITY = 3
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Auth, i18n, static ------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2 when argon2-cffi is installed (hashes upgrade on the next login), else
# Django's PBKDF2. Old hashes of any listed hasher keep working.
PASSWORD_HASHERS = [
    *(["django.contrib.auth.hashers.Argon2PasswordHasher"] if importlib.util.find_spec("argon2") else []),
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# The cabinet (dashboard app) signs users in; the admin keeps its own login page.
LOGIN_URL = "/dashboard/login/"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "/dashboard/login/"
# Anyone may open an account unless DASHBOARD_SIGNUP=false (operators then create users).
DASHBOARD_SIGNUP = env.bool("DASHBOARD_SIGNUP", default=True)
# Login throttling: after LOGIN_MAX_FAILURES wrong passwords for one username from one
# address within LOGIN_LOCKOUT_SECONDS, that pair is locked out for the rest of the window.
LOGIN_MAX_FAILURES = env.int("LOGIN_MAX_FAILURES", default=5)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
# The same lockout guards /admin/login/ (dashboard.forms.ThrottledAdminLoginForm).
# Failed instance/partner authentications (401/403) per client: past AUTH_FAILURE_LIMIT
# within AUTH_FAILURE_WINDOW_SECONDS the client gets 429 (0 turns it off).
AUTH_FAILURE_LIMIT = env.int("AUTH_FAILURE_LIMIT", default=30)
AUTH_FAILURE_WINDOW_SECONDS = env.int("AUTH_FAILURE_WINDOW_SECONDS", default=60)
if AUTH_FAILURE_WINDOW_SECONDS <= 0:
    raise ImproperlyConfigured("AUTH_FAILURE_WINDOW_SECONDS must be positive")
# Every throttle keys on the client address. Behind a reverse proxy list its addresses
# or networks here (comma-separated): requests from them are attributed to the
# X-Forwarded-For entry the proxy added, so one attacker cannot lock everyone out.
TRUSTED_PROXIES = [
    str(ipaddress.ip_network(n.strip(), strict=False)) for n in env.list("TRUSTED_PROXIES", default=[]) if n.strip()
]
# Behind an HTTPS reverse proxy set SESSION_COOKIE_SECURE=true (and CSRF_COOKIE_SECURE,
# which defaults to it) and SECURE_PROXY_SSL_HEADER=true if the proxy sets X-Forwarded-Proto.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=SESSION_COOKIE_SECURE)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS (sent by SecurityMiddleware on HTTPS requests only): production behind TLS sets
# SECURE_HSTS_SECONDS (e.g. 31536000) once HTTPS works for good; 0 sends no header.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Content-Security-Policy for HTML pages (cabinet, admin, API docs), by
# instances.middleware.ContentSecurityPolicyMiddleware; empty sends none. See
# docs/operations.md for the policy the cabinet works with.
CONTENT_SECURITY_POLICY = env.str("CONTENT_SECURITY_POLICY", default="")
CONTENT_SECURITY_POLICY_REPORT_ONLY = env.bool("CONTENT_SECURITY_POLICY_REPORT_ONLY", default=False)

# Mail (password reset): printed to the console unless EMAIL_HOST is set.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = _secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=not EMAIL_USE_SSL)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Relay <relay@localhost>")
if EMAIL_USE_TLS and EMAIL_USE_SSL and EMAIL_HOST:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# GREEN-API caps JSON bodies at about 100 KB; bigger bodies get 413 from
# instances.middleware before any view runs.
MAX_JSON_BODY_BYTES = env.int("MAX_JSON_BODY_BYTES", default=100 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_JSON_BODY_BYTES
# The ASGI edge (instances.edge) refuses bodies before Django buffers them: /api/v1/
# bodies (JSON, event files as base64) over API_MAX_BODY_BYTES, and bodies of callers
# without a session cookie outside the APIs (login forms…) over ANONYMOUS_MAX_BODY_BYTES.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=16 * 1024 * 1024)
ANONYMOUS_MAX_BODY_BYTES = env.int("ANONYMOUS_MAX_BODY_BYTES", default=1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Media (files for sending: uploadFile, sendFileByUpload, sendFileByUrl) --------
# They live in the "files" storage, outside MEDIA_ROOT (which is served without
# checks), and are reachable only through signed /media/f/ links that expire.
MEDIA_MAX_BYTES = env.int("MEDIA_MAX_BYTES", default=100 * 1024 * 1024)
MEDIA_LINK_TTL_DAYS = env.int("MEDIA_LINK_TTL_DAYS", default=15)
# Budget for one URL fetch (connect, each read, and the whole download). Keep it well
# under the send queue's stuck-row timeout (120 s) so a slow fetch is never re-sent.
MEDIA_FETCH_TIMEOUT_SECONDS = env.float("MEDIA_FETCH_TIMEOUT_SECONDS", default=90.0)
MEDIA_FETCH_MAX_REDIRECTS = env.int("MEDIA_FETCH_MAX_REDIRECTS", default=5)
# SSRF guard (instances.ssrf): private, loopback, CGNAT… addresses are refused unless
# MEDIA_FETCH_ALLOW_PRIVATE (link-local/metadata stays refused) or the address is in
# MEDIA_FETCH_ALLOWED_NETWORKS (comma-separated CIDRs, e.g. "10.1.0.0/16,fd00::/8").
MEDIA_FETCH_ALLOW_PRIVATE = env.bool("MEDIA_FETCH_ALLOW_PRIVATE", default=False)
# /metrics is open unless one of these is set; then a scrape needs
# "Authorization: Bearer <METRICS_TOKEN>" or a client address in METRICS_ALLOWED_NETWORKS.
METRICS_TOKEN = _secret("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(n.strip(), strict=False))
    for n in env.list("METRICS_ALLOWED_NETWORKS", default=[])
    if n.strip()
]
# Both guards give one DNS lookup this long (getaddrinfo has no timeout of its own).
SSRF_DNS_TIMEOUT_SECONDS = env.float("SSRF_DNS_TIMEOUT_SECONDS", default=5.0)
MEDIA_FETCH_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(n.strip(), strict=False))
    for n in env.list("MEDIA_FETCH_ALLOWED_NETWORKS", default=[])
    if n.strip()
]
# MEDIA_STORAGE=local keeps files under MEDIA_FILES_ROOT; s3 uses django-storages
# (needs boto3) with the AWS_* variables; the bucket stays private.
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="local")
MEDIA_FILES_ROOT = Path(env.str("MEDIA_FILES_ROOT", default=str(VAR_DIR / "files")))
if MEDIA_STORAGE == "local":
    STORAGES["files"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_FILES_ROOT), "base_url": None},
    }
elif MEDIA_STORAGE == "s3":
    STORAGES["files"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "access_key": _secret("AWS_ACCESS_KEY_ID", "") or None,
            "secret_key": _secret("AWS_SECRET_ACCESS_KEY", "") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "location": env.str("AWS_LOCATION", default="files"),
            "default_acl": "private",
            "file_overwrite": False,
        },
    }
else:
    raise ImproperlyConfigured(f"MEDIA_STORAGE must be 'local' or 's3', not {MEDIA_STORAGE!r}")

# --- REST framework and OpenAPI ----------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "instances.http.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "instances.openapi.WireAutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Relay — GREEN-API compatible WhatsApp HTTP API",
    "DESCRIPTION": (
        "Self-hosted WhatsApp gateway speaking GREEN-API's REST API. Credentials are in "
        "the path: /waInstance{idInstance}/{method}/{apiTokenInstance}. Method names "
        "are case-insensitive. Endpoints under /api/v1/ are Relay extensions."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The cabinet's API console links each method to /api/docs/#/<section>/<method>.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True},
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "instances.openapi.add_async_views",
        "instances.openapi.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {"YesNoEnum": ["yes", "no"]},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Relay --------------------------------------------------------------------------
# Public base URLs printed in curl lines, urlFile links and the cabinet.
RELAY_API_URL = env.str("RELAY_API_URL", default="http://127.0.0.1:8000")
RELAY_MEDIA_URL = env.str("RELAY_MEDIA_URL", default=RELAY_API_URL)
# Engine for new instances: emulator (default), waweb, cloud.
RELAY_DEFAULT_ENGINE = env.str("RELAY_DEFAULT_ENGINE", default="emulator")

# Cloud engine (Meta's WhatsApp Business Cloud API, docs/engines/cloud.md). Every Graph
# call goes to {CLOUD_API_BASE_URL}/{CLOUD_API_VERSION}/...; tests point the base at
# a local fake Graph server.
_cloud_base: str = env.str("CLOUD_API_BASE_URL", default="https://graph.facebook.com")
CLOUD_API_BASE_URL = _cloud_base.rstrip("/")
CLOUD_API_VERSION = env.str("CLOUD_API_VERSION", default="v23.0")
if not re.fullmatch(r"v\d+\.\d+", CLOUD_API_VERSION):
    raise ImproperlyConfigured(f"CLOUD_API_VERSION must look like v23.0, not {CLOUD_API_VERSION!r}")
CLOUD_API_TIMEOUT_SECONDS = env.float("CLOUD_API_TIMEOUT_SECONDS", default=30.0)
# Meta's default throughput of one business number (130429 past it), and its pacing
# of messages to one user (131056 past about one every 6 s): Relay keeps below both.
CLOUD_API_MESSAGES_PER_SECOND = env.float("CLOUD_API_MESSAGES_PER_SECOND", default=80.0)
CLOUD_API_RECIPIENT_INTERVAL_SECONDS = env.float("CLOUD_API_RECIPIENT_INTERVAL_SECONDS", default=6.0)
# A webhook delivery that fails to be taken in this many times (the beat retries it
# every RELAY_RECOVER_INTERVAL_SECONDS) is set aside in CloudInbox, with its error,
# so the instance's later deliveries are not held behind it forever.
CLOUD_INBOX_MAX_ATTEMPTS = env.int("CLOUD_INBOX_MAX_ATTEMPTS", default=20)
# Key material for the Cloud API credentials stored in the database (access token,
# app secret, verify token). Empty: derived from SECRET_KEY, so rotating SECRET_KEY
# then makes stored credentials unreadable (set this one to rotate them apart).
CLOUD_CREDENTIALS_KEY = _secret("CLOUD_CREDENTIALS_KEY", "")

# Rate limits (API.md §4). RATE_LIMITS_ENABLED=false turns them off;
# RATE_LIMIT_OVERRIDES="sendMessage=100,getSettings=5" changes single methods
# (0 = unlimited).
RATE_LIMITS_ENABLED = env.bool("RATE_LIMITS_ENABLED", default=True)
RATE_LIMIT_OVERRIDES = env.dict("RATE_LIMIT_OVERRIDES", cast={"value": float}, default={})

# Send queue crash safety: a row claimed longer ago than SEND_STUCK_AFTER_SECONDS is
# re-queued (transports are idempotent per idMessage); a worker's per-instance drain
# lock expires after SEND_DRAIN_LOCK_SECONDS without renewal; the recovery job runs
# every RELAY_RECOVER_INTERVAL_SECONDS.
SEND_STUCK_AFTER_SECONDS = env.float("SEND_STUCK_AFTER_SECONDS", default=120.0)
SEND_DRAIN_LOCK_SECONDS = env.float("SEND_DRAIN_LOCK_SECONDS", default=60.0)
# Unpaced messages (delay 0, no files) leave the queue in batches of up to this many:
# one claim, one engine call and one status write per batch.
SEND_BATCH_SIZE = env.int("SEND_BATCH_SIZE", default=200)
# Immediate wake-ups are published as sweeps over up to this many instances (one
# task drains them together; several tasks let several worker threads share them).
SEND_SWEEP_SIZE = env.int("SEND_SWEEP_SIZE", default=100)
# While a drain leader keeps finding work (sustained load), it waits this long before
# each further sweep so the sweep carries more messages; an idle system's first
# sweep never waits.
SEND_SWEEP_LINGER_MS = env.float("SEND_SWEEP_LINGER_MS", default=50.0)
# Every hand-over of a message to an engine is logged (messaging.SendAttempt, the
# evidence for "sent exactly once"); an hourly job deletes rows older than this.
SEND_ATTEMPT_RETENTION_DAYS = env.int("SEND_ATTEMPT_RETENTION_DAYS", default=7)
RELAY_RECOVER_INTERVAL_SECONDS = env.float("RELAY_RECOVER_INTERVAL_SECONDS", default=30.0)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")

# The sendMessage fast lane (messaging/fastlane.py): PostgreSQL only.
RELAY_FASTLANE = env.bool("RELAY_FASTLANE", default=True)
RELAY_FASTLANE_POOL_SIZE = env.int("RELAY_FASTLANE_POOL_SIZE", default=8)

# Notifications stay in the queue this long (GREEN-API: 24 h).
NOTIFICATION_RETENTION_SECONDS = env.int("NOTIFICATION_RETENTION_SECONDS", default=86_400)
# Journals (chat history, calls) are kept for all time unless this many days is set;
# a beat job (journals.retention) then deletes older entries.
JOURNAL_RETENTION_DAYS = env.int("JOURNAL_RETENTION_DAYS", default=0)

# --- Webhooks (journals.webhooks; docs/webhooks.md) ----------------------------------
# One POST waits at most WEBHOOK_TIMEOUT_SECONDS for the answer (GREEN-API: 180 s);
# connecting gives up sooner. A failed attempt is retried after the next value of
# WEBHOOK_RETRY_SCHEDULE (seconds; the last one repeats) ± WEBHOOK_RETRY_JITTER, until
# WEBHOOK_GIVE_UP_SECONDS after the notification was created (or redelivered).
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=180.0)
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env.float("WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_RETRY_SCHEDULE = [float(s) for s in env.list("WEBHOOK_RETRY_SCHEDULE", default=["5", "15", "60"])]
if not WEBHOOK_RETRY_SCHEDULE or min(WEBHOOK_RETRY_SCHEDULE) <= 0:
    raise ImproperlyConfigured("WEBHOOK_RETRY_SCHEDULE must list positive numbers of seconds")
WEBHOOK_RETRY_JITTER = env.float("WEBHOOK_RETRY_JITTER", default=0.2)
WEBHOOK_GIVE_UP_SECONDS = env.float("WEBHOOK_GIVE_UP_SECONDS", default=86_400.0)
# "Bearer": Authorization: Bearer <webhookUrlToken>; "raw": the token as the whole value.
WEBHOOK_AUTH_SCHEME = env.str("WEBHOOK_AUTH_SCHEME", default="Bearer")
if WEBHOOK_AUTH_SCHEME.lower() not in ("bearer", "raw"):
    raise ImproperlyConfigured("WEBHOOK_AUTH_SCHEME must be 'Bearer' or 'raw'")
# One task run delivers at most this many notifications of one instance, or for this
# long, then yields the worker to other instances (and re-enqueues itself).
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=500)
WEBHOOK_BATCH_SECONDS = env.float("WEBHOOK_BATCH_SECONDS", default=10.0)
# The beat job that wakes instances with due deliveries (after a lost wake-up, a
# broker outage or a worker crash) runs this often.
WEBHOOK_RECOVER_INTERVAL_SECONDS = env.float("WEBHOOK_RECOVER_INTERVAL_SECONDS", default=15.0)
# The attempt log is pruned by that job after this many days (0 keeps it forever).
WEBHOOK_ATTEMPT_RETENTION_DAYS = env.int("WEBHOOK_ATTEMPT_RETENTION_DAYS", default=7)
# SSRF guard (instances.ssrf), as for media fetches: private, loopback, CGNAT…
# targets are refused unless WEBHOOK_ALLOW_PRIVATE (link-local/metadata stays
# refused) or the address is in WEBHOOK_ALLOWED_NETWORKS (comma-separated CIDRs).
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)
WEBHOOK_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(n.strip(), strict=False))
    for n in env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
    if n.strip()
]

# Celery workers lower their own CPU priority by this much (os.nice) when they start.
# On one machine (make run, a single host) the web process then gets the CPU first
# when everything is busy: API answers stay fast while the paced, retrying
# background work (drain, webhooks) waits a little. 0 keeps the inherited priority.
# Containers in their own cgroups (compose, Kubernetes) share CPU by cgroup, so it
# changes little there.
WORKER_NICENESS = env.int("WORKER_NICENESS", default=5)

# Session runners: a lease is lost when its heartbeat is older than the TTL.
RUNNER_LEASE_TTL_SECONDS = env.float("RUNNER_LEASE_TTL_SECONDS", default=15.0)
RUNNER_TICK_SECONDS = env.float("RUNNER_TICK_SECONDS", default=1.0)
RUNNER_CAPACITY = env.int("RUNNER_CAPACITY", default=5000)
# Live-session command channel (engines.channel): how long a caller waits for the
# session's answer, and how old a listener's heartbeat may be before callers are told
# at once that nobody would answer.
ENGINE_COMMAND_TIMEOUT_SECONDS = env.float("ENGINE_COMMAND_TIMEOUT_SECONDS", default=20.0)
ENGINE_LISTENER_STALE_SECONDS = env.float("ENGINE_LISTENER_STALE_SECONDS", default=10.0)
# waweb engine (engines.waweb): where whatsmeow keeps its keys (empty: this database
# on PostgreSQL, one SQLite file per instance under var/waweb/ otherwise), the proxy
# behind proxyInstance's "system proxy" (empty: none), and how long a session process
# gets between SIGTERM and SIGKILL.
WAWEB_STORE_URL = _secret("WAWEB_STORE_URL", "")
WAWEB_PROXY_URL = _secret("WAWEB_PROXY_URL", "")
WAWEB_STOP_GRACE_SECONDS = env.float("WAWEB_STOP_GRACE_SECONDS", default=5.0)
# How long a waweb session keeps each message's original (engines.waweb.models.
# WawebOriginal): quoting, forwarding and readChat need it; older ones cannot be
# quoted or forwarded as they were.
WAWEB_KEEP_MESSAGES_DAYS = env.int("WAWEB_KEEP_MESSAGES_DAYS", default=30)
# Honest health (engines.waweb.health): a session that says it is connected asks
# WhatsApp for a round trip after WAWEB_PROBE_AFTER_SECONDS without an event, and one
# with no proof of traffic for WAWEB_SILENT_AFTER_SECONDS is "silent": its runner
# restarts it. whatsmeow pings every 20-30 s and gives up on a dead socket after
# about 3 minutes itself, so the default leaves it room first.
WAWEB_PROBE_AFTER_SECONDS = env.float("WAWEB_PROBE_AFTER_SECONDS", default=60.0)
WAWEB_SILENT_AFTER_SECONDS = env.float("WAWEB_SILENT_AFTER_SECONDS", default=180.0)
if not 0 < WAWEB_PROBE_AFTER_SECONDS < WAWEB_SILENT_AFTER_SECONDS:
    raise ImproperlyConfigured(
        "WAWEB_PROBE_AFTER_SECONDS must be above 0 and below WAWEB_SILENT_AFTER_SECONDS "
        "(a probe must have time to answer before a session counts as silent)"
    )

# Emulator timing.
EMULATOR_QR_ROTATE_SECONDS = env.int("EMULATOR_QR_ROTATE_SECONDS", default=20)
EMULATOR_STARTUP_SECONDS = env.float("EMULATOR_STARTUP_SECONDS", default=1.0)
# Simulated contacts acknowledge messages: delivered after, then read after (seconds).
EMULATOR_DELIVERED_AFTER_SECONDS = env.float("EMULATOR_DELIVERED_AFTER_SECONDS", default=1.0)
EMULATOR_READ_AFTER_SECONDS = env.float("EMULATOR_READ_AFTER_SECONDS", default=3.0)
# Simulated viewers of a status: delivered after, then viewed after (seconds from posting).
EMULATOR_STATUS_DELIVERED_AFTER_SECONDS = env.float("EMULATOR_STATUS_DELIVERED_AFTER_SECONDS", default=2.0)
EMULATOR_STATUS_READ_AFTER_SECONDS = env.float("EMULATOR_STATUS_READ_AFTER_SECONDS", default=5.0)

# Calls: a simulated contact takes a call by its rule after this long; any call
# still ringing after EMULATOR_CALL_RING_SECONDS ends unanswered.
EMULATOR_CALL_ANSWER_AFTER_SECONDS = env.float("EMULATOR_CALL_ANSWER_AFTER_SECONDS", default=2.0)
EMULATOR_CALL_RING_SECONDS = env.float("EMULATOR_CALL_RING_SECONDS", default=45.0)


def _ice_servers(raw: str) -> list[dict[str, Any]]:
    """CALLS_ICE_SERVERS: a JSON list of {"urls": [...], "username"?, "credential"?}
    (what callsGetIceServers answers). Fails loudly on anything else."""
    try:
        value = json.loads(raw or "[]")
    except ValueError as exc:
        raise ImproperlyConfigured(f"CALLS_ICE_SERVERS is not JSON: {exc}") from exc
    if not isinstance(value, list):
        raise ImproperlyConfigured("CALLS_ICE_SERVERS must be a JSON list")
    servers = []
    for entry in value:
        urls = entry.get("urls") if isinstance(entry, dict) else None
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
            raise ImproperlyConfigured("CALLS_ICE_SERVERS entries need urls: a non-empty list of strings")
        servers.append({"urls": urls, "username": entry.get("username"), "credential": entry.get("credential")})
    return servers


CALLS_ICE_SERVERS = _ice_servers(_secret("CALLS_ICE_SERVERS", "[]"))
PAIRING_CODE_TTL_SECONDS = env.int("PAIRING_CODE_TTL_SECONDS", default=150)
QR_WEBSOCKET_WINDOW_SECONDS = env.int("QR_WEBSOCKET_WINDOW_SECONDS", default=100)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
