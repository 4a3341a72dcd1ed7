"""The generate config and model resolution: checked before any model loads (no torch)."""

import json
import sys

import pytest

from workbench.generate.config import GenerateConfig
from workbench.generate.models import list_run_models, resolve_model
from workbench.models.refs import ModelError
from workbench.train.config import ConfigError


def test_config_checks_name_the_field():
    ok = GenerateConfig.from_dict({"model": "./models/tiny", "prompts": ["Hi"], "n": 2, "temperature": "0.7"})
    assert ok.temperature == 0.7 and ok.arms == [("a", "./models/tiny")] and ok.prompt_tag_for_new == "generated"
    cases = [
        ({"prompts": ["Hi"]}, "model"),
        ({"model": "m"}, "prompt_dataset"),
        ({"model": "m", "prompts": ["Hi"], "prompt_tag": "x"}, "prompts"),
        ({"model": "m", "prompts": ["Hi"], "n": 0}, "n"),
        ({"model": "m", "prompts": ["Hi"], "n": 3, "temperature": 0}, "n"),
        ({"model": "m", "prompts": ["Hi"], "top_p": 1.5}, "top_p"),
        ({"model": "m", "prompts": ["Hi"], "max_new_tokens": "many"}, "max_new_tokens"),
        ({"model": "m", "prompts": ["Hi", " "]}, "prompts"),
        ({"model": "m", "prompts": ["Hi"], "temprature": 1}, "temprature"),
        ({"model": "m", "prompts": ["Hi"], "device": "tpu"}, "device"),
    ]
    for data, field in cases:
        with pytest.raises(ConfigError) as err:
            GenerateConfig.from_dict(data)
        assert err.value.field == field, (data, str(err.value))
    assert "did you mean 'temperature'" in str(pytest.raises(ConfigError, GenerateConfig.from_dict,
                                                             {"model": "m", "prompts": ["x"], "temprature": 1}).value)
    cmp_ = GenerateConfig.from_dict({"model": "base", "model_b": "tuned", "prompt_dataset": "asks", "n": 1})
    assert cmp_.arms == [("a", "base"), ("b", "tuned")] and cmp_.prompt_tag_for_new == "asks"


def test_config_module_is_cheap():
    import subprocess

    code = ("import sys, workbench.generate.config, workbench.generate.models, workbench.generate.prompts;"
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _model_folder(path, *, weights=True):
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "tokenizer.json").write_text("{}")
    if weights:
        (path / "model.safetensors").write_bytes(b"")
    return path


def test_resolve_model_layouts(tmp_path):
    ws = tmp_path / "ws"
    base = _model_folder(ws / "models" / "base")
    assert resolve_model("./models/base", ws).base == str(base)
    assert resolve_model("models/base", ws).adapter is None
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct").base == "Qwen/Qwen2.5-0.5B-Instruct"
    # A run: its latest complete checkpoint; a LoRA adapter with the base named in the manifest.
    run = ws / "runs" / "20260101-000000-sft-ab12"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("stage: sft\n")
    for step, complete in ((2, True), (4, True), (6, False)):
        ck = run / "checkpoints" / f"step-{step}"
        ck.mkdir()
        (ck / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/elsewhere"}))
        (ck / "workbench.json").write_text(json.dumps({"base_model": {"id": "./models/base"}}))
        if complete:
            (ck / "COMPLETE").write_text("")
    got = resolve_model(str(run), ws)
    assert got.base == str(base) and got.adapter == str(run / "checkpoints" / "step-4")
    assert got.checkpoint == "runs/20260101-000000-sft-ab12/checkpoints/step-4" and got.tokenizer == str(base)
    # A merged model inside the checkpoint wins over the adapter.
    merged = _model_folder(run / "checkpoints" / "step-4" / "merged")
    (run / "checkpoints" / "step-4" / "workbench.json").write_text(json.dumps({"merged": "merged"}))
    got = resolve_model(str(run / "checkpoints" / "step-4"), ws)
    assert got.base == str(merged) and got.adapter is None
    # A PPO checkpoint: adapter/ inside, base from its state.
    ppo = ws / "ppo-ck"
    (ppo / "adapter").mkdir(parents=True)
    (ppo / "adapter" / "adapter_config.json").write_text("{}")
    (ppo / "trainer_state.json").write_text(json.dumps({"config": {"policy_model": str(base)}}))
    got = resolve_model(str(ppo), ws)
    assert got.adapter == str(ppo / "adapter") and got.base == str(base)
    # What cannot be used says why.
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model("./models/nope", ws)
    _model_folder(ws / "models" / "noweights", weights=False)
    with pytest.raises(ModelError, match="no weights"):
        resolve_model("./models/noweights", ws)
    (ws / "empty").mkdir()
    with pytest.raises(ModelError, match="neither a model folder"):
        resolve_model(str(ws / "empty"), ws)
    labels = [label for label, _ in list_run_models(ws)]
    assert labels[0] == "models/base" and "20260101-000000-sft-ab12 · step 4" in labels
    assert not any("step 6" in x for x in labels)
