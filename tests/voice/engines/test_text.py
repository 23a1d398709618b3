from __future__ import annotations

import pytest

from voice.engines.text import (
    fill_placeholders,
    speakable_chunks,
)


def test_placeholders_are_filled_from_the_context_and_unknown_ones_vanish():
    assert fill_placeholders(
        "Hi {{ user_name }}, on {{page}}{{missing}}.", {"user_name": "Jane", "page": "pricing"}
    ) == ("Hi Jane, on pricing.")


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
