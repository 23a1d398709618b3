"""An agent's knowledge: its documents (a file, a pasted text, a question and its answer), each
document's chunks, and removing one. Documents are stored at once and indexed in the
background (agents/knowledge/services.py); the list shows them pending until then."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from agents.knowledge.models import KnowledgeDocument
from agents.knowledge.parsing import document_kind_from_name
from agents.knowledge.selectors import (
    knowledge_chunk_list,
    knowledge_document_get_by_source,
    knowledge_document_get_for_agent,
    knowledge_document_list,
)
from agents.knowledge.services import (
    knowledge_document_add,
    knowledge_document_remove,
    knowledge_document_update,
    knowledge_faq_add,
)
from agents.models import Agent
from agents.selectors import agent_get
from dashboard.access import staff_required
from dashboard.forms import (
    KnowledgeFaqForm,
    KnowledgePasteForm,
    KnowledgeUploadForm,
    knowledge_text_limit,
)
from dashboard.shortcuts import or_404
from thinnest_site.errors import ApplicationError

FORMS = {"upload": KnowledgeUploadForm, "paste": KnowledgePasteForm, "faq": KnowledgeFaqForm}
# Where a service's refusal of each form's input shows.
ERROR_FIELD = {"upload": "file", "paste": "text", "faq": "answer"}
# A body this much over the file limit is refused before it is parsed: nothing in it can be kept.
BODY_SLACK_BYTES = 1024 * 1024


# CSRF is checked in ``_knowledge_page``, once the body is parsed here: Django's CSRF check reads
# the form first, and a pasted text over DATA_UPLOAD_MAX_MEMORY_SIZE would make that a bare 400
# page instead of this page with the reason (the pattern Django's docs give for upload handlers).
@csrf_exempt
@staff_required(perm="agents.view_knowledgedocument", post_perm="agents.add_knowledgedocument")
def knowledge_list(request, public_id: str):
    agent = or_404(agent_get(public_id=public_id))
    if request.method == "POST":
        refusal = _body_refusal(request)
        if refusal is not None:
            status, message = refusal
            return _render(request, agent, _unbound(), status=status, error=message)
    return _knowledge_page(request, agent)


def _body_refusal(request) -> tuple[int, str] | None:
    """Why the posted body cannot be read as one of the forms, or None once it is parsed."""
    limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + BODY_SLACK_BYTES:
        return 413, (
            f"The upload is {length / 2**20:.1f} MB; the largest file accepted is "
            f"{limit / 2**20:.1f} MB. Nothing was added."
        )
    try:
        request.POST, request.FILES  # noqa: B018  (parsed now, so that errors are ours)
    except RequestDataTooBig:
        return 413, (
            f"The pasted text is too long: up to {knowledge_text_limit() / 2**20:.1f} MB can be "
            "pasted. Upload it as a .txt file instead. Nothing was added."
        )
    except (MultiPartParserError, TooManyFieldsSent, TooManyFilesSent) as exc:
        return 400, f"The form could not be read ({exc}). Nothing was added."
    return None


@csrf_protect
def _knowledge_page(request, agent: Agent):
    forms = _unbound()
    status = 200
    if request.method == "POST":
        which = request.POST.get("form")
        if which not in FORMS:
            return _render(request, agent, forms, status=400, error="Unknown form.")
        form = forms[which] = FORMS[which](request.POST, request.FILES)
        if form.is_valid():
            try:
                message = _add(agent, which, form.cleaned_data)
            except ApplicationError as exc:  # the document gives no text, an unknown file type
                form.add_error(ERROR_FIELD[which], exc.message)
                status = exc.status_code
            else:
                messages.success(request, message)
                return redirect("dashboard:knowledge_list", public_id=agent.public_id)
        else:
            too_large = form.has_error("file", "too_large") or form.has_error("text", "too_large")
            status = 413 if too_large else 400
    return _render(request, agent, forms, status=status)


def _unbound() -> dict:
    return {name: form_class() for name, form_class in FORMS.items()}


def _add(agent: Agent, which: str, data: dict) -> str:
    """Store the document; what to tell the user."""
    pending = "It is being indexed in the background and will show as ready in a moment."
    if which == "faq":
        knowledge_faq_add(agent=agent, question=data["question"], answer=data["answer"])
        return f"Question added. {pending}"
    if which == "paste":
        document = knowledge_document_add(
            agent=agent, kind=data["kind"], content=data["text"], title=data["title"]
        )
        return f"“{document.title}” added. {pending}"
    upload = data["file"]
    kind = document_kind_from_name(upload.name)
    content = upload.read()
    # As the knowledge_add command does: a file added again replaces its document.
    existing = knowledge_document_get_by_source(agent_id=agent.pk, source_name=upload.name)
    if existing is not None and existing.kind == kind:
        document = knowledge_document_update(document=existing, data=content, title=data["title"])
        return f"“{document.title}” replaced by the new {upload.name}. {pending}"
    document = knowledge_document_add(
        agent=agent, kind=kind, data=content, title=data["title"], source_name=upload.name
    )
    return f"“{document.title}” added. {pending}"


def _render(request, agent: Agent, forms: dict, *, status: int, error: str = ""):
    documents = list(knowledge_document_list(agent_id=agent.pk))
    return render(
        request,
        "dashboard/knowledge_list.html",
        {
            "agent": agent,
            "documents": documents,
            "pending": any(d.status == KnowledgeDocument.Status.PENDING for d in documents),
            "forms": forms,
            "error": error,
            "nav": "agents",
        },
        status=status,
    )


@staff_required(perm="agents.view_knowledgedocument")
def knowledge_document_detail(request, public_id: str, document_id: str):
    agent = or_404(agent_get(public_id=public_id))
    document = or_404(knowledge_document_get_for_agent(agent_id=agent.pk, public_id=document_id))
    return render(
        request,
        "dashboard/knowledge_document.html",
        {
            "agent": agent,
            "document": document,
            "chunks": knowledge_chunk_list(document_id=document.pk),
            "nav": "agents",
        },
    )


@staff_required(perm="agents.delete_knowledgedocument")
def knowledge_document_delete(request, public_id: str, document_id: str):
    agent = or_404(agent_get(public_id=public_id))
    document = or_404(knowledge_document_get_for_agent(agent_id=agent.pk, public_id=document_id))
    if request.method == "POST":
        knowledge_document_remove(document=document)
        messages.success(request, f"“{document.title}” removed from {agent.name}'s knowledge.")
        return redirect("dashboard:knowledge_list", public_id=agent.public_id)
    return render(
        request,
        "dashboard/confirm.html",
        {
            "title": f"Remove “{document.title}”?",
            "body": f"{agent.name} will no longer answer from it, from the next question on. "
            "Calls that cited it keep their transcripts.",
            "action": "Remove",
            "cancel_url": reverse("dashboard:knowledge_list", args=[agent.public_id]),
            "nav": "agents",
        },
    )
