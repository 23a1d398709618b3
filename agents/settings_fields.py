"""An agent's settings, listed once, in the sections people see them in.

The dashboard's agent form (dashboard/forms.py) and the admin's fieldsets (agents/admin.py) are
built from this list, and the media worker's CallSpec takes each setting by its field name
(sessions.selectors.call_spec_build). tests/agents/test_agent_settings.py fails when an Agent
field a person sets is missing from it, the form or the admin."""

from __future__ import annotations

AGENT_SETTINGS_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Conversation", ("name", "system_prompt", "greeting", "handoff_line", "language")),
    ("End of turn", ("turn_detection", "turn_silence_ms")),
    ("Voice", ("stt_engine", "stt_model_path", "tts_engine", "tts_voice", "tts_speed")),
    ("Language model", ("llm_model", "llm_temperature", "llm_max_tokens")),
    (
        "Limits and recording",
        ("max_duration_seconds", "silence_timeout_seconds", "recording_enabled"),
    ),
)

AGENT_SETTINGS_FIELDS: list[str] = [name for _, names in AGENT_SETTINGS_SECTIONS for name in names]
