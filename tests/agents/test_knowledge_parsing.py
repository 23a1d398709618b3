"""From uploads to stored text to chunks: each format, the chunk rules, and the refusals."""

from __future__ import annotations

import re

import pytest

from agents.knowledge.chunking import MAX_WORDS, MIN_WORDS, document_chunks, sentences_split
from agents.knowledge.parsing import (
    DocumentInvalid,
    document_extract,
    document_kind_from_name,
    faq_text,
)
from tests.agents.knowledge_samples import (
    BAKERY_HTML,
    BAKERY_MARKDOWN,
    minimal_pdf,
    numbered_prose,
)


def chunks_of(kind: str, **upload) -> list[str]:
    extracted = document_extract(kind=kind, **upload)
    return [chunk.text for chunk in document_chunks(kind=kind, text=extracted.text)]


def words(text: str) -> int:
    return len(text.split())


# --- formats ------------------------------------------------------------------------------------


def test_plain_text_paragraphs_make_a_chunk_and_lines_are_joined():
    chunks = chunks_of(
        "text", data=b"We open at 7 am.\nWe close at 6 pm.\n\nWe take cards and cash.\n"
    )
    assert chunks == ["We open at 7 am. We close at 6 pm.\nWe take cards and cash."]


def test_markdown_headings_lead_each_chunk_under_them():
    chunks = chunks_of("markdown", content=BAKERY_MARKDOWN)
    assert [chunk.split(":")[0] for chunk in chunks] == [
        "Sunrise Bakery > Location and contact",
        "Sunrise Bakery > Opening hours",
        "Sunrise Bakery > Prices",
        "Sunrise Bakery > Payment",
        "Sunrise Bakery > Delivery",
    ]
    assert chunks[1] == (
        "Sunrise Bakery > Opening hours: We open at 7 am Monday to Saturday and at 8 am on "
        "Sunday. We close at 6 pm on weekdays, at 4 pm on Saturday and at 1 pm on Sunday."
    )


def test_markdown_markup_is_reduced_to_its_text():
    prices = chunks_of("markdown", content=BAKERY_MARKDOWN)[2]
    assert "An almond croissant costs 3 dollars 20." in prices
    assert "See our menu for cakes." in prices
    assert "**" not in prices and "https://" not in prices


def test_markdown_tables_lists_and_setext_headings():
    text = (
        "Hours\n=====\n\n| Day | Open |\n|---|---|\n| Monday | 7 am |\n\n- Tea\n- Hot chocolate\n"
    )
    assert chunks_of("markdown", content=text) == [
        "Hours: Day | Open\nMonday | 7 am\nTea\nHot chocolate"
    ]


def test_markdown_title_is_its_first_top_heading():
    assert document_extract(kind="markdown", content=BAKERY_MARKDOWN).title == "Sunrise Bakery"


def test_html_keeps_headings_and_text_and_drops_scripts_styles_and_navigation():
    extracted = document_extract(kind="html", data=BAKERY_HTML.encode())
    chunks = document_chunks(kind="html", text=extracted.text)
    assert extracted.title == "Sunrise Bakery"
    assert [chunk.text for chunk in chunks] == [
        "Sunrise Bakery > Opening hours: We open at 7 am Monday to Saturday. We close at 6 pm "
        "on weekdays.",
        "Sunrise Bakery > Prices: Item | Price\nBaguette | 3 dollars\nGluten-free bread on "
        "Tuesdays.\nNo seating inside.\nSunrise Bakery, 14 Mill Street, Springfield.",
    ]
    for hidden in ("tracking", "color", "Home", "Menu"):
        assert hidden not in extracted.text


def test_pdf_text_and_title_are_extracted():
    data = minimal_pdf(
        ["Sunrise Bakery is at 14 Mill Street.", "We open at 7 am."], title="Bakery facts"
    )
    extracted = document_extract(kind="pdf", data=data)
    assert extracted.title == "Bakery facts"
    assert document_chunks(kind="pdf", text=extracted.text)[0].text == (
        "Sunrise Bakery is at 14 Mill Street. We open at 7 am."
    )


def test_faq_entries_are_one_chunk_each_however_long():
    answer = " ".join(["We bake it fresh."] * 60)  # 240 words: more than a chunk
    text = faq_text(question="Is the bread fresh?", answer=answer)
    text += "\n\n" + faq_text(question="Do you sell coffee?", answer="No, tea only.")
    chunks = chunks_of("faq", content=text)
    assert chunks == [
        f"Q: Is the bread fresh?\nA: {answer}",
        "Q: Do you sell coffee?\nA: No, tea only.",
    ]


def test_text_that_is_not_utf8_is_read_and_control_characters_are_dropped():
    chunks = chunks_of("text", data="Caf\xe9 cr\xe8me costs 3 dollars.\x00".encode("cp1252"))
    assert chunks == ["Café crème costs 3 dollars."]


def test_the_kind_comes_from_the_file_extension():
    assert [
        document_kind_from_name(name)
        for name in ("a.txt", "b.md", "c.markdown", "d.HTML", "e.htm", "f.pdf")
    ] == ["text", "markdown", "markdown", "html", "html", "pdf"]


# --- chunk sizes and sentences --------------------------------------------------------------------


def test_chunks_never_cut_a_sentence_and_stay_between_the_bounds():
    prose = numbered_prose(40)  # 640 words in paragraphs of four sentences
    sentences = sentences_split(prose.replace("\n\n", " "))
    chunks = chunks_of("text", content=prose)
    assert len(chunks) > 3
    for chunk in chunks:
        assert MIN_WORDS <= words(chunk) <= MAX_WORDS
        assert set(sentences_split(chunk.replace("\n", " "))) <= set(sentences)
    # Every sentence, whole, in exactly one chunk, in order.
    assert [s for chunk in chunks for s in sentences_split(chunk.replace("\n", " "))] == sentences


def test_paragraphs_are_kept_whole_when_they_fit():
    chunks = chunks_of("text", content=numbered_prose(40, per_paragraph=3))
    for chunk in chunks:
        numbers = [int(n) for n in re.findall(r"Fact number (\d+)", chunk)]
        assert numbers[0] % 3 == 1, chunk  # each chunk starts at a paragraph's first sentence


def test_a_short_section_is_a_short_chunk_rather_than_part_of_the_next():
    chunks = chunks_of("markdown", content=BAKERY_MARKDOWN)
    assert (
        chunks[3] == "Sunrise Bakery > Payment: We take cards and cash. We do not accept cheques."
    )


def test_a_sentence_longer_than_a_chunk_is_the_one_thing_cut_between_words():
    run_on = " ".join(f"item{n}" for n in range(400))  # no punctuation at all
    chunks = chunks_of("text", content=run_on)
    assert len(chunks) == 3 and all(words(chunk) <= MAX_WORDS for chunk in chunks)
    assert " ".join(chunks).split() == run_on.split()


def test_sentences_end_at_full_stops_but_not_after_abbreviations_initials_or_decimals():
    assert sentences_split(
        "Dr. Patel sees children at 8:30 a.m. on Monday. A croissant costs 3.20 dollars! "
        '"Really?" Yes. See e.g. the menu. J. Smith owns it.'
    ) == [
        "Dr. Patel sees children at 8:30 a.m. on Monday.",
        "A croissant costs 3.20 dollars!",
        '"Really?"',
        "Yes.",
        "See e.g. the menu.",
        "J. Smith owns it.",
    ]


# --- refusals -----------------------------------------------------------------------------------


def test_an_unsupported_file_type_is_refused():
    with pytest.raises(DocumentInvalid, match=r"menu\.docx: unsupported file type"):
        document_kind_from_name("menu.docx")


@pytest.mark.parametrize("kind", ["text", "markdown", "html", "faq"])
def test_a_document_without_text_is_refused(kind):
    with pytest.raises(DocumentInvalid) as raised:
        document_extract(kind=kind, content="  \n\n <!-- --> " if kind == "html" else " \n ")
    assert raised.value.code == "invalid_document" and raised.value.status_code == 400


def test_a_pdf_without_extractable_text_is_refused_with_the_reason():
    with pytest.raises(DocumentInvalid, match="no text that can be extracted"):
        document_extract(kind="pdf", data=minimal_pdf([]))


def test_a_damaged_pdf_is_refused():
    with pytest.raises(DocumentInvalid, match="could not be read as a PDF"):
        document_extract(kind="pdf", data=b"%PDF-1.4\nthis is not a pdf")


def test_markdown_of_headings_only_is_refused():
    with pytest.raises(DocumentInvalid, match="headings but no text"):
        document_extract(kind="markdown", content="# Menu\n\n## Cakes\n")


def test_faq_text_without_question_and_answer_lines_is_refused():
    with pytest.raises(DocumentInvalid, match="'Q: …' and 'A: …'"):
        document_extract(kind="faq", content="Just some text.")
    with pytest.raises(DocumentInvalid, match="both needed"):
        faq_text(question="Open on Sunday?", answer="  ")


def test_a_file_over_the_upload_limit_is_refused_as_too_large(settings):
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(DocumentInvalid, match="largest accepted") as raised:
        document_extract(kind="text", data=b"x" * 1001)
    assert (raised.value.code, raised.value.status_code) == ("document_too_large", 413)
    assert document_extract(kind="text", data=b"x" * 1000).text == "x" * 1000


def test_an_unknown_kind_is_refused():
    with pytest.raises(DocumentInvalid, match="Unsupported document kind 'docx'"):
        document_extract(kind="docx", content="text")
