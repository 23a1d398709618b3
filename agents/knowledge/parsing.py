"""From an uploaded file to text, and from text to sections (headings and paragraphs).

Two steps, because only the text is kept: ``document_extract`` turns the upload into the text that
is stored (HTML becomes a plain outline with ``#`` headings, a PDF its pages' text), and
``document_sections`` reads the structure back from that text whenever the document is indexed.
Chunking the sections is chunking.py's job.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import PurePath

from django.conf import settings
from rest_framework import status

from agents.knowledge.models import KnowledgeDocument
from thinnest_site.errors import InvalidRequest

Kind = KnowledgeDocument.Kind

KIND_BY_EXTENSION = {
    ".txt": Kind.TEXT,
    ".text": Kind.TEXT,
    ".md": Kind.MARKDOWN,
    ".markdown": Kind.MARKDOWN,
    ".html": Kind.HTML,
    ".htm": Kind.HTML,
    ".pdf": Kind.PDF,
}


class DocumentInvalid(InvalidRequest):
    """An upload the knowledge base cannot take, with a message for the person who sent it."""

    code = "invalid_document"


@dataclass(frozen=True)
class Extracted:
    text: str
    title: str  # from the document itself (an HTML <title>, a first heading); may be empty


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]  # outermost first; empty before the first heading
    paragraphs: tuple[str, ...]


def document_kind_from_name(name: str) -> str:
    extension = PurePath(name).suffix.lower()
    if extension not in KIND_BY_EXTENSION:
        known = " ".join(sorted(KIND_BY_EXTENSION))
        raise DocumentInvalid(f"{name}: unsupported file type (supported: {known}).")
    return KIND_BY_EXTENSION[extension]


def document_extract(
    *, kind: str, data: bytes | None = None, content: str | None = None
) -> Extracted:
    """The text to store for an upload (``data``) or a pasted text (``content``); raises
    ``DocumentInvalid`` for anything that would give no searchable text."""
    if (data is None) == (content is None):
        raise ValueError("Give either data or content.")
    if kind not in Kind.values:
        raise DocumentInvalid(
            f"Unsupported document kind {kind!r} (one of {', '.join(Kind.values)})."
        )
    size = len(data) if data is not None else len(content.encode())
    limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    if size > limit:
        raise DocumentInvalid(
            f"The document is {size / 2**20:.1f} MB; the largest accepted is {limit / 2**20:.1f} MB.",
            code="document_too_large",
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if kind == Kind.PDF:
        if data is None:
            raise DocumentInvalid("A PDF must be uploaded as a file.")
        extracted = _pdf_extract(data)
    else:
        text = content if content is not None else _decode(data)
        extracted = _html_extract(text) if kind == Kind.HTML else Extracted(text, "")
    text = _clean(extracted.text)
    if not text.strip():
        raise DocumentInvalid(_EMPTY_MESSAGES.get(kind, "The document has no text."))
    # Parsed once here to refuse a text that would give no chunk (and for Markdown's title).
    if kind == Kind.MARKDOWN:
        sections, title = _markdown_outline(text)
    else:
        sections, title = document_sections(kind=kind, text=text), extracted.title
    if not sections:
        if kind == Kind.FAQ:
            raise DocumentInvalid("Questions and answers are written as 'Q: …' and 'A: …' lines.")
        raise DocumentInvalid("The document has headings but no text under them.")
    return Extracted(text, _clean(title).strip()[:200])


_EMPTY_MESSAGES = {
    Kind.PDF: "The PDF has no text that can be extracted (a scan? text recognition is not "
    "done here).",
    Kind.HTML: "The page has no text outside scripts, styles and navigation.",
}


def document_sections(*, kind: str, text: str) -> list[Section]:
    """The stored text's sections, in order. FAQ entries are one section each, with the question
    and the answer as its two paragraphs."""
    if kind == Kind.MARKDOWN:
        return _markdown_sections(text)
    if kind == Kind.HTML:
        return _outline_sections(text)
    if kind == Kind.FAQ:
        return _faq_sections(text)
    paragraphs = _paragraphs(text)
    return [Section((), tuple(paragraphs))] if paragraphs else []


def faq_text(*, question: str, answer: str) -> str:
    question, answer = " ".join(question.split()), " ".join(answer.split())
    if not question or not answer:
        raise DocumentInvalid("A question and its answer are both needed.")
    return f"Q: {question}\nA: {answer}"


# --- text ---------------------------------------------------------------------------------------

# Control characters other than newline and tab: PostgreSQL refuses NUL in text, and PDFs and
# odd encodings bring the others.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # The other encoding Western text files come in; it maps nearly every byte.
        return data.decode("cp1252", errors="replace")


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text).replace("\t", " ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _paragraphs(text: str) -> list[str]:
    """Blocks between blank lines, each on one line. Lines are joined with a space: a line break
    inside a block is usually wrapping (PDFs, hard-wrapped text); sentence ends cut chunks."""
    blocks = re.split(r"\n\s*\n", text)
    return [" ".join(block.split()) for block in blocks if block.strip()]


# --- PDF ----------------------------------------------------------------------------------------


def _pdf_extract(data: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentInvalid("The PDF is protected by a password.")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or ""
    except DocumentInvalid:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        # pypdf raises more than its own errors on a damaged file; none of them is ours to fix.
        raise DocumentInvalid(f"The file could not be read as a PDF ({exc}).") from exc
    return Extracted("\n\n".join(pages), str(title))


# --- HTML ---------------------------------------------------------------------------------------

# Not text a caller would be told: code, styling, page chrome.
_HTML_SKIPPED = {"script", "style", "noscript", "template", "head", "svg", "nav", "iframe", "form"}
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
# Elements that end the running paragraph (before and after them).
_HTML_BLOCKS = {
    "address", "article", "aside", "blockquote", "body", "dd", "details", "dl", "div", "dt",
    "fieldset", "figcaption", "figure", "footer", "header", "hr", "li", "main", "ol", "p", "pre",
    "section", "summary", "table", "tbody", "thead", "tfoot", "tr", "ul",
}  # fmt: skip


def _html_extract(html: str) -> Extracted:
    """The page as an outline: ``#`` heading lines and paragraphs between blank lines. Not
    Markdown: the paragraphs are not escaped, so they are read back by ``_outline_sections``,
    which knows no other markup."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    blocks: list[str] = []
    if tree.body is not None:
        running: list[str] = []
        _html_walk(tree.body, blocks, running)
        _html_flush(blocks, running)
    if not title:
        title = next((b.lstrip("#").strip() for b in blocks if b.startswith("# ")), "")
    return Extracted("\n\n".join(blocks), title)


def _html_walk(node, blocks: list[str], running: list[str]) -> None:
    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "-text":
            running.append(child.text_content or "")
        elif tag in _HTML_SKIPPED or tag.startswith("-"):  # comments, doctype
            continue
        elif tag in _HTML_HEADINGS:
            _html_flush(blocks, running)
            heading = " ".join(child.text(separator=" ").split())
            if heading:
                blocks.append(f"{'#' * _HTML_HEADINGS[tag]} {heading}")
        elif tag == "br":
            running.append(" ")
        elif tag in ("td", "th"):
            if "".join(running).strip():
                running.append(" | ")
            _html_walk(child, blocks, running)
        elif tag == "img":
            running.append(f" {child.attributes.get('alt') or ''} ")
        elif tag in _HTML_BLOCKS:
            _html_flush(blocks, running)
            _html_walk(child, blocks, running)
            _html_flush(blocks, running)
        else:
            _html_walk(child, blocks, running)


def _html_flush(blocks: list[str], running: list[str]) -> None:
    text = " ".join("".join(running).split())
    running.clear()
    if text:
        blocks.append(text)


_OUTLINE_HEADING = re.compile(r"^(#{1,6}) (.+)$")


def _outline_sections(text: str) -> list[Section]:
    sections: list[Section] = []
    headings: list[tuple[int, str]] = []
    paragraphs: list[str] = []

    def close() -> None:
        if paragraphs:
            sections.append(Section(tuple(h for _, h in headings), tuple(paragraphs)))
            paragraphs.clear()

    for block in _paragraphs(text):
        match = _OUTLINE_HEADING.match(block)
        if match is None:
            paragraphs.append(block)
            continue
        close()
        level = len(match.group(1))
        headings[:] = [(lvl, h) for lvl, h in headings if lvl < level] + [(level, match.group(2))]
    close()
    return sections


# --- Markdown -----------------------------------------------------------------------------------


def _markdown_parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table")


def _inline_text(token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        # image: its alt text is its children's text, which markdown-it gives as ``content``
        elif child.type == "image":
            parts.append(child.content)
    return " ".join("".join(parts).split())


def _markdown_sections(text: str) -> list[Section]:
    return _markdown_outline(text)[0]


def _markdown_outline(text: str) -> tuple[list[Section], str]:
    """The sections (headings, paragraphs, list items, table rows with cells joined by " | ",
    code blocks; inline markup such as emphasis, links and inline HTML reduced to its text) and
    the title: the first top-level heading, if any."""
    from selectolax.lexbor import LexborHTMLParser

    sections: list[Section] = []
    headings: list[tuple[int, str]] = []
    paragraphs: list[str] = []
    row: list[str] | None = None
    title = ""

    def close() -> None:
        if paragraphs:
            sections.append(Section(tuple(h for _, h in headings), tuple(paragraphs)))
            paragraphs.clear()

    tokens = _markdown_parser().parse(text)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            close()
            level = int(token.tag[1])
            heading = _inline_text(tokens[index + 1])
            if level == 1 and not title:
                title = heading
            headings[:] = [(lvl, h) for lvl, h in headings if lvl < level] + [(level, heading)]
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            if row and any(row):
                paragraphs.append(" | ".join(row))
            row = None
        elif token.type == "inline":
            if tokens[index - 1].type == "heading_open":
                continue
            inline = _inline_text(token)
            if row is not None:
                row.append(inline)
            elif inline:
                paragraphs.append(inline)
        elif token.type in ("fence", "code_block"):
            paragraphs.extend(_paragraphs(token.content))
        elif token.type == "html_block":
            paragraphs.extend(_paragraphs(LexborHTMLParser(token.content).text(separator=" ")))
    close()
    return sections, title


# --- FAQ ----------------------------------------------------------------------------------------

_FAQ_ENTRY = re.compile(r"^Q:\s*(.+?)\n\s*A:\s*(.+?)(?=\n\s*Q:|\Z)", re.MULTILINE | re.DOTALL)


def _faq_sections(text: str) -> list[Section]:
    return [
        Section((), (f"Q: {' '.join(q.split())}", f"A: {' '.join(a.split())}"))
        for q, a in _FAQ_ENTRY.findall(text)
    ]
