"""What API keys look like and how they are stored: shared by the services that make keys and
the selectors that find them (so that reading never imports the code that writes)."""

from __future__ import annotations

import hashlib

from agents.models import ApiKey

KEY_PREFIXES = {ApiKey.Kind.SECRET: "sk", ApiKey.Kind.PUBLIC: "pk"}
PREFIX_BODY_LENGTH = 8
SECRET_LENGTH = 32
# Cache key of the set of origins allowed by any active public key (CORS preflight).
PUBLIC_ORIGINS_CACHE_KEY = "agents:public-key-origins:v1"
# The secret key the /demo/ page's stand-in "customer backend" starts calls with.
DEMO_SECRET_KEY_NAME = "Demo secret key"


def api_key_hash(raw_key: str) -> str:
    # Keys are 190 bits of randomness, so a fast hash is enough; a slow KDF would only cost latency.
    return hashlib.sha256(raw_key.encode()).hexdigest()
