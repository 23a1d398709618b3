from __future__ import annotations

import pytest

from voice.engines.text import (
    fill_placeholders,
    history_trim,
    speakable_chunks,
    system_prompt_build,
)


def test_placeholders_are_filled_from_the_context_and_unknown_ones_vanish():
    assert fill_placeholders(
        "Hi {{ user_name }}, on {{page}}{{missing}}.", {"user_name": "Jane", "page": "pricing"}
    ) == ("Hi Jane, on pricing.")


def test_the_system_prompt_carries_the_context_as_facts():
    prompt = system_prompt_build(
        "You help {{user_name}}.", {"user_name": "Jane Doe", "page": "pricing"}
    )
    assert prompt.startswith("You help Jane Doe.")
    assert "- page: pricing" in prompt and "voice call" in prompt


def test_history_keeps_the_newest_turns_that_fit():
    turns = [{"role": "user", "content": f"message {i} " + "word " * 20} for i in range(10)]
    # 1 token of system prompt + 30 per turn (22 words + 8 for the role markers): 3 turns fit.
    kept = history_trim("system", turns, budget_tokens=100, count=lambda text: len(text.split()))
    assert kept[0] == {"role": "system", "content": "system"}
    assert [t["content"].split()[1] for t in kept[1:]] == ["7", "8", "9"]


@pytest.mark.parametrize(
    ("pieces", "chunks"),
    [
        (
            ["Sure, we open at nine. ", "On Saturdays we close at five."],
            ["Sure, we open at nine.", "On Saturdays we close at five."],
        ),
        (
            ["Dr. Smith costs 3.5 dollars per visit today. Then more."],
            ["Dr. Smith costs 3.5 dollars per visit today.", "Then more."],
        ),
        (
            ["We", " open", " at", " nine", ",", " and", " close", " at", " five", "."],
            ["We open at nine,", "and close at five."],
        ),
        (["Yes."], ["Yes."]),
        (["Hello! How", " can I help", " you today?"], ["Hello! How can I help you today?"]),
    ],
)
def test_replies_are_cut_into_speakable_chunks(pieces, chunks):
    assert list(speakable_chunks(pieces)) == chunks


def test_the_first_chunk_comes_at_the_first_clause():
    chunks = list(
        speakable_chunks(["Well, ", "let me check that for you, it takes a moment. Done."])
    )
    assert chunks[0] == "Well, let me check that for you,"
