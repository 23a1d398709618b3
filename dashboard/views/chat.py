"""Chat with an agent from its page: the same prompt, knowledge and model as its calls, in text
(voice/chat.py), each reply with the documents it was given and how long it took. The page keeps
the conversation and sends it with each question."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from django.db import close_old_connections
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from agents.selectors import agent_get
from dashboard.access import staff_required
from dashboard.shortcuts import json_error
from sessions.services import call_context_validate
from thinnest_site.errors import ApplicationError, InvalidRequest
from voice.chat import MAX_HISTORY_TURNS, ChatError, ChatReply, agent_chat_reply
from voice.engines.models import ModelUnavailable

CHAT_MAX_BODY_BYTES = 64 * 1024
QUESTION_MAX_CHARS = 1000

# Replies are written on a thread of their own, one at a time. Not in Django's sync thread: every
# sync view of the process shares that one (the start-call API among them), and a reply holds it
# for seconds of model time. One thread, because the model writes one reply at a time anyway.
_replies = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-chat")


@require_POST
@staff_required(perm="agents.view_agent")
async def agent_chat(request, public_id: str):
    """``{"question": text, "history": [{"role": "user"|"assistant", "content": text}, ...],
    "context": {placeholder: value}}`` -> ``{"reply", "sources": [{"document_id", "title",
    "chunk_id", "url"}], "latency_ms"}``; errors as the API's ``{"error": {"code",
    "message"}}``. CSRF-protected like every dashboard POST (the X-CSRFToken header)."""
    try:
        question, history, context = _chat_input(request)
    except ApplicationError as exc:
        return json_error(exc.status_code, exc.code, exc.message)
    agent = await sync_to_async(agent_get)(public_id=public_id)
    if agent is None:
        return json_error(404, "agent_not_found", f"There is no agent {public_id}.")
    ask = partial(
        _reply,
        agent_public_id=agent.public_id,
        question=question,
        history=history,
        context=context,
    )
    try:
        reply = await asyncio.get_running_loop().run_in_executor(_replies, ask)
    except ChatError as exc:
        return json_error(400, "invalid_request", str(exc))
    except ModelUnavailable as exc:
        return json_error(
            503,
            "model_unavailable",
            f"This server cannot run the agent's language model: {exc}",
        )
    body = reply.as_json()
    for source in body["sources"]:
        source["url"] = reverse(
            "dashboard:knowledge_document", args=[agent.public_id, source["document_id"]]
        )
    return JsonResponse(body)


def _chat_input(request) -> tuple[str, list, dict]:
    """The question, the earlier turns and the placeholders' values, checked; raises
    ``ApplicationError`` with what is wrong."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raw = None
    if raw is None or len(raw) > CHAT_MAX_BODY_BYTES:
        raise ApplicationError(
            f"The request is over {CHAT_MAX_BODY_BYTES // 1024} KB: send a shorter question or "
            "fewer earlier turns.",
            code="request_too_large",
            status_code=413,
        )
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(
            'The body must be JSON: {"question": "...", "history": [...]}.'
        ) from exc
    if not isinstance(body, dict):
        raise InvalidRequest(
            'The body must be a JSON object: {"question": "...", "history": [...]}.'
        )
    question = body.get("question")
    if not isinstance(question, str) or not question.strip():
        raise InvalidRequest("question must be the text to ask.")
    if len(question) > QUESTION_MAX_CHARS:
        raise InvalidRequest(f"question is limited to {QUESTION_MAX_CHARS} characters.")
    history = body.get("history") or []
    if not isinstance(history, list) or len(history) > MAX_HISTORY_TURNS:
        raise InvalidRequest(f"history must be a list of at most {MAX_HISTORY_TURNS} turns.")
    # The same rules as a call's context: the prompt's placeholders are filled alike.
    context = call_context_validate(body.get("context"))
    return question, history, context


def _reply(**question) -> ChatReply:
    # A thread Django does not manage: its database connection is closed after each reply, as
    # Django does after a request (and checked before: one left broken by the last reply).
    close_old_connections()
    try:
        return agent_chat_reply(**question)
    finally:
        close_old_connections()
