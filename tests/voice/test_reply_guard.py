"""The guard between the LLM's tokens and the speech: two sentences at most, never the previous
reply again (pure: no model)."""

from __future__ import annotations

from voice.pipeline.guard import ReplyGuard


def stream(guard: ReplyGuard, text: str, size: int = 3) -> str:
    out = ""
    for i in range(0, len(text), size):
        out += guard.feed(text[i : i + size])
        if guard.complete or guard.repeated:
            break
    return out + guard.finish()


def test_a_reply_stops_after_its_second_sentence():
    guard = ReplyGuard()
    spoken = stream(guard, "We open at 7 am. We close at 6 pm. Parking is free behind us. Bye.")
    assert spoken == "We open at 7 am. We close at 6 pm."
    assert guard.complete and not guard.repeated


def test_a_reply_that_is_the_previous_one_again_is_caught_before_it_is_spoken():
    previous = "We take cards and cash, but not cheques."
    guard = ReplyGuard(previous)
    spoken = stream(guard, "We take cards and cash, but not cheques. Anything else?")
    assert guard.repeated
    assert spoken == ""


def test_the_same_short_opening_is_allowed_when_the_reply_goes_on_differently():
    guard = ReplyGuard("Yes. We open at seven.")
    spoken = stream(guard, "Yes. Gluten-free bread is baked on Tuesdays.")
    assert not guard.repeated
    assert spoken == "Yes. Gluten-free bread is baked on Tuesdays."


def test_a_reply_that_starts_like_the_previous_one_is_held_only_until_it_differs():
    guard = ReplyGuard("We open at 7 am on weekdays.")
    assert guard.feed("We open") == ""  # still word for word the previous reply
    assert guard.feed(" at 8 am") == "We open at 8 am"  # differs: all of it goes at once
    assert guard.finish() == ""


def test_a_whole_previous_reply_repeated_without_a_sentence_end_is_caught_at_the_end():
    guard = ReplyGuard("Maria Lopez owns the bakery")
    assert stream(guard, "Maria Lopez owns the bakery") == ""
    assert guard.repeated


def test_numbers_and_titles_do_not_end_a_sentence():
    guard = ReplyGuard()
    spoken = stream(guard, "A loaf is 3.50 dollars. Dr. Patel sees you at 9. Then more.")
    assert spoken == "A loaf is 3.50 dollars. Dr. Patel sees you at 9."
