"""Django's own settings: apps, database, cache, Celery, static files, security, logging."""

from __future__ import annotations

import os
import secrets
import time
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from thinnest_site.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Local state (SQLite database, generated secret key, demo credentials, recordings) lives here;
# it is git-ignored. Made for its owner only: other users of the machine have no business there.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
if not VAR_DIR.exists():
    VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)


def _private_file_create(path: Path, text: str = "") -> None:
    # Mode 0600 from the first byte: writing and then chmod'ing leaves a moment in which another
    # user may open the file (and keep it open). Does nothing if the file exists.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _secret_key_from_file() -> str:
    # A per-installation key kept on disk so that signed tokens and logins survive restarts
    # without the user having to invent one; production sets SECRET_KEY explicitly.
    key_file = VAR_DIR / "secret_key"
    _private_file_create(key_file, secrets.token_urlsafe(50))
    # A process starting at the same moment (web, worker) may have created it and not yet
    # written it.
    for _ in range(100):
        if key := key_file.read_text().strip():
            return key
        time.sleep(0.02)
    raise ImproperlyConfigured(f"{key_file} is empty: delete it, or set SECRET_KEY.")


SECRET_KEY = env.str("SECRET_KEY", default="") or _secret_key_from_file()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Behind a reverse proxy: only then are X-Forwarded-Proto/-Host/-For believed.
TRUST_PROXY = env.bool("TRUST_PROXY", default=False)
if TRUST_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
# Base URL browsers use to reach this server, e.g. https://voice.example.com. Empty: derive
# it from each request.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "thinnest_site.apps.StaticFilesConfig",  # django.contrib.staticfiles, minus node_modules
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "channels",
    "agents",
    "sessions.apps.CallSessionsConfig",
    "voice",
    "widget",
    "dashboard",
    "axes",  # login throttling (the Security section below); last, as its docs ask
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "thinnest_site.middleware.CorsMiddleware",
    "thinnest_site.middleware.UnusableCharsetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "thinnest_site.urls"
ASGI_APPLICATION = "thinnest_site.asgi.application"

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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process, media workers and Celery write to one SQLite file: WAL lets readers and a
    # writer overlap, IMMEDIATE transactions and a busy timeout make writers queue, not fail.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests on a file too, not Django's default in-memory database: its shared cache raises
    # "database table is locked" at once where a file (WAL, busy timeout) makes a writer wait,
    # and the call path writes from threads of its own. One file per test process.
    DATABASES["default"].setdefault("TEST", {}).setdefault(
        "NAME", str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
    )
    # Created 0600 before SQLite first opens it (SQLite would make it 0644); its -wal and -shm
    # files take the database file's mode.
    _sqlite_file = Path(str(DATABASES["default"]["NAME"]))
    if _sqlite_file.name not in ("", ":memory:") and _sqlite_file.parent.is_dir():
        _private_file_create(_sqlite_file)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# Prefix of this installation's keys in a shared Redis (cache, turn buffers).
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="thinnest")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # socket_timeout=None: redis-py 8 otherwise times out the layer's blocking
                # receive (redis/redis-py#4091).
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="thinnest"),
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: the Redis broker when there is one; otherwise tasks run in-process, eagerly.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL or CELERY_BROKER_URL == "memory://"
)
CELERY_TASK_EAGER_PROPAGATES = True
# Several installs sharing one Redis each need a queue of their own.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE = {
    # Ends calls nobody will end any more (token never used, processes that died) and stores
    # their transcripts.
    "finalize-abandoned-calls": {
        "task": "sessions.tasks.calls_finalize_abandoned",
        "schedule": env.float("CALL_FINALIZE_INTERVAL_SECONDS", default=60.0),
    },
    "purge-old-recordings": {
        "task": "sessions.tasks.call_recordings_purge",
        "schedule": 3600.0,
    },
    # Call summaries (and with them call.ended) whose queued task was lost.
    "resume-call-summaries": {
        "task": "sessions.tasks.call_summaries_overdue",
        "schedule": 60.0,
    },
    # Webhook deliveries whose queued send was lost.
    "resume-webhook-deliveries": {
        "task": "agents.tasks.webhook_deliveries_resume",
        "schedule": 60.0,
    },
    # Knowledge documents whose queued indexing was lost.
    "resume-knowledge-indexing": {
        "task": "agents.tasks.knowledge_index_resume",
        "schedule": 60.0,
    },
}

# --- Background work without a broker ------------------------------------------------------------

# With tasks eager (no broker), queued work (webhook sends) runs on this many threads of the web
# process instead of in the caller (thinnest_site/background.py).
BACKGROUND_WORKERS = env.int("BACKGROUND_WORKERS", default=4)
# The web process runs CELERY_BEAT_SCHEDULE itself; on by default exactly when there is no
# broker (with one, run Celery beat).
BACKGROUND_SCHEDULE_ENABLED = env.bool(
    "BACKGROUND_SCHEDULE_ENABLED", default=CELERY_TASK_ALWAYS_EAGER
)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request when it is missing
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Chart.js for the analytics page, installed by npm (static/vendor/package.json), served from
    # here: the dashboard loads nothing from a CDN.
    ("vendor/chartjs", BASE_DIR / "static" / "vendor" / "node_modules" / "chart.js" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
# Call recordings (agents with recording on) are deleted this many days after the call; 0 keeps
# them until the call is deleted. Staff play them through the dashboard, never from MEDIA_URL.
RECORDING_RETENTION_DAYS = env.int("RECORDING_RETENTION_DAYS", default=90)

LOGIN_URL = "/dashboard/login/"
LOGIN_REDIRECT_URL = "/dashboard/"

# --- Security ----------------------------------------------------------------------------------

# Messages live in the (database-backed) session, not in a cookie: the cookie is signed, not
# encrypted, so anything a message says could be read off the wire or the browser.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Login throttling (django-axes) for /dashboard/login/ and /admin/login/ alike: after
# AXES_FAILURE_LIMIT failed logins for one username from one IP, that pair is refused (429) for
# AXES_COOLOFF_MINUTES. Locking the pair, not the username, means a stranger cannot lock the real
# admin out from elsewhere; the client IP is the one the rest of the product uses (X-Forwarded-For
# only with TRUST_PROXY).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15.0))
AXES_LOCKOUT_PARAMETERS = [["ip_address", "username"]]
AXES_CLIENT_IP_CALLABLE = "sessions.selectors.client_ip_get"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# Served over HTTPS (behind a TLS-terminating proxy, or a public https:// URL): cookies only over
# HTTPS, and browsers told to use nothing else for HSTS_SECONDS. SECURE_COOKIES=false for a proxy
# that speaks plain HTTP to browsers.
SECURE_COOKIES = env.bool(
    "SECURE_COOKIES", default=TRUST_PROXY or PUBLIC_BASE_URL.startswith("https://")
)
HSTS_SECONDS = env.int("HSTS_SECONDS", default=365 * 24 * 3600)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES
SECURE_HSTS_SECONDS = HSTS_SECONDS if SECURE_COOKIES else 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Django REST framework ---------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "thinnest_site.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Client IPs come from X-Forwarded-For only behind a trusted proxy.
    "NUM_PROXIES": 1 if TRUST_PROXY else 0,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "thinnest voice API",
    "DESCRIPTION": "Start browser voice calls with a self-hosted AI agent.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Docs assets are served from this server: it may run air-gapped.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The system's fonts: Redoc's defaults (Montserrat, Roboto) come from Google Fonts.
    # templates/drf_spectacular/redoc.html keeps the page to this server's assets.
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
                "headings": {"fontFamily": 'system-ui, -apple-system, "Segoe UI", sans-serif'},
                "code": {"fontFamily": "ui-monospace, Menlo, Consolas, monospace"},
            }
        }
    },
}

# --- CORS: only /voice/start is cross-origin, and only for origins a public key allows. ---------

CORS_URLS_REGEX = r"^/voice/start/?$"
CORS_ALLOW_HEADERS = ["authorization", "content-type"]
CORS_ALLOW_METHODS = ["POST", "OPTIONS"]
CORS_PREFLIGHT_MAX_AGE = 600

# Log lines go to stderr, as "plain" text or one JSON object each ("json", for a log collector);
# inside a call, either carries the call's id (thinnest_site/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
# Celery would otherwise replace the root logger's handler with one of its own format: this way
# the Celery worker's lines are written like every other process's.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Serve static files straight from the apps and static/ too, so a fresh checkout works without
# collectstatic (the run script still collects them for speed).
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# aioice logs every candidate pair of every call at INFO: noise next to the worker's one line per
# call. Its warnings (ICE failures) still show.
LOGGING["loggers"]["aioice"] = {"level": "WARNING"}
