"""A model setting that is not a loadable local directory is a clear ModelLoadError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.encoder import Encoder, EncoderConfig, default_model_path, load_model
from engine.errors import EngineError, ModelLoadError


def _load(model: str) -> None:
    Encoder(EncoderConfig(model=model, device="cpu", precision="fp32")).encode(["a text"])


def _assert_names_the_setting(err: ModelLoadError, model: str) -> None:
    msg = str(err)
    assert f'[encoder] model = "{model}"' in msg
    assert "local model directory" in msg and "config.json" in msg
    assert "all-MiniLM-L6-v2" in msg
    assert "nothing is downloaded" in msg


def test_mistyped_path_raises_model_load_error(tmp_path):
    model = str(tmp_path / "models" / "all-MiniLM-L6-v3")
    with pytest.raises(ModelLoadError) as info:
        _load(model)
    _assert_names_the_setting(info.value, model)
    assert "no such directory" in str(info.value)
    assert isinstance(info.value, EngineError)


def test_hub_name_raises_model_load_error_without_network():
    model = "sentence-transformers/does-not-exist"
    with pytest.raises(ModelLoadError) as info:
        _load(model)
    _assert_names_the_setting(info.value, model)
    assert "hub name" in str(info.value)


def test_file_or_directory_without_config_is_refused(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="not a directory"):
        load_model(str(weights), "cpu", "fp32")
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path), "cpu", "fp32")


def test_transformers_failure_is_wrapped_with_its_cause(tmp_path):
    # a config.json but no tokenizer or weights: transformers itself fails
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelLoadError) as info:
        load_model(str(tmp_path), "cpu", "fp32")
    _assert_names_the_setting(info.value, str(tmp_path))
    assert info.value.__cause__ is not None


def test_missing_weights_is_wrapped(tmp_path):
    # the bundled model's config and tokenizer, but no weights: an OSError inside
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copy(Path(default_model_path()) / name, tmp_path / name)
    with pytest.raises(ModelLoadError) as info:
        load_model(str(tmp_path), "cpu", "fp32")
    _assert_names_the_setting(info.value, str(tmp_path))
    assert isinstance(info.value.__cause__, OSError)
