"""The engines an empty setting stands for, in one place: the registry, the start-up preload, the
catalog and the agent check all read them here.

An agent's fields have defaults of their own (agents/models.py: the agents app may not import
this one); tests/voice/engines/test_registry.py holds the two to the same names. The language
model is the server's setting (LLM_MODEL, default "qwen2.5-0.5b"), run by LLM_ENGINE.
"""

from __future__ import annotations

STT_ENGINE = "whisper"
TTS_ENGINE = "piper"
LLM_ENGINE = "llama"  # an agent picks a model, not an LLM engine: this one runs them all
TURN_DETECTION = "smart_turn"  # Smart Turn v3: answers sooner, waits out mid-sentence pauses
