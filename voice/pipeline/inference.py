"""Where the pipeline's model work runs, and loading the models before the first call.

Everything per frame happens on the event loop and is cheap (a 32 ms Silero window is ~0.2 ms);
STT, LLM and TTS run in a small thread pool shared by the worker's calls, so one call's model
work never holds up another call's audio frames.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
from django.conf import settings

from voice.engines import defaults, registry
from voice.engines.vad import WINDOW
from voice.protocol import CallSpec


class _ContextPool(ThreadPoolExecutor):
    """Runs each job in the context of whoever queued it, as ``asyncio.to_thread`` does and
    ``run_in_executor`` does not: a model's log lines carry the call's id (thinnest_site/logs.py)."""

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


@cache
def inference_pool() -> ThreadPoolExecutor:
    return _ContextPool(settings.VOICE_INFERENCE_THREADS, thread_name_prefix="voice-inference")


def engines_preload(spec: CallSpec | None = None, *, warm: bool = True) -> dict[str, int]:
    """Load the default models (call from a thread at worker start, not on the event loop), and
    with ``warm`` run each once: a first inference pays for memory mapping, kernel selection and
    allocation, which would otherwise land on the first caller's first reply. Returns the ms
    each stage took."""
    timings: dict[str, int] = {}

    def timed(stage: str, work: Callable[[], object]) -> object:
        started = time.monotonic()
        result = work()
        timings[stage] = round((time.monotonic() - started) * 1000)
        return result

    vad = timed("vad", registry.vad_create)
    stt = timed(
        "stt",
        lambda: registry.stt_get(
            spec.stt_engine if spec else defaults.STT_ENGINE, spec.stt_model_path if spec else ""
        ),
    )
    tts = timed(
        "tts",
        lambda: registry.tts_get(
            spec.tts_engine if spec else defaults.TTS_ENGINE, spec.tts_voice if spec else ""
        ),
    )
    llm = timed("llm", lambda: registry.llm_get(spec.llm_model if spec else ""))
    turn = registry.turn_detector_get(spec.turn_detection) if spec else None
    if warm:
        started = time.monotonic()
        vad.probability(np.zeros(WINDOW, dtype=np.int16))
        stt.transcribe(np.zeros(16000, dtype=np.int16), spec.language if spec else "en")
        tts.synthesize("Hello.", voice=spec.tts_voice if spec else "")
        for _ in llm.stream_reply(
            [{"role": "user", "content": "Hi"}],
            temperature=0.0,
            max_tokens=1,
            cancel=threading.Event(),
        ):
            pass
        if turn is not None:
            turn.complete_probability(np.zeros(16000 * 2, dtype=np.int16))
        timings["warm_up"] = round((time.monotonic() - started) * 1000)
    return timings


# One caller question and the start of an answer: what ``turn_ms_measure`` times.
_MEASURED_QUESTION = "Hello, could you tell me what time you open on Saturday morning?"
_MEASURED_PROMPT = (
    "You are the friendly voice assistant of a small bakery. Answer in one or two short "
    "sentences. The bakery opens at 8 am and closes at 6 pm every day."
)
_MEASURED_CLAUSE = "Sure, on Saturdays we open at eight in the morning."


def turn_ms_measure() -> int:
    """The model work of one typical reply on this machine, alone, in ms: a 4 s question
    transcribed, a first clause of 12 tokens written (the system prompt cached, as in a call),
    and voiced. Run at worker start (voice/admission.py bases its predictions on it); the
    better of two runs, as the first also evaluates the system prompt."""
    from voice.audio import resample

    stt = registry.stt_get(defaults.STT_ENGINE, "")
    tts = registry.tts_get(defaults.TTS_ENGINE, "")
    llm = registry.llm_get("")
    pcm, rate = tts.synthesize(_MEASURED_QUESTION, voice="")
    question = resample(pcm, rate, 16000)
    messages = [
        {"role": "system", "content": _MEASURED_PROMPT},
        {"role": "user", "content": _MEASURED_QUESTION},
    ]
    runs = []
    for _ in range(2):
        started = time.monotonic()
        stt.transcribe(question, "en")
        for _piece in llm.stream_reply(
            messages, temperature=0.0, max_tokens=12, cancel=threading.Event()
        ):
            pass
        tts.synthesize(_MEASURED_CLAUSE, voice="")
        runs.append(time.monotonic() - started)
        # A different question next time: the LLM's prompt cache must not make it free.
        messages[1]["content"] += " Thanks."
    return round(min(runs) * 1000)
