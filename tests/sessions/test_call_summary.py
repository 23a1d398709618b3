"""After the call: a two-sentence summary by the real (small) model and an outcome by rules,
written once, then a complete ``call.ended``; the wait while calls are live (no broker); the
sweep that catches lost tasks; and where staff read them (call page, list, search, exports)."""

from __future__ import annotations

import csv
import io
import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.knowledge.services import knowledge_faq_add
from agents.models import WebhookDelivery
from sessions import summaries, tasks
from sessions.models import CallSession, TranscriptEntry
from sessions.services import call_session_end, call_transcript_store, call_turn_record
from sessions.stats import CallStats
from sessions.summaries import call_summaries_overdue, call_summary_delay, call_summary_write
from tests.agents.test_webhooks import receiver  # noqa: F401  (a fixture)
from tests.factories import AgentFactory, make_staff_user, make_webhook
from tests.sessions.test_transcript_tasks import TURNS, active_call
from thinnest_site.background import background_cancel_pending, background_wait_idle
from voice import summary as voice_summary
from voice.pipeline.prompt import DONT_KNOW
from voice.summary import (
    SILENT_CALL_SUMMARY,
    Turn,
    call_outcome,
    summary_clean,
)

pytestmark = pytest.mark.django_db

HANDOFF = "You can reach our team on 555 0142."
# No DNS on the test machine: webhooks go to this machine (no test here waits for their sends).
LOCAL_HOOK = "http://127.0.0.1:9/hooks"


@pytest.fixture(autouse=True)
def _small_model(settings):
    # The smallest packaged model, as tests/voice/test_conversation.py uses.
    settings.LLM_MODEL = "smollm2"
    settings.LLM_MODEL_PATH = ""


@pytest.fixture(autouse=True)
def _local_webhooks(settings):
    settings.WEBHOOK_ALLOW_HTTP_LOCALHOST = True
    settings.WEBHOOK_ALLOWED_NETWORKS = []


@pytest.fixture(autouse=True)
def _background_drained():
    # Summaries and webhook sends run on the background threads: none may reach the next test.
    yield
    background_cancel_pending()
    assert background_wait_idle(timeout=60)


def ended_call(agent, turns=TURNS, *, api_key=None) -> CallSession:
    """A call that connected, with ``turns`` stored and no summary yet."""
    session = active_call(agent, api_key)
    for turn in turns:
        call_turn_record(session_id=session.public_id, turn=turn)
    call_session_end(session_id=session.public_id, reason="user_hangup")
    call_transcript_store(session_id=session.public_id)
    return CallSession.objects.get(pk=session.pk)


def turns_of(*lines: tuple[str, str]) -> list[dict]:
    return [dict(seq=i, role=r, text=t, start_ms=i, end_ms=i) for i, (r, t) in enumerate(lines)]


# --- the outcome, by rules --------------------------------------------------------------------


def outcome(*lines: tuple[str, str], handoff: str = HANDOFF) -> str:
    return call_outcome(turns=[Turn(role, text) for role, text in lines], handoff_line=handoff)


def test_a_call_without_caller_words_or_without_an_answer_to_them_is_abandoned():
    assert outcome() == "abandoned"
    assert outcome(("agent", "Hello! How can I help?")) == "abandoned"
    assert outcome(("agent", "Hello!"), ("user", "What time do you open?")) == "abandoned"


def test_an_agent_turn_with_the_hand_off_line_hands_the_call_off():
    said = f"{DONT_KNOW} {HANDOFF}"
    assert outcome(("user", "Can I book a table?"), ("agent", said)) == "handed_off"
    # Whatever the punctuation and case speech and the guard gave it.
    said = "i'm sorry i don't know that you can reach our team on 555 0142"
    assert outcome(("user", "Can I book a table?"), ("agent", said)) == "handed_off"


def test_not_knowing_without_a_hand_off_is_not_answered():
    lines = [("user", "Hours?"), ("agent", "We open at 7."), ("user", "Tables?")]
    assert outcome(*lines, ("agent", DONT_KNOW)) == "not_answered"
    assert outcome(("user", "Tables?"), ("agent", f"{DONT_KNOW} Sorry."), handoff="") == (
        "not_answered"
    )


def test_any_other_answered_call_is_answered():
    assert outcome(("user", "Hours?"), ("agent", "We open at 7 am.")) == "answered"
    # A hand-off line that was never said does not count; neither does an empty one.
    assert outcome(("user", "Hours?"), ("agent", "We open at 7."), handoff="") == "answered"


def test_the_outcomes_are_the_call_sessions_choices():
    values = {voice_summary.ANSWERED, voice_summary.NOT_ANSWERED, voice_summary.HANDED_OFF}
    assert values | {voice_summary.ABANDONED} == set(CallSession.Outcome.values)


def test_a_long_call_keeps_what_the_caller_called_about_and_its_last_turns():
    turns = [Turn("agent", "Hello!"), Turn("user", "I need a cake for Saturday.")]
    turns += [Turn("user" if i % 2 else "agent", f"turn {i} " + "word " * 20) for i in range(40)]
    words = lambda text: len(text.split())  # noqa: E731  (a token counter, roughly)
    messages = voice_summary.summary_messages(turns, budget_tokens=200, count=words)
    call = messages[1]["content"]
    assert sum(words(m["content"]) for m in messages) <= 200
    assert call.startswith("<call>\nCaller: I need a cake for Saturday.\n…\n")
    assert "turn 39" in call and "turn 0 " not in call and "Hello!" not in call
    short = voice_summary.summary_messages(turns[:2], budget_tokens=200, count=words)
    assert "Agent: Hello!\nCaller: I need a cake for Saturday.\n</call>" in short[1]["content"]


def test_a_summary_is_cut_to_two_sentences_without_a_label():
    text = "Summary: The caller asked about hours. The agent said 7 am. Then more. And more."
    assert summary_clean(text) == "The caller asked about hours. The agent said 7 am."
    assert summary_clean("**Notes:** Dr. Who called at 3.5 pm.") == "Dr. Who called at 3.5 pm."
    # A quotation the cut ended inside is closed.
    text = 'The caller asked. The agent said, "We open at 7. Come early."'
    assert summary_clean(text) == 'The caller asked. The agent said, "We open at 7."'
    assert summary_clean("The call: The caller asked.") == "The caller asked."


# --- writing it -------------------------------------------------------------------------------


def test_the_model_writes_a_short_summary_and_the_rules_the_outcome(agent):
    session = ended_call(agent)
    written = call_summary_write(session_id=session.public_id)
    assert written.outcome == "answered"
    assert written.summary and len(written.summary) <= voice_summary.SUMMARY_MAX_CHARS
    ends = [i for i, c in enumerate(written.summary) if c in ".!?"]
    assert len([i for i in ends if voice_summary.ends_sentence(written.summary + " ", i)]) <= 2
    stored = CallSession.objects.get(pk=session.pk)
    assert (stored.summary, stored.outcome) == (written.summary, "answered")


def test_writing_it_again_keeps_the_summary_and_runs_no_model(agent, monkeypatch):
    session = ended_call(agent)
    first = call_summary_write(session_id=session.public_id)
    runs = []
    monkeypatch.setattr(
        summaries, "call_summarize", lambda **kw: runs.append(kw) or ("Other words.", "answered")
    )
    again = call_summary_write(session_id=session.public_id)
    assert (again.summary, again.outcome) == (first.summary, first.outcome) and runs == []
    forced = call_summary_write(session_id=session.public_id, force=True)
    assert forced.summary == "Other words." and len(runs) == 1


def test_two_runs_at_once_keep_the_first_summary(agent, monkeypatch):
    session = ended_call(agent)
    written = []

    def summarize(**kwargs):
        # The other run writes while this one waits for the model.
        if not written:
            written.append(True)
            CallSession.objects.filter(pk=session.pk).update(summary="First.")
        return "Second.", "answered"

    monkeypatch.setattr(summaries, "call_summarize", summarize)
    assert call_summary_write(session_id=session.public_id).summary == "First."


def test_a_call_without_caller_words_needs_no_model(agent, monkeypatch):
    def no_model(name=""):
        raise AssertionError("no model for a silent call")

    monkeypatch.setattr("voice.engines.registry.llm_get", no_model)
    session = ended_call(agent, turns_of(("agent", "Hello! How can I help?")))
    written = call_summary_write(session_id=session.public_id)
    assert (written.summary, written.outcome) == (SILENT_CALL_SUMMARY, "abandoned")


def test_without_a_usable_model_the_call_keeps_its_outcome_and_still_gets_call_ended(
    agent, settings, caplog
):
    settings.LLM_MODEL_PATH = "/nonexistent/model.gguf"
    make_webhook(agent=agent, url=LOCAL_HOOK, events=["call.ended"])
    session = ended_call(agent)
    with caplog.at_level(logging.ERROR, logger="sessions.summaries"):
        written = call_summary_write(session_id=session.public_id)
    assert (written.summary, written.outcome) == ("", "answered")
    assert "Summarizing call" in caplog.text and "/nonexistent/model.gguf" in caplog.text
    delivery = WebhookDelivery.objects.get(session_id=session.public_id)
    assert delivery.event == "call.ended" and delivery.payload["data"]["outcome"] == "answered"


def test_a_forced_run_that_fails_keeps_the_summary_written_before(agent, settings):
    session = ended_call(agent)
    CallSession.objects.filter(pk=session.pk).update(summary="Written before.")
    settings.LLM_MODEL_PATH = "/nonexistent/model.gguf"
    written = call_summary_write(session_id=session.public_id, force=True)
    assert written.summary == "Written before."


def test_calls_that_never_connected_get_no_summary_and_no_call_ended(agent):
    make_webhook(agent=agent, url=LOCAL_HOOK)
    session = CallSession.objects.create(agent=agent, status="failed", token_nonce="n")
    assert call_summary_write(session_id=session.public_id).outcome == ""
    assert not WebhookDelivery.objects.exists()
    assert call_summary_write(session_id="session_gone") is None


def test_storing_the_transcript_queues_the_summary_after_the_commit(
    agent, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        "thinnest_site.background.task_enqueue",
        lambda task, args=(), countdown=0: queued.append((task.name, args)),
    )
    session = active_call(agent, None)
    with django_capture_on_commit_callbacks(execute=True):
        call_transcript_store(session_id=session.public_id)
    assert queued == []  # still live: nothing to summarize, no call.ended
    CallSession.objects.filter(pk=session.pk).update(status="ended")
    with django_capture_on_commit_callbacks(execute=True):
        call_transcript_store(session_id=session.public_id)
    ((name, (session_id, queued_at)),) = queued
    assert name == "sessions.tasks.call_summary_write" and session_id == session.public_id
    assert abs(queued_at - time.time()) < 60


# --- call.ended carries them ------------------------------------------------------------------


# Committed for real: the summary and the send run on the background threads.
@pytest.mark.django_db(transaction=True)
def test_call_ended_goes_out_once_with_the_summary_and_the_outcome(
    agent,
    secret_key,
    receiver,  # noqa: F811
):
    agent.handoff_line = HANDOFF
    agent.save()
    make_webhook(agent=agent, url=receiver.url, events=["call.ended"])
    session = active_call(agent, secret_key[0])
    for turn in turns_of(("user", "Can I book a table?"), ("agent", f"{DONT_KNOW} {HANDOFF}")):
        call_turn_record(session_id=session.public_id, turn=turn)
    call_session_end(session_id=session.public_id, reason="user_hangup")
    assert background_wait_idle(timeout=60)

    assert receiver.events() == ["call.ended"]
    data = receiver.json(0)["data"]
    stored = CallSession.objects.get(pk=session.pk)
    assert data["outcome"] == "handed_off" and data["summary"] == stored.summary != ""
    assert [turn["text"] for turn in data["transcript"]] == [
        "Can I book a table?",
        f"{DONT_KNOW} {HANDOFF}",
    ]


# --- waiting while calls are live (no broker) -------------------------------------------------


def test_the_summary_waits_while_calls_are_live_where_they_share_the_model(agent, settings):
    settings.CALL_SUMMARY_MAX_DELAY_SECONDS = 300
    now = time.time()
    assert call_summary_delay(queued_at=now, gives_way=True) == 0  # nothing live
    active_call(agent, None)
    assert call_summary_delay(queued_at=now, gives_way=True) == summaries.RECHECK_SECONDS
    assert 0 < call_summary_delay(queued_at=now - 295, gives_way=True) <= 5
    # Waited long enough: written anyway. And where it takes nothing from calls, at once.
    assert call_summary_delay(queued_at=now - 301, gives_way=True) == 0
    assert call_summary_delay(queued_at=now, gives_way=False) == 0


def test_the_task_requeues_itself_while_a_call_is_live(agent, settings, monkeypatch):
    settings.MEDIA_WORKER_EMBEDDED = True
    session = ended_call(agent)
    active_call(agent, None)  # another call, live
    requeued = []
    monkeypatch.setattr(
        tasks,
        "task_enqueue",
        lambda task, args=(), countdown=0: requeued.append((args, countdown)),
    )
    queued_at = time.time()
    tasks.call_summary_write.apply((session.public_id, queued_at))
    assert requeued == [((session.public_id, queued_at), summaries.RECHECK_SECONDS)]
    assert CallSession.objects.get(pk=session.pk).outcome == ""

    # The media worker in another process: its model is its own, its cores are the machine's.
    settings.MEDIA_WORKER_EMBEDDED = False
    tasks.call_summary_write.apply((session.public_id, queued_at))
    assert len(requeued) == 2 and CallSession.objects.get(pk=session.pk).outcome == ""

    settings.CALL_SUMMARY_GIVES_WAY_TO_CALLS = False  # Celery on a host of its own
    tasks.call_summary_write.apply((session.public_id, queued_at))
    assert len(requeued) == 2 and CallSession.objects.get(pk=session.pk).outcome == "answered"


class SlowedModel:
    """The real model, a piece at a time (50 ms each), calling ``after_first`` once the first
    piece is out: something happens while the summary is being written."""

    def __init__(self, llm, after_first) -> None:
        self.llm = llm
        self.after_first = after_first
        self.pieces_after = 0  # pieces written after ``after_first``

    def __getattr__(self, name):
        return getattr(self.llm, name)

    def stream_reply(self, messages, **kwargs):
        for index, piece in enumerate(self.llm.stream_reply(messages, **kwargs)):
            if index == 0:
                self.after_first()
            else:
                self.pieces_after += 1
            time.sleep(0.05)
            yield piece


@pytest.mark.django_db(transaction=True)  # the watching thread reads what this one commits
def test_a_call_that_connects_stops_the_summary_being_written(agent, monkeypatch):
    # Before: a summary begun in the second between two calls held the model, and the next
    # call's first reply waited 4.6 s behind it.
    from voice.engines import registry

    session = ended_call(agent)
    # The summary its stored transcript queued (committed here) runs on the background
    # threads: out of the way first, so only this test's runs use the model below.
    background_cancel_pending()
    assert background_wait_idle(timeout=60)
    CallSession.objects.filter(pk=session.pk).update(summary="", outcome="")
    live = []
    model = SlowedModel(registry.llm_get(""), lambda: live.append(active_call(agent, None)))
    monkeypatch.setattr(registry, "llm_get", lambda name="": model)
    with pytest.raises(summaries.SummaryDeferred):
        call_summary_write(session_id=session.public_id, yield_to_calls=True)
    assert len(live) == 1 and model.pieces_after <= 8  # stopped within a poll (0.2 s)
    current = CallSession.objects.get(pk=session.pk)
    assert (current.summary, current.outcome) == ("", "")  # nothing stored, nothing sent

    call_session_end(session_id=live[0].public_id, reason="user_hangup")
    model.after_first = lambda: None
    written = call_summary_write(session_id=session.public_id, yield_to_calls=True)
    assert written.summary and written.outcome == "answered"


def test_the_task_waits_again_after_giving_way_and_not_once_overdue(agent, settings, monkeypatch):
    settings.MEDIA_WORKER_EMBEDDED = True
    settings.CALL_SUMMARY_MAX_DELAY_SECONDS = 300
    session = ended_call(agent)
    asked, requeued = [], []

    def gives_way(*, session_id, yield_to_calls):
        asked.append(yield_to_calls)
        raise summaries.SummaryDeferred(session_id)

    monkeypatch.setattr(summaries, "call_summary_write", gives_way)
    monkeypatch.setattr(
        tasks, "task_enqueue", lambda task, args=(), countdown=0: requeued.append(countdown)
    )
    tasks.call_summary_write.apply((session.public_id, time.time()))
    assert asked == [True] and requeued == [summaries.RECHECK_SECONDS]
    # Overdue: written whatever the calls do.
    monkeypatch.setattr(
        summaries,
        "call_summary_write",
        lambda *, session_id, yield_to_calls: asked.append(yield_to_calls),
    )
    tasks.call_summary_write.apply((session.public_id, time.time() - 301))
    assert asked[-1] is False


def test_the_sweep_queues_summaries_whose_task_was_lost(agent, settings, monkeypatch):
    settings.CALL_SUMMARY_MAX_DELAY_SECONDS = 300
    queued = []
    monkeypatch.setattr(summaries, "call_summary_enqueue", lambda sid, **kw: queued.append(sid))
    now = timezone.now()

    def call(ended_minutes_ago: float, **fields) -> str:
        fields = {"stats": CallStats(turns=1).as_json(), **fields}
        session = CallSession.objects.create(
            agent=agent,
            status="ended",
            token_nonce="n",
            ended_at=now - timedelta(minutes=ended_minutes_ago),
            **fields,
        )
        return session.public_id

    lost = call(20)
    call(2)  # its task may still be waiting for live calls
    call(3 * 24 * 60)  # too old: from before summaries, say
    call(20, outcome="answered")  # done
    call(20, stats={})  # its transcript is not stored yet
    assert call_summaries_overdue() == [lost] and queued == [lost]


# --- where staff read them --------------------------------------------------------------------


@pytest.fixture
def staff(client):
    client.force_login(make_staff_user("staff", superuser=True))
    return client


@pytest.fixture
def summarized(agent):
    kept = knowledge_faq_add(
        agent=agent, question="Rye?", answer="7 dollars 40.", queue_index=False
    )
    session = ended_call(
        agent,
        turns_of(("user", "How much is the rye loaf?"), ("agent", "It costs 7 dollars 40.")),
    )
    TranscriptEntry.objects.filter(call=session, seq=1).update(
        sources=[
            {"document_id": kept.public_id, "title": "Rye?", "chunk_id": 1},
            {"document_id": kept.public_id, "title": "Rye?", "chunk_id": 2},
            {"document_id": "doc_removed", "title": "Old prices", "chunk_id": 3},
        ]
    )
    CallSession.objects.filter(pk=session.pk).update(
        summary="The caller asked about the sourdough price. The agent quoted it.",
        outcome="answered",
    )
    return CallSession.objects.get(pk=session.pk), kept


def test_the_call_page_shows_the_summary_the_outcome_and_each_turns_sources(staff, summarized):
    session, kept = summarized
    page = staff.get(f"/dashboard/calls/{session.public_id}/").content.decode()
    assert "The caller asked about the sourdough price. The agent quoted it." in page
    assert '<span class="badge answered">answered</span>' in page
    link = f'<a href="/dashboard/agents/{session.agent.public_id}/knowledge/{kept.public_id}/">Rye?</a>'
    assert page.count(link) == 1  # each document once per turn
    assert "Old prices <span" in page and "(removed)" in page
    waiting = ended_call(session.agent)  # its summary not written yet
    assert "Being written" in staff.get(f"/dashboard/calls/{waiting.public_id}/").content.decode()


def test_the_list_shows_outcome_and_summary_and_its_search_matches_summaries(staff, summarized):
    session, _ = summarized
    other = ended_call(AgentFactory())
    page = staff.get("/dashboard/calls/").content.decode()
    assert "The caller asked about the sourdough price." in page and ">answered<" in page
    # "sourdough" is only in the summary; the transcript says "rye loaf".
    found = staff.get("/dashboard/calls/?q=sourdough").context["page"].object_list
    assert [call.public_id for call in found] == [session.public_id]
    found = staff.get("/dashboard/calls/?q=rye").context["page"].object_list
    assert [call.public_id for call in found] == [session.public_id]
    found = staff.get("/dashboard/calls/?outcome=answered").context["page"].object_list
    assert [call.public_id for call in found] == [session.public_id]
    assert other.public_id in staff.get("/dashboard/calls/?outcome=bogus").content.decode()


def test_the_csv_and_json_exports_carry_summary_and_outcome(staff, summarized):
    session, _ = summarized
    response = staff.get("/dashboard/calls/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["outcome"] == "answered"
    assert rows[0]["summary"] == session.summary
    document = staff.get(f"/dashboard/calls/{session.public_id}/export.json").json()
    assert (document["summary"], document["outcome"]) == (session.summary, "answered")
