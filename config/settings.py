"""Settings for the terminal, read from the environment through typed helpers (core.env).

Two ways to run:
- standalone (default): SQLite under var/, no Redis, an in-memory channel layer, Celery in-process.
- full stack: DATABASE_URL points at PostgreSQL and REDIS_URL at Redis (channel layer, cache, Celery).
DJANGO_ENV=production turns on the deployment hardening checked by ``manage.py check --deploy``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from csp.constants import NONE, SELF

from config import keys
from core.env import (
    EnvError,
    env_bool,
    env_choice,
    env_database,
    env_int,
    env_list,
    env_networks,
    env_redis_url,
    env_str,
    redact_redis_url,
    redis_url_has_password,
    redis_url_is_local,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")

DJANGO_ENV = env_choice("DJANGO_ENV", "development", ("development", "production", "test"))
PRODUCTION = DJANGO_ENV == "production"
DEBUG = env_bool("DEBUG", default=False)

# Secrets: required in production, generated once under var/ elsewhere (config/keys.py).
SECRET_KEY = keys.secret_key(production=PRODUCTION, var_dir=VAR_DIR)
BROKER_ENCRYPTION_KEYS, BROKER_ENCRYPTION_KEY_ID = keys.broker_keys(production=PRODUCTION, var_dir=VAR_DIR)
# Which key provider seals new secrets (core/sealing.py): the local keyring above, or AWS KMS envelope
# encryption (infra/kms.py) under SEALING_KMS_KEY_ID (a key id, ARN or alias/...). Texts of either
# provider keep opening while it is configured; docs/runbooks/key-rotation.md moves between them.
SEALING_BACKEND = env_choice("SEALING_BACKEND", "local", ("local", "kms"))
SEALING_KMS_KEY_ID = env_str("SEALING_KMS_KEY_ID") or None
if SEALING_BACKEND == "kms" and not SEALING_KMS_KEY_ID:
    raise EnvError("SEALING_KMS_KEY_ID", "", "a KMS key id, ARN or alias/name (required when SEALING_BACKEND=kms)")
SEALING_KMS_REGION = env_str("SEALING_KMS_REGION") or None  # default: boto3's (AWS_REGION, the instance's)
SEALING_KMS_ENDPOINT_URL = env_str("SEALING_KMS_ENDPOINT_URL") or None  # a VPC endpoint, or a local KMS in tests
SEALING_KMS_DATA_KEY_SECONDS = env_int("SEALING_KMS_DATA_KEY_SECONDS", 3600, minimum=60, maximum=7 * 86400)
SEALING_KMS_CACHE_SIZE = env_int("SEALING_KMS_CACHE_SIZE", 1024, minimum=1, maximum=1_000_000)
SEALING_KMS_CACHE_SECONDS = env_int("SEALING_KMS_CACHE_SECONDS", 300, minimum=0, maximum=86400)
# A retired key is refused by every process within this many seconds of being retired.
SEALING_RETIRED_CACHE_SECONDS = env_int("SEALING_RETIRED_CACHE_SECONDS", 30, minimum=0, maximum=3600)
# Beat's rotation of every sealed field onto the current key (infra.tasks.rotate_keys).
KEY_ROTATION_INTERVAL_SECONDS = env_int("KEY_ROTATION_INTERVAL_SECONDS", 3600, minimum=60, maximum=7 * 86400)
KEY_ROTATION_BATCH_SIZE = env_int("KEY_ROTATION_BATCH_SIZE", 500, minimum=1, maximum=100_000)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise EnvError("ALLOWED_HOSTS", "", "a comma-separated list of host names (required when DJANGO_ENV=production)")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "django_htmx",
    "template_partials",
    "channels",
    "ninja",
    "guardian",
    "infra",
    "config",
    "terminal",
    "accounts",
    "brokers",
    "paper",
    "kite",
    "families.angel",
    "families.noren",
    "families.dhan",
    "families.upstox",
    "families.xts",
    "families.fyers",
    "orders",
    "rms",
    "marketdata",
    "strategies",
    "compliance",
    "alerts",
    "audit",
    "retention",
    "auditlog",
    # Two-factor sign-in (TOTP plus single-use backup codes), brute-force lockout, CSP headers.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "core.client_ip.TrustedProxyMiddleware",  # first: the client address and scheme, from trusted proxies only
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.middleware.NoStoreMiddleware",
    "core.request_guard.RequestGuardMiddleware",  # NUL bytes: 400 nul_byte before any view or query
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "accounts.auth_cache.AuthenticationMiddleware",  # Django's, the user read through the cache
    "auditlog.middleware.AuditlogMiddleware",  # records the signed-in user as the actor of model changes
    "accounts.auth_cache.OTPMiddleware",  # django-otp's, the verified device read through the cache
    "accounts.middleware.SessionExpiryMiddleware",
    "accounts.middleware.RequireOTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a lockout into the lockout response
    "core.database_unavailable.DatabaseUnavailableMiddleware",  # a lost database connection: 503, not 500
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
                "terminal.context_processors.broker_sessions",
                "compliance.context_processors.report_access",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------------------
DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'terminal.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets readers run while the single writer commits; IMMEDIATE avoids lock upgrades mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
# DATABASE_POOL_SIZE > 0 turns on Django's PostgreSQL connection pool (psycopg-pool). Under ASGI
# (Daphne) each request's sync code runs in its own thread, and per-thread persistent connections
# piled up until PostgreSQL refused clients under load (bench/orders.py, 32 clients); the pool avoids
# that, at the price of requests waiting up to the pool timeout when the database is unreachable.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0, minimum=0)
if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_SIZE,
        "timeout": 2,
    }
# Requests whose Python one web process runs at once (infra/request_slots.py): the others wait
# for a slot without using CPU. A process runs one thread's Python at a time, so more request threads
# only add GIL hand-overs at every round trip; capacity comes from processes (WEB_CONCURRENCY). A
# request waiting on a network broker gives its slot up for the call.
WEB_THREADS = env_int("WEB_THREADS", 2, minimum=1, maximum=64)
# Server-side parameter binding: psycopg sends parameters apart from the SQL instead of quoting them
# into it in Python, which costs the web and worker processes less CPU per statement (about 25 us of
# an audit append's 100 us on the client). DDL takes no bound parameters: build it from literals.
# Prepared statements: a statement run DATABASE_PREPARE_THRESHOLD times on a connection is prepared
# there, and PostgreSQL then skips parsing and planning it (the order path runs the same ~19 statements
# for every order; measured in bench/orders.py). Django turns them off by default for transaction-mode
# poolers (PgBouncer before 1.21); the deployment files connect directly. 0 turns them off.
DATABASE_PREPARE_THRESHOLD = env_int("DATABASE_PREPARE_THRESHOLD", 5, minimum=0)
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = env_bool(
        "DATABASE_SERVER_SIDE_BINDING", default=True
    )
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = DATABASE_PREPARE_THRESHOLD or None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis: channel layer, cache and Celery broker ------------------------------------------------
REDIS_URL = env_redis_url("REDIS_URL")
# In production Redis holds sessions, the channel layer and Celery's queue: it must ask for a
# password, unless it is reached over a local socket and REDIS_ALLOW_NO_PASSWORD says so.
_REDIS_LOCAL_OPT_OUT = env_bool("REDIS_ALLOW_NO_PASSWORD", default=False) and redis_url_is_local(REDIS_URL or "")
if PRODUCTION and REDIS_URL and not redis_url_has_password(REDIS_URL) and not _REDIS_LOCAL_OPT_OUT:
    raise EnvError(
        "REDIS_URL",
        redact_redis_url(REDIS_URL),
        "a URL with a password (redis://:password@host:6379/0, rediss:// across hosts) when DJANGO_ENV=production;"
        " REDIS_ALLOW_NO_PASSWORD=true is accepted only for a unix:// socket or a loopback address",
    )
STANDALONE = REDIS_URL is None

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # A receive blocks in BZPOPMIN for channels_redis's 5 s; redis-py's own read timeout is also 5 s
            # by default, and when it fires first the consumer that was receiving dies with a TimeoutError
            # (every 5 s in every web process while nothing is sent). The read must outlast the wait.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}], "capacity": 1000, "expiry": 30},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "infra.redis_cache.RedisCache",  # one connection pool per process
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "terminal",
            "OPTIONS": {"socket_timeout": 1, "socket_connect_timeout": 1},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "terminal"}}

# --- Celery (configured from these CELERY_* names by config/celery.py) --------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = "Asia/Kolkata"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# /api/health fails the beat check after this long without beat's heartbeat (every 30 s): in full stack
# always, in standalone mode when run_terminal runs beat in-process; a process younger than this passes.
CELERY_BEAT_STALE_SECONDS = env_int("CELERY_BEAT_STALE_SECONDS", 90, minimum=60)

# --- Auth -----------------------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first, so a locked-out login never reaches the password check
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",  # per-account grants (docs/rbac.md)
]
ANONYMOUS_USER_NAME = None  # guardian: no object permissions for anonymous users
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# The client address is the connection's peer unless the peer is one of TRUSTED_PROXIES; only then
# is X-Forwarded-For read, from the right (core.client_ip, applied first in MIDDLEWARE).
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES", [])

# Brute force (django-axes): lock a username from one client address after AXES_FAILURE_LIMIT
# failures, for AXES_COOLOFF_HOURS. Behind nginx the client address is the one nginx saw, so one
# attacker cannot lock everybody out, nor rotate a forged address to escape the lockout.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_HOURS", 1, minimum=1)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_VERBOSE = False
# Failed credentials per client address (accounts.failures): the first of a window is audited, the
# rest aggregated into one auth.denied_repeated event; past the limit the address gets 429.
AUTH_FAILURE_WINDOW_SECONDS = env_int("AUTH_FAILURE_WINDOW_SECONDS", 60, minimum=1, maximum=3600)
AUTH_FAILURE_LIMIT = env_int("AUTH_FAILURE_LIMIT", 20, minimum=1)
AUTH_FAILURE_KEY_PREFIX = env_str("AUTH_FAILURE_KEY_PREFIX", "terminal:authfail") or "terminal:authfail"

# Sessions end after 30 minutes idle or 12 hours in all (ASVS 4.0 3.3.2), whichever comes first.
SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 30 * 60, minimum=60)
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_SECONDS", 12 * 60 * 60, minimum=60)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
# Sessions are read through the cache (Redis in the full stack, shared by every process; local memory
# in standalone mode, whose one process is the only reader) and written through to the database, so
# a request reads its session without a database query. Signing out deletes both copies.
SESSION_ENGINE = "accounts.sessions"  # cached_db that keeps serving from the database while the cache is down
# The session's user and second-factor device are read through the cache too (accounts.auth_cache):
# saving or deleting either drops its entry at once; a change made around the model (QuerySet.update,
# raw SQL) is seen within this many seconds. 0 turns the cache off.
AUTH_CACHE_SECONDS = env_int("AUTH_CACHE_SECONDS", 60, minimum=0)
OTP_TOTP_ISSUER = "Algo Terminal"

# API tokens (accounts.tokens): HS256 with keys named by `kid`; the first key signs, all verify,
# so a key rotates by putting the new one first and dropping the old one after JWT_REFRESH_SECONDS.
JWT_SIGNING_KEYS = env_list("JWT_SIGNING_KEYS", [])  # "kid:secret" entries
JWT_ISSUER = env_str("JWT_ISSUER", "algo-terminal") or "algo-terminal"
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "algo-terminal-api") or "algo-terminal-api"
JWT_ACCESS_SECONDS = env_int("JWT_ACCESS_SECONDS", 5 * 60, minimum=30)
JWT_REFRESH_SECONDS = env_int("JWT_REFRESH_SECONDS", 12 * 60 * 60, minimum=60)

# --- Time: stored in UTC, shown in IST ------------------------------------------------------------
LANGUAGE_CODE = "en-in"
TIME_ZONE = "Asia/Kolkata"
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = VAR_DIR / "media"
# WhiteNoise serves static files from the app itself; production serves the hashed, collected copies
# (collectstatic runs in the image build), development reads them straight from the finders.
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security -------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # pages put the token in forms and in HTMX's hx-headers instead
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    # TLS ends at nginx, which sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^api/health$", r"^metrics$"]  # probes and scrapes come over plain HTTP
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # __Host- cookies are only accepted over HTTPS, for this exact host, with path / (ASVS 4.0 3.4.4).
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

# Content-Security-Policy (django-csp 4): scripts and styles only from our own origin, never inline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Observability --------------------------------------------------------------------------------
SENTRY_DSN = env_str("SENTRY_DSN") or None
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.logging.RequestIdFilter"},
        "redact_secrets": {"()": "core.logging.RedactSecretsFilter"},  # tokens, checksums, query strings
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601 in UTC
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id", "redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
        "celery": {"level": "INFO"},
        "axes": {"level": "WARNING"},  # one line per attempt otherwise; lockouts are audited
    },
}

# Web and worker processes serve Prometheus metrics on this port, apart from the public one
# (0: off; standalone mode and tests use /metrics on the web port).
METRICS_PORT = env_int("METRICS_PORT", 0, minimum=0, maximum=65535)

# Health thresholds: a dependency slower than these is reported as degraded (503).
HEALTH_DB_LATENCY_MS = env_int("HEALTH_DB_LATENCY_MS", 500, minimum=1)
HEALTH_QUEUE_AGE_SECONDS = env_int("HEALTH_QUEUE_AGE_SECONDS", 300, minimum=1)

# --- Audit trail (compliance) ---------------------------------------------------------------------
# Parallel hash chains: concurrent transactions each lock one chain, so more chains let more
# audited transactions commit at once. Changing it later is safe (verification covers every chain).
AUDIT_CHAINS = env_int("AUDIT_CHAINS", 8, minimum=1, maximum=64)

AUDIT_SIGNING_KEY = keys.audit_signing_key(production=PRODUCTION, var_dir=VAR_DIR)  # signs the checkpoints
AUDIT_HMAC_KEYS, AUDIT_HMAC_KEY_ID = keys.audit_hmac_keys(production=PRODUCTION, var_dir=VAR_DIR)
# Public keys (base64, 32 bytes each) of retired signing keys, so checkpoints they signed still verify.
AUDIT_VERIFY_KEYS = env_list("AUDIT_VERIFY_KEYS", [])
# How often the chain heads are signed (Celery beat), and how much later than that verify_audit still
# accepts the newest checkpoint: events newer than the newest checkpoint are the unsigned tail.
AUDIT_CHECKPOINT_INTERVAL_SECONDS = env_int("AUDIT_CHECKPOINT_INTERVAL_SECONDS", 60, minimum=10, maximum=3600)
AUDIT_CHECKPOINT_GRACE_SECONDS = env_int("AUDIT_CHECKPOINT_GRACE_SECONDS", 120, minimum=0, maximum=86400)
# --- Retention and archives (docs/retention.md) ----------------------------------------------------
# Orders, order events and trades are kept at least this many years: the database refuses deleting
# younger rows (retention triggers); below 5 the system check refuses to start (retention.E001).
RETENTION_YEARS = env_int("RETENTION_YEARS", 7, minimum=0, maximum=100)
# Closed months are archived, written once, to the "archives" storage: the local filesystem under var/
# by default, an S3 bucket (versioned, with Object Lock) when ARCHIVE_BUCKET is set.
ARCHIVE_BUCKET = env_str("ARCHIVE_BUCKET") or None
ARCHIVE_PREFIX = env_str("ARCHIVE_PREFIX", "archives")
ARCHIVE_ENDPOINT_URL = env_str("ARCHIVE_ENDPOINT_URL") or None
ARCHIVE_REGION = env_str("ARCHIVE_REGION") or None
if ARCHIVE_BUCKET:
    STORAGES["archives"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ARCHIVE_BUCKET,
            "location": ARCHIVE_PREFIX,
            "endpoint_url": ARCHIVE_ENDPOINT_URL,
            "region_name": ARCHIVE_REGION,
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    STORAGES["archives"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "archives"), "file_permissions_mode": 0o640},
    }
# The scratch database a month is restored into (manage.py archive_restore --database scratch).
DATABASES["scratch"] = env_database("SCRATCH_DATABASE_URL", f"sqlite:///{VAR_DIR / 'scratch.sqlite3'}")

# Signed checkpoints go to their own storage: the local filesystem by default, an S3 bucket (ideally
# with Object Lock, in another account) when AUDIT_CHECKPOINT_BUCKET is set; with only ARCHIVE_BUCKET
# set they go to the archives' bucket, beside the archives, under AUDIT_CHECKPOINT_PREFIX.
AUDIT_CHECKPOINT_BUCKET = env_str("AUDIT_CHECKPOINT_BUCKET") or ARCHIVE_BUCKET
if AUDIT_CHECKPOINT_BUCKET:
    STORAGES["audit_checkpoints"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AUDIT_CHECKPOINT_BUCKET,
            "location": env_str("AUDIT_CHECKPOINT_PREFIX", "audit-checkpoints"),
            "endpoint_url": env_str("AUDIT_CHECKPOINT_ENDPOINT_URL") or ARCHIVE_ENDPOINT_URL,
            "region_name": env_str("AUDIT_CHECKPOINT_REGION") or ARCHIVE_REGION,
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    STORAGES["audit_checkpoints"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "audit_checkpoints"), "file_permissions_mode": 0o640},
    }


# --- Compliance exports ---------------------------------------------------------------------------
# An export over this many rows, or over this many days, is made by a worker (the reports queue) and
# downloaded from its job's page; smaller ones are sent while the request waits.
COMPLIANCE_EXPORT_INLINE_MAX_ROWS = env_int("COMPLIANCE_EXPORT_INLINE_MAX_ROWS", 50_000, minimum=0)
COMPLIANCE_EXPORT_INLINE_MAX_DAYS = env_int("COMPLIANCE_EXPORT_INLINE_MAX_DAYS", 92, minimum=1)
# A PDF lays out all its rows at once (reportlab): over this many it is refused for CSV or XLSX.
COMPLIANCE_EXPORT_PDF_MAX_ROWS = env_int("COMPLIANCE_EXPORT_PDF_MAX_ROWS", 20_000, minimum=1, maximum=200_000)
# A finished job's file is removed this many days after it finished (beat, hourly).
COMPLIANCE_EXPORT_RETENTION_DAYS = env_int("COMPLIANCE_EXPORT_RETENTION_DAYS", 7, minimum=1, maximum=3650)
# The longest an export task may run (Celery's hard limit; below the broker's visibility timeout).
COMPLIANCE_EXPORT_TIME_LIMIT = env_int("COMPLIANCE_EXPORT_TIME_LIMIT", 1800, minimum=120, maximum=3300)
# Export files go to their own storage: the local filesystem by default, an S3 bucket when
# COMPLIANCE_EXPORT_BUCKET is set. From S3 a download is a redirect to a presigned URL valid this many
# seconds; 0 streams the object through the web tier instead (a bucket the browsers cannot reach).
COMPLIANCE_EXPORT_BUCKET = env_str("COMPLIANCE_EXPORT_BUCKET") or None
COMPLIANCE_EXPORT_PRESIGNED_SECONDS = env_int("COMPLIANCE_EXPORT_PRESIGNED_SECONDS", 60, minimum=0, maximum=3600)
if COMPLIANCE_EXPORT_BUCKET:
    STORAGES["compliance_exports"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": COMPLIANCE_EXPORT_BUCKET,
            "location": env_str("COMPLIANCE_EXPORT_PREFIX", "compliance-exports"),
            "endpoint_url": env_str("COMPLIANCE_EXPORT_ENDPOINT_URL") or None,
            "region_name": env_str("COMPLIANCE_EXPORT_REGION") or None,
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": COMPLIANCE_EXPORT_PRESIGNED_SECONDS or 60,
        },
    }
else:
    STORAGES["compliance_exports"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "compliance_exports"), "file_permissions_mode": 0o640},
    }


if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=DJANGO_ENV,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        traces_sample_rate=0.0,
    )

# --- Paper exchange and orders (docs/orders.md) ---------------------------------------------------
PAPER_SLIPPAGE_BPS = env_int("PAPER_SLIPPAGE_BPS", 0, minimum=0)  # market fills move this far against the order
PAPER_MIS_LEVERAGE = env_int("PAPER_MIS_LEVERAGE", 5, minimum=1)  # intraday (MIS) margin = value / leverage
PAPER_FO_MARGIN_PCT = env_int("PAPER_FO_MARGIN_PCT", 15, minimum=1)  # F&O margin as % of contract value
PAPER_OPENING_CASH = env_int("PAPER_OPENING_CASH", 1_000_000, minimum=0)  # rupees credited to a new paper account
RMS_DEFAULT_OPS_LIMIT = env_int("RMS_DEFAULT_OPS_LIMIT", 10, minimum=1)  # SEBI threshold for unregistered algos
# --- Market data (docs/marketdata.md) -------------------------------------------------------------
MARKETDATA_FRAME_MS = env_int("MARKETDATA_FRAME_MS", 250, minimum=10, maximum=5000)  # websocket conflation frame
MARKETDATA_MAX_SUBSCRIPTIONS = env_int("MARKETDATA_MAX_SUBSCRIPTIONS", 500, minimum=1)  # instruments per socket
WEBSOCKET_MAX_PER_USER = env_int("WEBSOCKET_MAX_PER_USER", 20, minimum=1)  # open sockets per user (infra.sockets)
MARKETDATA_SIM_RATE = env_int("MARKETDATA_SIM_RATE", 1000, minimum=1)  # simulated quotes per second
MARKETDATA_SIM_SESSION = env_choice("MARKETDATA_SIM_SESSION", "always", ("always", "nse"))  # nse: 09:15-15:30 IST
# The option chain's risk-free rate, in basis points a year (650 = 6.5%, about the Indian T-bill yield):
# Greeks, implied volatility and the strategy builder's curve for today (docs/terminal-ui.md).
OPTIONS_RISK_FREE_RATE_BP = env_int("OPTIONS_RISK_FREE_RATE_BP", 650, minimum=0, maximum=5000)
NSE_HOLIDAYS = env_list("NSE_HOLIDAYS", [])  # ISO dates the simulator stays closed when the session is "nse"
# The days strategy deployments run on (docs/strategies.md, "Schedule"): "nse", weekdays not in
# NSE_HOLIDAYS; "always", every day, as the standalone demo's simulated market never closes.
STRATEGIES_CALENDAR = env_choice("STRATEGIES_CALENDAR", "always" if STANDALONE else "nse", ("nse", "always"))
# The most backtests one parameter sweep may run (docs/strategies.md, "Backtest pages and sweeps").
STRATEGIES_SWEEP_MAX_RUNS = env_int("STRATEGIES_SWEEP_MAX_RUNS", 500, minimum=1, maximum=100_000)
MARKETDATA_FEED_STALE_SECONDS = env_int("MARKETDATA_FEED_STALE_SECONDS", 30, minimum=1)  # health: feed is down
MARKETDATA_LISTENER_LAG_SECONDS = env_int("MARKETDATA_LISTENER_LAG_SECONDS", 5, minimum=1)  # health: matching behind
MARKETDATA_FEED_METRICS_PORT = env_int("MARKETDATA_FEED_METRICS_PORT", 9108, minimum=0, maximum=65535)
# run_feed's source when --source is not given (sim, replay, kite: the registered sources); the
# deployments set it to kite, with KITE_FEED_ACCOUNT_ID, to feed from Kite's ticker.
MARKETDATA_FEED_SOURCE = env_str("MARKETDATA_FEED_SOURCE", "sim")
# --- Price alerts (docs/alerts.md) -----------------------------------------------------------------
# The Telegram Bot API's root (alerts.telegram); tests point it at a local server.
ALERTS_TELEGRAM_API_URL = env_str("ALERTS_TELEGRAM_API_URL", "https://api.telegram.org") or "https://api.telegram.org"
# Alert e-mails go through Django's mail API: SMTP in the full stack, the console in standalone mode.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if STANDALONE else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost") or "localhost"
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "alerts@localhost") or "alerts@localhost"
# --- Kite Connect: the symbol master (docs/marketdata.md) ------------------------------------------
KITE_API_ROOT = env_str("KITE_API_ROOT", "https://api.kite.trade")  # Kite Connect's REST API
KITE_LOGIN_URL = env_str("KITE_LOGIN_URL", "https://kite.zerodha.com/connect/login")  # the daily login page
# Connect is a form whose answer redirects to the broker's login page, and browsers hold a form's
# redirects to form-action too: the login page's origin joins it, or the browser refuses to go there.
CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append("{0.scheme}://{0.netloc}".format(urlsplit(KITE_LOGIN_URL)))
KITE_INSTRUMENTS_URL = env_str("KITE_INSTRUMENTS_URL", "https://api.kite.trade/instruments")  # the daily dump
KITE_INSTRUMENTS_MIN_PERCENT = env_int("KITE_INSTRUMENTS_MIN_PERCENT", 80, minimum=0, maximum=100)  # of the last
KITE_INSTRUMENTS_MIN_ROWS = env_int("KITE_INSTRUMENTS_MIN_ROWS", 10_000, minimum=0)  # a smaller dump is refused
# The master is refreshed after the morning's first Kite sign-in; not loaded by this time (IST) of a
# trading day, it pages (terminal_kite_instruments_overdue, alert TerminalKiteInstrumentsNotLoaded).
KITE_INSTRUMENTS_DUE_BY = env_str("KITE_INSTRUMENTS_DUE_BY", "09:30")
if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", KITE_INSTRUMENTS_DUE_BY):
    raise EnvError("KITE_INSTRUMENTS_DUE_BY", KITE_INSTRUMENTS_DUE_BY, "a time of day in India, HH:MM")
# --- Kite Connect: the ticker feed, run_feed --source kite (docs/marketdata.md) ---------------------
KITE_FEED_ACCOUNT_ID = env_int("KITE_FEED_ACCOUNT_ID", 0, minimum=0)  # the Kite account whose session feeds; 0: none
KITE_TICKER_URL = env_str("KITE_TICKER_URL", "wss://ws.kite.trade")  # Kite's websocket ticker
# After the ticker reconnects or the feed restarts, the 1-minute bars missed since each instrument's last
# bar are read from Kite's history, looking back at most this many minutes (375: one NSE session); 0: off.
KITE_GAP_FILL_MINUTES = env_int("KITE_GAP_FILL_MINUTES", 375, minimum=0, maximum=7 * 24 * 60)
# --- The other broker families (docs/brokers.md) ----------------------------------------------------
# Their brokers' hosts come from the registry (brokers/data/brokers.toml); BROKER_ENDPOINTS points a
# broker elsewhere (staging, tests): {"shoonya": {"api": "https://...", "ws": "wss://..."}}.
BROKER_ENDPOINTS: dict[str, dict[str, str]] = {}
BROKER_HTTP_READ_TIMEOUT = None  # seconds a broker may take to answer; None: 7 s
# run_feed --source broker: the account whose family's market-data websocket feeds; 0: none.
BROKER_FEED_ACCOUNT_ID = env_int("BROKER_FEED_ACCOUNT_ID", 0, minimum=0)
# Angel One asks each request for the client's public IP (the static IP registered for orders under
# SEBI's retail-algo rules); empty: the local address.
ANGEL_CLIENT_PUBLIC_IP = env_str("ANGEL_CLIENT_PUBLIC_IP", "")
# The registry's redirect-login pages (Upstox, Fyers...) join form-action, as Kite's does above.
with (BASE_DIR / "brokers" / "data" / "brokers.toml").open("rb") as _registry:
    for _broker in tomllib.load(_registry)["broker"]:
        _login = _broker.get("endpoints", {}).get("login", "")
        if _login.startswith("https://"):
            _origin = "{0.scheme}://{0.netloc}".format(urlsplit(_login))
            if _origin not in CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"]:
                CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(_origin)
