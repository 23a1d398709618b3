"""Public identifiers: a readable prefix and a random base62 body (``agent_…``, ``session_…``)."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def public_id(prefix: str, length: int = 20) -> str:
    return f"{prefix}_{random_token(length)}"
