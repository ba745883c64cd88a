"""RunConfig: every problem of a settings file at once, each naming the section, the
field, the value and what is allowed, as the engine's own ConfigError; and the
commands saying so instead of a traceback."""

from __future__ import annotations

import json

import pytest

from engine.__main__ import main
from engine.errors import ConfigError, EngineError
from engine.pipeline import RunConfig


def test_every_problem_is_named_at_once():
    bad = {
        "seed": -1,
        "recommendations_k": "ten",
        "colour": "blue",
        "beam": {"kmin": 1, "kmax": 12, "beam_wdith": 3},
        "pricing": {"max_discount": 1.5, "margin_floor": "high"},
        "demand": {"elasticity": -2},
        "season": {"month": 13},
        "preferences": {"k_range": [5, 2]},
    }
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict(bad)
    err = caught.value
    assert isinstance(err, EngineError) and isinstance(err, ValueError)
    text = "\n".join(err.problems)
    for part in ("colour: unknown setting", "[beam] beam_wdith: unknown setting",
                 "recommendations_k = 'ten': expected an integer",
                 "[pricing] margin_floor = 'high': expected a number"):
        assert part in text, (part, text)
    # the nested configs' own range checks, named by section, field and value
    for part in ("[pricing] max_discount must be in [0, 1), got 1.5",
                 "[season] month = 13", "[preferences] k_range must satisfy",
                 "[demand] elasticity must be > 0, got -2"):
        assert part in text, (part, text)
    assert len(err.problems) >= 8


def test_values_out_of_range_after_the_types_are_right():
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"seed": -1, "profit_draws": 5})
    assert caught.value.problems == [
        "profit_draws = 5: an integer from 100 to 1,000,000", "seed = -1: an integer ≥ 0"]


def test_none_turns_a_setting_off_and_ints_pass_for_floats():
    cfg = RunConfig.from_dict({"pricing": {"price_ending": "none", "max_discount": 0},
                               "beam": {"min_affinity_ratio": "None"},
                               "demand": {"take_rate_bounds": [0, 1]}})
    assert cfg.pricing.price_ending is None and cfg.pricing.max_discount == 0.0
    assert cfg.beam.min_affinity_ratio is None
    assert cfg.demand.take_rate_bounds == (0.0, 1.0)


def test_a_bad_settings_file_is_a_message_on_every_command(tmp_path, capsys, monkeypatch,
                                                            sample_dir):
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    cfg = tmp_path / "run.toml"
    cfg.write_text("[beam]\nkmax = 99\n[pricing]\nmax_discount = 2\n")
    orders = str(sample_dir / "order_lines.csv")
    for command in (["validate"], ["evaluate"], ["recommend", "--out", str(tmp_path / "r.csv")],
                    ["bundles"], ["price", "--out", str(tmp_path / "p.csv")],
                    ["run", "--out", str(tmp_path / "out")]):
        assert main([*command, orders, "--config", str(cfg)]) == 2, command
        err = capsys.readouterr().err
        assert "kmax must be ≤ 8, got 99" in err and "max_discount" in err, (command, err)
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["run", orders, "--config", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_a_model_that_is_not_a_local_directory_is_a_message(tmp_path, capsys, monkeypatch,
                                                           sample_dir):
    """Defect: a hub name with no network or a mistyped path ended in a traceback."""
    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    orders = str(sample_dir / "order_lines.csv")
    for model in ("sentence-transformers/all-MiniLM-L6-v2", str(tmp_path / "no-such-model")):
        cfg = tmp_path / "model.json"
        cfg.write_text(json.dumps({"encoder": {"model": model}}))
        assert main(["run", orders, "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert '[encoder] model = "' in err and model in err, err
        assert "Traceback" not in err


def test_a_bad_model_setting_is_a_message_on_the_page_not_a_traceback(tmp_path, monkeypatch):
    from dataclasses import replace
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from engine.encoder import EncoderConfig

    monkeypatch.setenv("ENGINE_WORKSPACE", str(tmp_path / "ws"))
    app = Path(__file__).resolve().parents[1] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=30).run(timeout=120)
    config = at.session_state["run_config"]
    at.session_state["run_config"] = replace(
        config, encoder=EncoderConfig(model=str(tmp_path / "typo-model")))
    at.switch_page("app_pages/2_preferences.py").run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert '[encoder] model = "' in errors and "typo-model" in errors
