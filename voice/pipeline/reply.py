"""Writing and voicing the agent's replies: facts -> LLM -> guard -> speakable chunks -> TTS, off
the event loop.

Used alike by the reply to a turn, the reply prepared during the end-of-turn silence, and the
text chat (``write``, without a voice).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

from voice.engines.text import speakable_chunks
from voice.pipeline.guard import ReplyGuard, normalized_words, says_line
from voice.pipeline.inference import inference_pool
from voice.pipeline.prompt import DONT_KNOW, Fact, ReplyPrompt
from voice.protocol import CallSpec

if TYPE_CHECKING:
    from voice.engines.llm.base import ChatModel
    from voice.engines.tts.base import TextToSpeech
    from voice.pipeline.knowledge import KnowledgeSource

logger = logging.getLogger(__name__)

# Ways to say "I don't know" when a reply could only repeat the last one.
DONT_KNOW_LINES = (
    DONT_KNOW,
    "I'm afraid I don't have that information.",
    "Sorry, I can't help with that.",
)
# The temperature of a second try after a reply that repeated the last one.
REWRITE_TEMPERATURE = 0.8

Voiced = tuple[str, np.ndarray, int]  # a chunk of the reply, its audio and sample rate


@dataclass(eq=False)
class ReplyWriter:
    spec: CallSpec
    prompt: ReplyPrompt
    llm: ChatModel
    tts: TextToSpeech | None
    # The agent's knowledge base; None when it has none (the prompt is then not grounded).
    knowledge: KnowledgeSource | None = None
    _words_prefill: asyncio.Future | None = None  # the caller's words being evaluated

    def write(
        self,
        history: list[dict],
        cancel: threading.Event,
        sources: list[dict] | None = None,
        prompt_stats: dict | None = None,
    ) -> Iterator[str]:
        """The reply to ``history`` (its last turn the caller's) as text pieces, blocking: the
        facts for the caller's words are retrieved, the LLM writes, and the guard keeps the
        reply to two sentences and never the previous reply again. ``sources`` gets the
        passages the reply was given, ``prompt_stats`` the LLM's prompt and cached tokens (first
        attempt). Stops at the next token once ``cancel`` is set."""
        messages, facts = self._prompt(history)
        if sources is not None:
            sources[:] = [fact.source() for fact in facts]
        previous = next((t["content"] for t in reversed(history) if t["role"] == "assistant"), "")
        temperature = self.spec.llm_temperature
        for attempt in range(2):
            guard = ReplyGuard(previous)
            for piece in self.llm.stream_reply(
                messages,
                temperature=temperature,
                max_tokens=self.spec.llm_max_tokens,
                repeat_penalty=settings.LLM_REPEAT_PENALTY,
                cancel=cancel,
                prompt_stats=prompt_stats if attempt == 0 else None,
            ):
                out = guard.feed(piece)
                if out:
                    yield out
                if guard.complete or guard.repeated:
                    break
            if cancel.is_set():
                return
            rest = guard.finish()
            if not guard.repeated:
                if rest:
                    yield rest
                if self._handoff_due(guard.text):
                    yield " " + self.prompt.handoff_line
                return
            if attempt == 0:
                if prompt_stats is not None:
                    prompt_stats["rewritten"] = True
                if says_dont_know(guard.text):
                    # Not knowing, again: said at once in other words (the line below) rather
                    # than by the model. Its rewrite gave the same words reordered and cost
                    # 600-900 ms before the first word (bench: half the turns of callers who
                    # ask what the agent cannot answer).
                    break
                logger.info(
                    "call %s: the reply repeated the last one; writing it anew",
                    self.spec.session_id,
                )
                # Once more, told what not to say, and freer to choose other words. The note
                # goes after the caller's words, not before: the model's cache keeps the prompt
                # up to them, for this try and for the next turn's reply (before, each
                # rewrite cost the next turn ~50 tokens evaluated again, 400-600 ms).
                messages = [
                    *messages,
                    {
                        "role": "system",
                        "content": f'You just said: "{previous}" Do not say it again: '
                        "answer the caller's latest words.",
                    },
                ]
                temperature = max(temperature, REWRITE_TEMPERATURE)
        # Twice the same answer, or "don't know" again: say plainly that it cannot help
        # further, in words not yet said.
        yield self.fallback_line(previous)

    def knowledge_attach(self, knowledge: KnowledgeSource | None) -> None:
        """Answer from ``knowledge`` from now on (None: the agent has none)."""
        self.knowledge = knowledge
        self.prompt = _prompt_build(self.spec, grounded=knowledge is not None)

    def _prompt(self, history: list[dict]) -> tuple[list[dict], list[Fact]]:
        """The LLM's messages for a reply to ``history``, and the facts retrieved for them."""
        question = history[-1]["content"] if history and history[-1]["role"] == "user" else ""
        facts = self.knowledge.search(question) if self.knowledge and question else []
        messages = self.prompt.messages(
            history,
            facts,
            budget_tokens=self.llm.context_tokens - self.spec.llm_max_tokens,
            count=self.llm.count_tokens,
        )
        return messages, facts

    def prefill_words(self, history: list[dict]) -> None:
        """While the caller speaks: the prompt of a reply to their words so far (the last turn
        of ``history``) is evaluated in the inference pool, so that the reply to their whole
        turn evaluates only what came after (about 10 ms a token here; 20-60 tokens a turn of
        recorded speech). One at a time, skipped while the model is busy; a failure is
        logged, not raised."""
        if self._words_prefill is not None and not self._words_prefill.done():
            return

        def evaluate() -> None:
            try:
                self.llm.prefill(self._prompt(history)[0], wait=False)
            except Exception:
                logger.exception(
                    "call %s: evaluating the caller's words failed", self.spec.session_id
                )

        self._words_prefill = asyncio.get_running_loop().run_in_executor(inference_pool(), evaluate)

    async def prefill(self) -> None:
        """Evaluate the start of every reply's prompt (system, examples, greeting) in the
        inference pool, while the greeting plays: the first reply then evaluates only the
        caller's words (measured: first token 759 ms cold, about 190 ms after). A failure costs
        only that time: it is logged, not raised."""
        loop = asyncio.get_running_loop()
        messages = self.prompt.prefix(self.spec.greeting)
        try:
            await loop.run_in_executor(inference_pool(), self.llm.prefill, messages)
        except Exception:
            logger.exception("call %s: evaluating the prompt ahead failed", self.spec.session_id)

    def _handoff_due(self, reply: str) -> bool:
        """A reply that says it does not know gets the agent's hand-off line, once."""
        line = self.prompt.handoff_line
        return bool(line) and says_dont_know(reply) and not says_line(reply, line)

    def fallback_line(self, previous: str) -> str:
        """Not knowing, said in words the previous reply did not use."""
        for line in DONT_KNOW_LINES:
            text = " ".join(part for part in (line, self.prompt.handoff_line) if part)
            if normalized_words(text) != normalized_words(previous):
                return text
        return DONT_KNOW_LINES[-1]

    async def pieces(
        self,
        history: list[dict],
        cancel: threading.Event,
        on_first_token: Callable[[int], None],
        sources: list[dict] | None = None,
        prompt_stats: dict | None = None,
    ) -> AsyncIterator[str]:
        """``write`` as an async stream, run in the inference pool."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        started = time.monotonic()

        def generate() -> None:
            if prompt_stats is not None:  # the inference pool's threads were all busy
                prompt_stats["pool_wait_ms"] = round((time.monotonic() - started) * 1000)
            try:
                for piece in self.write(history, cancel, sources, prompt_stats):
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        future = loop.run_in_executor(inference_pool(), generate)
        try:
            first = True
            while (piece := await queue.get()) is not None:
                if first:
                    on_first_token(round((time.monotonic() - started) * 1000))
                    first = False
                yield piece
        finally:
            cancel.set()
            await asyncio.shield(future)

    async def voice(self, text: str) -> tuple[np.ndarray, int]:
        """``text`` synthesized in the agent's voice, in the inference pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(inference_pool(), self._synthesize, text)

    async def voiced(
        self,
        pieces: list[str] | AsyncIterator[str],
        on_first_chunk: Callable[[int], None] | None = None,
        on_first_text: Callable[[int], None] | None = None,
    ) -> AsyncIterator[Voiced]:
        """(chunk, pcm, rate) for each speakable chunk of ``pieces``, synthesized as it comes;
        ``on_first_chunk`` gets the ms the first chunk took to synthesize, ``on_first_text``
        the ms until its text was there (the LLM's first token and the rest of the clause)."""
        asked = time.monotonic()
        async for chunk in speakable(pieces):
            started = time.monotonic()
            if on_first_text is not None:
                on_first_text(round((started - asked) * 1000))
                on_first_text = None
            pcm, rate = await self.voice(chunk)
            if on_first_chunk is not None:
                on_first_chunk(round((time.monotonic() - started) * 1000))
                on_first_chunk = None
            yield chunk, pcm, rate

    def _synthesize(self, chunk: str) -> tuple[np.ndarray, int]:
        return self.tts.synthesize(chunk, voice=self.spec.tts_voice, speed=self.spec.tts_speed)


async def speakable(pieces: list[str] | AsyncIterator[str]) -> AsyncIterator[str]:
    """speakable_chunks over a sync list or an async stream of pieces."""
    if isinstance(pieces, list):
        for chunk in speakable_chunks(pieces):
            yield chunk
        return
    buffer: list[str] = []
    async for piece in pieces:
        buffer.append(piece)
        # Re-chunk what has arrived; hold back the unfinished tail.
        text = "".join(buffer)
        chunks = list(speakable_chunks([text]))
        if len(chunks) > 1:
            for chunk in chunks[:-1]:
                yield chunk
            buffer = [chunks[-1]]
    tail = "".join(buffer).strip()
    if tail:
        for chunk in speakable_chunks([tail]):
            yield chunk


def says_dont_know(text: str) -> bool:
    return bool(_DONT_KNOW.search(text))


_DONT_KNOW = re.compile(r"\b(don'?t|do not|doesn'?t) (know|have (that|any) information)\b", re.I)


def reply_writer_build(spec: CallSpec, *, tts: TextToSpeech | None) -> ReplyWriter:
    """The writer of ``spec``'s replies, not yet grounded (``knowledge_attach`` then)."""
    from voice.engines import registry

    return ReplyWriter(
        spec, _prompt_build(spec, grounded=False), registry.llm_get(spec.llm_model), tts
    )


def _prompt_build(spec: CallSpec, *, grounded: bool) -> ReplyPrompt:
    return ReplyPrompt.build(
        template=spec.system_prompt,
        context=spec.context,
        handoff_line=spec.handoff_line,
        grounded=grounded,
    )
