"""Coqui TTS: an optional engine (pip install -e .[coqui]), tested on a tiny random-weight VITS
model built here, since no trained model can be fetched at run time."""

from __future__ import annotations

import os

import pytest

from voice.engines import models, registry
from voice.engines.tts.coqui import CoquiTts


def coqui_or_skip():
    # Not pytest.importorskip: a torch/torchaudio mismatch fails with OSError, not ImportError.
    try:
        import TTS.tts.models  # noqa: F401
    except Exception as exc:  # the reason shown is the import error itself
        reason = (
            f"coqui-tts cannot be imported here ({type(exc).__name__}: {exc}). It is an optional "
            "extra kept out of the product's virtualenv (it needs torch): scripts/test.sh runs "
            "this file in .venv-coqui, installed with pip install -c constraints-coqui.txt "
            "-e .[coqui,test]."
        )
        if os.environ.get("THINNEST_REQUIRE_COQUI") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def test_a_coqui_agent_without_a_model_says_how_to_provide_one(settings, tmp_path):
    settings.COQUI_MODEL_PATH = settings.COQUI_CONFIG_PATH = ""
    with pytest.raises(models.ModelUnavailable, match="COQUI_MODEL_PATH and COQUI_CONFIG_PATH"):
        registry.tts_get("coqui")
    with pytest.raises(models.ModelUnavailable, match="not found"):
        registry.tts_get("coqui", str(tmp_path / "my-voice"))
    (tmp_path / "empty-voice").mkdir()
    with pytest.raises(models.ModelUnavailable, match=r"No \.pth checkpoint and config\.json"):
        registry.tts_get("coqui", str(tmp_path / "empty-voice"))


@pytest.fixture
def tiny_vits(tmp_path):
    """A VITS model with tiny layers and random weights, saved as Coqui saves a trained one."""
    coqui_or_skip()
    import torch
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models import setup_model

    config = VitsConfig(
        model_args=VitsArgs(
            hidden_channels=16,
            hidden_channels_ffn_text_encoder=32,
            num_layers_text_encoder=1,
            num_layers_posterior_encoder=1,
            num_layers_flow=1,
            upsample_initial_channel_decoder=16,
            resblock_kernel_sizes_decoder=[3],
            resblock_dilation_sizes_decoder=[[1, 3, 5]],
            init_discriminator=False,
        ),
        use_phonemes=False,
        text_cleaner="basic_cleaners",
    )
    model = setup_model(config)
    torch.save({"model": model.state_dict()}, tmp_path / "model.pth")
    model.config.save_json(str(tmp_path / "config.json"))
    return tmp_path, model.config.audio.sample_rate


def test_coqui_speaks_with_a_model_from_the_agents_voice_directory(tiny_vits):
    directory, sample_rate = tiny_vits
    tts = registry.tts_get("coqui", str(directory))
    assert isinstance(tts, CoquiTts)
    pcm, rate = tts.synthesize("Hello, we open at nine.")
    assert rate == sample_rate
    assert pcm.dtype.name == "int16" and pcm.size > rate // 10
    assert pcm.any()
