"""What the language model reads for one reply (voice/pipeline/prompt.py)."""

from __future__ import annotations

from voice.pipeline.prompt import DONT_KNOW, EXAMPLE_TURNS, Fact, ReplyPrompt


def words(text: str) -> int:
    return len(text.split())


FACT = Fact(text="We open at 7 am.", document_id="doc_1", document_title="Hours", chunk_id=4)


def test_context_fills_placeholders_and_is_stated_as_facts_about_the_caller():
    prompt = ReplyPrompt.build(
        template="You help callers of {{company}}.",
        context={"company": "Sunrise Bakery", "user_name": "Jane Doe"},
    )
    assert prompt.system.startswith("You help callers of Sunrise Bakery.")
    assert "About the caller (to address them, never an answer to their questions)" in (
        prompt.system
    )
    assert "user_name: Jane Doe" in prompt.system and "voice call" in prompt.system


def test_a_grounded_prompt_says_to_answer_from_the_facts_or_say_it_does_not_know():
    prompt = ReplyPrompt.build(
        template="", context={}, grounded=True, handoff_line="Call Maria on 555 0142."
    )
    assert DONT_KNOW in prompt.system
    # The writer adds the hand-off line after a "don't know": in the prompt, small models
    # recited it in every reply.
    assert "555 0142" not in prompt.system
    ungrounded = ReplyPrompt.build(template="", context={})
    assert DONT_KNOW not in ungrounded.system


def test_a_grounded_prompt_shows_worked_examples_before_the_conversation():
    prompt = ReplyPrompt.build(template="Bakery.", context={}, grounded=True)
    history = [{"role": "user", "content": "When do you open?"}]
    messages = prompt.messages(history, [FACT], budget_tokens=1000, count=words)
    examples = messages[1:-1]
    assert examples == list(EXAMPLE_TURNS)
    assert [m["role"] for m in examples] == ["user", "assistant"] * 3
    assert {"role": "assistant", "content": DONT_KNOW} in examples
    ungrounded = ReplyPrompt.build(template="Bakery.", context={})
    assert len(ungrounded.messages(history, [], budget_tokens=1000, count=words)) == 2
    # The examples count in the budget: with them, fewer turns of history fit.
    long_history = [{"role": "user", "content": "word " * 30} for _ in range(8)]
    with_examples = prompt.messages(long_history, [], budget_tokens=300, count=words)
    without = ungrounded.messages(long_history, [], budget_tokens=300, count=words)
    assert len(with_examples) - len(EXAMPLE_TURNS) < len(without)


def test_the_facts_go_with_the_latest_question_only():
    prompt = ReplyPrompt.build(template="Bakery.", context={}, grounded=True)
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "When do you open?"},
    ]
    messages = prompt.messages(history, [FACT], budget_tokens=1000, count=words)
    conversation = messages[1 + len(EXAMPLE_TURNS) :]
    assert [m["role"] for m in conversation] == ["user", "assistant", "user"]
    assert conversation[0]["content"] == "Hi"
    assert messages[-1]["content"] == "Facts:\n- We open at 7 am.\n\nCaller: When do you open?"
    assert history[-1]["content"] == "When do you open?"  # the call's history is untouched


def test_a_grounded_reply_with_nothing_found_is_told_so():
    prompt = ReplyPrompt.build(template="", context={}, grounded=True)
    messages = prompt.messages(
        [{"role": "user", "content": "Pizza?"}], [], budget_tokens=100, count=words
    )
    assert messages[-1]["content"].startswith("Facts:\n- (none)")


def test_older_turns_give_way_to_the_budget_and_the_latest_stays():
    prompt = ReplyPrompt.build(template="Short.", context={})
    history = [{"role": "user", "content": f"turn {i} " + "word " * 20} for i in range(10)]
    messages = prompt.messages(history, [], budget_tokens=120, count=words)
    assert messages[-1]["content"].startswith("turn 9")
    kept = [m["content"].split()[1] for m in messages[1:]]
    assert kept == ["6", "7", "8", "9"][-len(kept) :] and len(kept) < 10
