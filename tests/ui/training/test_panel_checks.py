"""The Train page's config checks (Qt-free, :mod:`ui.training.stages`): every field error at
once, errors against the workspace on the right field, and 4-bit checked from the GPU probe
without importing torch or bitsandbytes in the GUI process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ui.training.form_io import ConfigFileError, apply_preset, read_config_file, restorable_config
from ui.training.stages import check_config, defaults, static_errors
from workbench.store import datasets as R
from workbench.store.records import Record
from workbench.store.workspace import Workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("checks") / "ws"
    with Workspace.init(root) as w, w.transaction() as c:
        d = R.create_dataset(c, "pairs", "preference", "standard")
        for i in range(4):
            R.add_record(c, d, Record(prompt=f"p{i}", chosen="good", rejected="bad"))
    return root


def sft(stage="sft", **over):
    data = defaults(stage)
    data["model"]["ref"] = "Qwen/Qwen2.5-0.5B-Instruct"
    data["data"]["dataset"] = "pairs"
    for path, value in over.items():
        section, _, name = path.partition("__")
        data[section][name] = value
    return data


def test_every_static_error_is_found_not_just_the_first():
    errors, cfg = static_errors("sft", sft(model__ref="", training__learning_rate=0.0, training__warmup_ratio=2.0,
                                           data__snapshot="zz"))
    assert cfg is None
    assert set(errors) == {"model.ref", "training.learning_rate", "training.warmup_ratio", "data.snapshot"}
    errors, cfg = static_errors("sft", sft())
    assert errors == {} and cfg.model.ref == "Qwen/Qwen2.5-0.5B-Instruct"


def test_workspace_checks_name_the_field_and_quantization_comes_from_the_probe(ws):
    result = check_config("sft", sft(), ws)
    assert result.errors == {"data.dataset": result.errors["data.dataset"]}
    assert "holds preference records" in result.errors["data.dataset"]
    reward = sft("reward", model__quantization="4bit")
    ok = check_config("reward", reward, ws, bitsandbytes_ok=True)
    assert ok.ok and ok.config["model"]["quantization"] == "4bit" and "stage" not in ok.config
    bad = check_config("reward", reward, ws, bitsandbytes_ok=False)
    assert set(bad.errors) == {"model.quantization"} and "bitsandbytes" in bad.errors["model.quantization"]


def test_checking_a_4bit_config_imports_no_torch_or_bitsandbytes(ws):
    code = (f"import sys; from ui.training.stages import check_config, defaults\n"
            f"d = defaults('reward'); d['model'].update(ref='Qwen/Qwen2.5-0.5B-Instruct', quantization='4bit')\n"
            f"d['data']['dataset'] = 'pairs'\n"
            f"r = check_config('reward', d, {str(ws)!r})\n"
            f"print(r.ok, sorted(m for m in ('torch', 'bitsandbytes', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True []"


def test_presets_keep_pipeline_inputs_and_config_files(tmp_path):
    current = sft("reward", model__ref="./models/sft-merged")
    applied = apply_preset("reward", current, "qwen2.5-0.5b-8gb")
    assert applied["model"]["ref"] == "./models/sft-merged" and applied["data"]["dataset"] == "pairs"
    assert applied["eval_steps"] == 50 and applied["training"]["learning_rate"] == 1e-4
    # SFT takes the preset's model: choosing the base model is what its preset is for.
    assert apply_preset("sft", sft(model__ref="./models/x"), "qwen2.5-0.5b-8gb")["model"]["ref"] == \
        "Qwen/Qwen2.5-0.5B-Instruct"

    path = tmp_path / "c.yaml"
    path.write_text("stage: dpo\nbeta: 0.3\n")
    assert read_config_file(path) == ("dpo", {"beta": 0.3})
    path.write_text("- a list\n")
    with pytest.raises(ConfigFileError, match="c.yaml: expected a mapping with 'stage"):
        read_config_file(path)
    with pytest.raises(ConfigFileError, match="cannot read"):
        read_config_file(tmp_path / "missing.yaml")
    pinned = {"stage": "sft", "data": {"dataset": "d", "snapshot": "a" * 64}}
    assert restorable_config(pinned, "sft") == {"data": {"dataset": "d", "snapshot": None}}
