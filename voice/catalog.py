"""What this server can run, for the agent form's choices: speech-to-text engines and their
models, text-to-speech engines and their voices, language models.

Each engine lists itself (its ``listing``: voice/engines/listing.py's shapes), in its table's
order. Read from the installed packages and the settings only, never by loading a model: the
form shows it on every page view. ``voice.checks`` is what refuses a setting at save; this lists
the settings it accepts, with what each is and whether its files are here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from voice.engines import defaults
from voice.engines.listing import Choice, EngineListing
from voice.engines.llm import LLM_ENGINES
from voice.engines.stt import STT_ENGINES
from voice.engines.tts import TTS_ENGINES

__all__ = ["Catalog", "Choice", "EngineListing", "voice_catalog"]


@dataclass(frozen=True)
class Catalog:
    stt: list[EngineListing]
    tts: list[EngineListing]
    # An agent picks a language model, not an LLM engine: the models of the one that runs them.
    llm: list[Choice]
    llm_own: str

    def as_dict(self) -> dict:
        return asdict(self)


def voice_catalog() -> Catalog:
    llm = LLM_ENGINES[defaults.LLM_ENGINE].listing(defaults.LLM_ENGINE)
    return Catalog(
        stt=[engine.listing(name) for name, engine in STT_ENGINES.items()],
        tts=[engine.listing(name) for name, engine in TTS_ENGINES.items()],
        llm=llm.choices,
        llm_own=llm.own,
    )
