"""The reply writer's second try after a reply that repeated the previous one: a substantive
answer is written anew by the model; "I don't know" again is said at once in other words (the
model's rewrite only reordered the same words, 600-900 ms later; bench/voice_latency.py)."""

from __future__ import annotations

import threading

from voice.pipeline.prompt import ReplyPrompt
from voice.pipeline.reply import DONT_KNOW_LINES, ReplyWriter
from voice.protocol import CallSpec


class ScriptedLlm:
    """Says its replies in order, word by word, and counts how often it was asked."""

    context_tokens = 2048

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.asked = 0
        self.prompts: list[list[dict]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream_reply(self, messages, **kwargs):
        self.asked += 1
        self.prompts.append(messages)
        for word in self.replies.pop(0).split(" "):
            yield word + " "

    def prefill(self, messages, **kwargs) -> None:
        pass


def reply(llm: ScriptedLlm, previous: str, question: str) -> str:
    writer = ReplyWriter(
        CallSpec(session_id="s", agent_id="a"),
        ReplyPrompt.build(template="", context={}),
        llm,
        None,
    )
    history = [
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": previous},
        {"role": "user", "content": question},
    ]
    return "".join(writer.write(history, threading.Event())).strip()


def test_dont_know_again_is_said_at_once_in_other_words():
    llm = ScriptedLlm("I'm sorry, I don't know that. Can I help with anything else?")
    said = reply(llm, "I'm sorry, I don't know that.", "Who wrote it?")
    assert llm.asked == 1
    assert said in DONT_KNOW_LINES and said != "I'm sorry, I don't know that."


def test_a_repeated_answer_is_written_anew_by_the_model():
    llm = ScriptedLlm("We open at 8 am every day. Anything else?", "Yes, we deliver on weekdays.")
    said = reply(llm, "We open at 8 am every day.", "Do you deliver?")
    assert llm.asked == 2
    assert said == "Yes, we deliver on weekdays."
    # The second try's prompt starts with the whole first one, the caller's words included: the
    # model's cache keeps it all, for this try and for the next turn (a note put before the
    # caller's words cost the next turn ~50 tokens evaluated again).
    first, second = llm.prompts
    assert second[: len(first)] == first and first[-1]["content"] == "Do you deliver?"
    assert len(second) == len(first) + 1 and second[-1]["role"] == "system"


async def test_the_callers_words_so_far_are_evaluated_before_the_turn_ends(settings):
    """A partial transcript's prompt is evaluated while the caller speaks: the reply to the
    whole turn then evaluates only the words that came after (and the template's closing)."""
    from voice.engines.llm.llama import LlamaChat

    llm = LlamaChat(str(LlamaChat.resolve("smollm2")), context_tokens=1024)
    writer = ReplyWriter(
        CallSpec(session_id="s", agent_id="a", llm_max_tokens=8),
        ReplyPrompt.build(template="You answer for a bakery.", context={}),
        llm,
        None,
    )
    said = [{"role": "assistant", "content": "Hello, this is the bakery. How can I help?"}]
    writer.prefill_words([*said, {"role": "user", "content": "Can I order a birthday cake for"}])
    await writer._words_prefill
    stats: dict = {}
    turn = [*said, {"role": "user", "content": "Can I order a birthday cake for Saturday?"}]
    "".join(writer.write(turn, threading.Event(), prompt_stats=stats))
    assert stats["prompt_tokens"] > 30
    assert stats["prompt_tokens"] - stats["reused_tokens"] <= llm.count_tokens(" Saturday?") + 8

    # The model busy with another generation: nothing is evaluated, nothing waits.
    before = llm.llm.n_tokens
    with llm._lock:
        llm.prefill([*said, {"role": "user", "content": "Something else entirely"}], wait=False)
    assert llm.llm.n_tokens == before
