"""Whether an agent's voice settings can run on this server, asked when the agent is saved; and
at start-up, whether every engine an agent may be set to has an engine here.

An agent whose model is missing, whose voice does not exist or whose prompt leaves no room in
the context window used to save fine and then fail, or fall silent, on its first call. The
agents app calls ``agent_settings_errors`` through the AGENT_SETTINGS_CHECK setting (it knows no
engine), and gets field errors that say what is allowed. Each engine checks its own settings
(its ``settings_error``); this module knows no engine by name.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks

from voice.engines import defaults
from voice.engines.llm import LLM_ENGINES
from voice.engines.stt import STT_ENGINES
from voice.engines.tts import TTS_ENGINES
from voice.engines.turn import TURN_DETECTORS

# Room the call's history needs beside the prompt, the facts and the reply, in tokens: about four
# short exchanges. ReplyPrompt.messages drops older turns to stay within the window.
HISTORY_ROOM_TOKENS = 256
# Chat-template tokens around the caller's latest message and the "Facts:" heading.
TEMPLATE_TOKENS = 64


def agent_settings_errors(agent: Any) -> dict[str, str]:
    """Field name -> message for each setting of ``agent`` this server cannot run."""
    errors: dict[str, str] = {}
    stt = _engine_error(STT_ENGINES, "speech-to-text", agent.stt_engine, agent.stt_model_path)
    if stt:
        errors["stt_model_path" if agent.stt_model_path else "stt_engine"] = stt
    tts = _engine_error(TTS_ENGINES, "text-to-speech", agent.tts_engine, agent.tts_voice)
    if tts:
        errors["tts_voice" if agent.tts_voice else "tts_engine"] = tts
    llm = LLM_ENGINES[defaults.LLM_ENGINE]
    llm_error = llm.settings_error(agent.llm_model)
    if llm_error:
        errors["llm_model"] = llm_error
    prompt_error = _prompt_error(_fixed_prompt_tokens(agent, llm), agent.llm_max_tokens or 0)
    if prompt_error:
        errors["system_prompt"] = prompt_error
    return errors


def _engine_error(table: dict[str, Any], what: str, engine: str, value: str) -> str:
    """Why ``engine`` with the agent's model or voice ``value`` cannot run here, or ""."""
    if engine not in table:
        *others, last = table
        return f"Unknown {what} engine '{engine}': use {', '.join(others)} or {last}."
    return table[engine].settings_error(value)


def _fixed_prompt_tokens(agent: Any, llm: Any) -> int:
    """Tokens sent with every reply: the system message as a call builds it (the agent's prompt,
    the voice and knowledge rules) and the worked examples. Counted as grounded whether or not
    the agent has knowledge yet: documents added later must not make a saved agent fall silent.
    """
    from voice.pipeline.prompt import ReplyPrompt

    prompt = ReplyPrompt.build(template=agent.system_prompt or "", context={}, grounded=True)
    return prompt.fixed_tokens(lambda text: llm.prompt_tokens(text, agent.llm_model))


def _prompt_error(fixed_tokens: int, max_tokens: int) -> str:
    window = settings.LLM_CONTEXT_TOKENS
    room = TEMPLATE_TOKENS + settings.KNOWLEDGE_BUDGET_TOKENS + HISTORY_ROOM_TOKENS + max_tokens
    if fixed_tokens + room <= window:
        return ""
    return (
        f"The system prompt comes to about {fixed_tokens} tokens with the call's rules and "
        f"examples; with the reply length ({max_tokens}), the knowledge base's facts "
        f"({settings.KNOWLEDGE_BUDGET_TOKENS}, KNOWLEDGE_BUDGET_TOKENS) and room for the "
        f"conversation ({HISTORY_ROOM_TOKENS}) it must be about {fixed_tokens + room - window} "
        f"tokens shorter to fit the model's {window}-token context window "
        "(LLM_CONTEXT_TOKENS). Shorten it, or lower the reply length."
    )


# The agent's fields whose choices name an engine, and the table each must be found in.
ENGINE_FIELDS: dict[str, tuple[str, dict[str, object]]] = {
    "stt_engine": ("voice/engines/stt/__init__.py", STT_ENGINES),
    "tts_engine": ("voice/engines/tts/__init__.py", TTS_ENGINES),
    "turn_detection": ("voice/engines/turn.py", TURN_DETECTORS),
}


@checks.register(checks.Tags.models)
def agent_engine_choices_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Every engine an agent's form offers has an engine in voice's tables: a choice added in
    agents/models.py without its engine would save and then fail the agent's first call."""
    # The field's choices, through the app registry: voice does not import the agents app.
    field_of = apps.get_model("agents", "Agent")._meta.get_field
    errors: list[checks.CheckMessage] = []
    for field_name, (table_file, table) in ENGINE_FIELDS.items():
        for value, _label in field_of(field_name).choices or ():
            if value not in table:
                errors.append(
                    checks.Error(
                        f"Agent.{field_name} offers '{value}', but {table_file} has no "
                        "engine of that name.",
                        hint=f"Add its engine and a line for it to the table in {table_file}, "
                        "or remove the choice.",
                        obj=f"agents.Agent.{field_name}",
                        id="voice.E001",
                    )
                )
    return errors
