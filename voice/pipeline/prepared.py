"""A reply written and voiced from the speculative transcript while the caller is silent but the
turn has not ended: if the turn then ends on that transcript, its audio is ready (or on its way)
and plays at once; if the caller speaks on, it is dropped unheard."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator

from voice.pipeline.reply import ReplyWriter, Voiced

logger = logging.getLogger(__name__)


class PreparedReply:
    """Starts writing and voicing at once. Nothing of it is heard, shown or kept unless the
    conversation adopts it for a turn whose text is this very guess (``answers``)."""

    def __init__(
        self, guess: asyncio.Future, history: list[dict], writer: ReplyWriter, session_id: str
    ) -> None:
        self.guess = guess
        self.session_id = session_id
        self.cancel = threading.Event()
        self.chunks: asyncio.Queue[Voiced | None] = asyncio.Queue()  # then None
        self.first_token_at: float | None = None
        self.first_audio_at: float | None = None
        self.sources: list[dict] = []  # the knowledge it was given
        self.prompt_stats: dict = {}  # the LLM's prompt and cached tokens
        self.task = asyncio.create_task(self._prepare(writer, history))
        # A dropped preparation is never awaited: its failure is logged, not lost. (An adopted
        # one re-raises it in the reply, which ends the call.)
        self.task.add_done_callback(self._log_failure)

    def answers(self, transcription: asyncio.Future | None) -> bool:
        """Whether a turn whose text comes from ``transcription`` is answered by this reply."""
        return transcription is not None and transcription is self.guess

    def drop(self) -> None:
        self.cancel.set()
        self.task.cancel()

    async def audio(self, timing: dict) -> AsyncIterator[Voiced]:
        """The prepared chunks as they come; ``timing`` gets the breakdown of only what was left
        to wait for after the turn ended (0 when the first chunk was ready before)."""
        adopted = time.monotonic()
        first = True
        while (item := await self.chunks.get()) is not None:
            if first:
                first = False
                token_at = self.first_token_at or adopted
                audio_at = self.first_audio_at or time.monotonic()
                timing["llm_first_token_ms"] = round(max(0.0, token_at - adopted) * 1000)
                timing["tts_first_chunk_ms"] = round(
                    max(0.0, audio_at - max(token_at, adopted)) * 1000
                )
                timing.update(self.prompt_stats)
            yield item
        await self.task  # an LLM or TTS failure surfaces as it would in a live reply

    async def _prepare(self, writer: ReplyWriter, history: list[dict]) -> None:
        def first_token(_ms: int) -> None:
            self.first_token_at = time.monotonic()

        try:
            pieces = writer.pieces(
                history,
                self.cancel,
                on_first_token=first_token,
                sources=self.sources,
                prompt_stats=self.prompt_stats,
            )
            async for item in writer.voiced(pieces):
                if self.first_audio_at is None:
                    self.first_audio_at = time.monotonic()
                self.chunks.put_nowait(item)
        finally:
            self.chunks.put_nowait(None)

    def _log_failure(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.warning(
                "call %s: a reply prepared in the pause failed",
                self.session_id,
                exc_info=task.exception(),
            )
