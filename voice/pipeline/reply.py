"""Writing and voicing the agent's replies: LLM -> speakable chunks -> TTS, off the event loop.

Used alike by the reply to a turn and by the reply prepared during the end-of-turn silence.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from voice.engines.text import history_trim, speakable_chunks
from voice.pipeline.inference import inference_pool
from voice.protocol import CallSpec

if TYPE_CHECKING:
    from voice.engines.llm.base import ChatModel
    from voice.engines.tts.base import TextToSpeech

Voiced = tuple[str, np.ndarray, int]  # a chunk of the reply, its audio and sample rate


@dataclass(eq=False)
class ReplyWriter:
    spec: CallSpec
    system_prompt: str
    llm: ChatModel
    tts: TextToSpeech

    async def pieces(
        self, history: list[dict], cancel: threading.Event, on_first_token: Callable[[int], None]
    ) -> AsyncIterator[str]:
        """The LLM's reply to ``history`` as an async stream of text pieces (generated in a
        thread, which stops at the next token once ``cancel`` is set)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        messages = history_trim(
            self.system_prompt,
            history,
            budget_tokens=self.llm.context_tokens - self.spec.llm_max_tokens - 64,
            count=self.llm.count_tokens,
        )
        started = time.monotonic()

        def generate() -> None:
            try:
                for piece in self.llm.stream_reply(
                    messages,
                    temperature=self.spec.llm_temperature,
                    max_tokens=self.spec.llm_max_tokens,
                    cancel=cancel,
                ):
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
    ) -> AsyncIterator[Voiced]:
        """(chunk, pcm, rate) for each speakable chunk of ``pieces``, synthesized as it comes;
        ``on_first_chunk`` gets the ms the first chunk took to synthesize."""
        async for chunk in speakable(pieces):
            started = time.monotonic()
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
