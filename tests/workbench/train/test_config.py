"""Stage configs: help on every field, YAML round trip, and a clear error naming the field
for each bad config, before any model loads."""

import dataclasses
import json
import subprocess
import sys

import pytest
import yaml

from workbench.train import config as C
from workbench.train.config import ConfigError, load_config, to_dict, validate_before_load


def cfg(stage="sft", **sections):
    data = {"stage": stage, "model": {"ref": "./models/tiny"}, "data": {"dataset": "demos"}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return data


def test_every_field_has_help_and_choices_are_valid_defaults():
    for cls in (C.SFTConfig, C.RewardConfig, C.DPOConfig, C.ModelConfig, C.DataConfig, C.TrainingConfig):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
            if "choices" in f.metadata and f.default is not dataclasses.MISSING:
                assert f.default in f.metadata["choices"]
    form = C.field_help(C.RewardConfig)
    assert form["eval_steps"]["type"] is int and form["eval_steps"]["default"] == 50
    assert form["model"]["fields"]["quantization"]["choices"] == (None, "4bit", "8bit")
    assert form["training"]["fields"]["learning_rate"]["help"]


def test_load_round_trips_through_yaml(tmp_path):
    c = load_config(cfg("dpo", beta=0.2, training={"learning_rate": "1e-5", "max_steps": 10},
                        model={"lora_target_modules": ["q_proj", "v_proj"]}))
    assert isinstance(c, C.DPOConfig) and c.beta == 0.2
    assert c.training.learning_rate == 1e-5  # YAML reads 1e-5 (no dot) as a string
    assert c.model.target_modules() == ["q_proj", "v_proj"]
    assert c.training.learning_rate != C.SFTConfig().training.learning_rate  # per-stage default lr
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(to_dict(c), sort_keys=False))
    again = load_config(path)
    assert again == c and list(to_dict(again))[0] == "stage"


@pytest.mark.parametrize("bad, field, text", [
    ({"stage": "ppo2"}, "stage", "expected one of sft, reward, dpo"),
    (cfg(training={"learnig_rate": 1e-4}), "training.learnig_rate", "did you mean 'learning_rate'"),
    (cfg(epochs=3), "epochs", "unknown field"),
    (cfg(training={"learning_rate": 0}), "training.learning_rate", "must be a positive number"),
    (cfg(training={"learning_rate": "fast"}), "training.learning_rate", "expected a number"),
    (cfg(training={"batch_size": 2.5}), "training.batch_size", "expected an integer"),
    (cfg(training={"max_steps": 0, "num_epochs": 0}), "training.num_epochs", "must be positive"),
    (cfg(training={"warmup_ratio": 1.5}), "training.warmup_ratio", "[0, 1)"),
    (cfg(training={"device": "tpu"}), "training.device", "expected one of auto, cpu, cuda"),
    (cfg(packing="yes please"), "packing", "expected true or false"),
    (cfg(model={"ref": ""}), "model.ref", "empty"),
    (cfg(model={"ref": "owner/bad name!"}), "model.ref", "neither an existing folder nor a valid hub id"),
    (cfg(model={"quantization": "4bit", "lora": False}), "model.quantization", "turn lora on (QLoRA)"),
    (cfg(model={"quantization": "2bit"}), "model.quantization", "expected none, 4bit or 8bit"),
    (cfg(model={"lora_dropout": 1.0}), "model.lora_dropout", "[0, 1)"),
    (cfg(model={"lora_target_modules": " , "}), "model.lora_target_modules", "empty"),
    (cfg(model={"quantization": "4bit", "save_merged": True}), "model.save_merged", "cannot be merged"),
    (cfg(data={"dataset": " "}), "data.dataset", "empty"),
    (cfg(data={"snapshot": "xyz"}), "data.snapshot", "hex characters"),
    (cfg("dpo", beta=0), "beta", "must be a positive number"),
    (cfg("dpo", loss_type="kto"), "loss_type", "expected one of sigmoid"),
    (cfg("reward", eval_steps=-1), "eval_steps", "must be 0"),
])
def test_bad_values_name_their_field(bad, field, text):
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ") and text in str(err.value)


def test_bad_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("stage: [sft\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


# -- against the workspace ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(train_ws, tmp_path_factory):
    """Broken copies of the tiny model: no tokenizer, no chat template."""
    import shutil

    root = tmp_path_factory.mktemp("broken")
    no_tok = shutil.copytree(train_ws / "models" / "tiny", root / "no-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (no_tok / name).unlink()
    no_chat = shutil.copytree(train_ws / "models" / "tiny", root / "no-chat")
    (no_chat / "chat_template.jinja").unlink()
    tok_cfg = json.loads((no_chat / "tokenizer_config.json").read_text())
    tok_cfg.pop("chat_template", None)
    (no_chat / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    return {"no_tokenizer": str(no_tok), "no_chat": str(no_chat)}


def test_a_good_config_passes_and_reports_warnings(train_ws):
    assert validate_before_load(load_config(cfg()), train_ws) == []
    warnings = validate_before_load(load_config(cfg("reward", data={"dataset": "pairs_noval"})), train_ws)
    assert len(warnings) == 1 and "no validation split" in warnings[0]


@pytest.mark.parametrize("bad, field, text", [
    (cfg(data={"dataset": "nope"}), "data.dataset", "no dataset named 'nope'; datasets here: demos"),
    (cfg("reward", data={"dataset": "demos"}), "data.dataset",
     "dataset 'demos' holds sft records, but the reward stage trains on preference records"),
    (cfg("dpo", data={"dataset": "prompts"}), "data.dataset", "holds prompts records"),
    (cfg(data={"dataset": "pairs"}), "data.dataset", "the sft stage trains on sft records"),
    (cfg(data={"snapshot": "abcdef"}), "data.snapshot", "has no snapshot 'abcdef'"),
    (cfg(model={"ref": "./models/missing"}), "model.ref", "does not exist"),
    (cfg(data={"workspace": "/nonexistent/ws"}), "data.workspace", "not a workspace"),
])
def test_workspace_errors_name_their_field(train_ws, bad, field, text):
    with pytest.raises(ConfigError) as err:
        validate_before_load(load_config(bad), bad["data"].get("workspace", train_ws))
    assert err.value.field == field and text in str(err.value)


def test_model_folder_without_tokenizer(train_ws, models):
    with pytest.raises(ConfigError, match="^model.ref: model folder .*no-tokenizer has no tokenizer"):
        validate_before_load(load_config(cfg(model={"ref": models["no_tokenizer"]})), train_ws)


def test_chat_data_needs_a_chat_template(train_ws, models):
    with pytest.raises(ConfigError, match="^model.ref: dataset 'demos' holds chat messages, but the tokenizer"):
        validate_before_load(load_config(cfg(model={"ref": models["no_chat"]})), train_ws)
    # Plain-text data does not need one.
    validate_before_load(load_config(cfg(model={"ref": models["no_chat"]}, data={"dataset": "demos_text"})),
                         train_ws)


def test_4bit_where_bitsandbytes_cannot_run(train_ws, monkeypatch):
    from workbench.models import loading

    monkeypatch.setattr(loading.platform, "system", lambda: "Darwin")
    with pytest.raises(ConfigError, match="^model.quantization: 4bit quantization needs bitsandbytes, "
                                          "which does not run on macOS"):
        validate_before_load(load_config(cfg(model={"quantization": "4bit"})), train_ws)


def test_checks_fail_before_anything_heavy_is_imported(train_ws, models):
    """The failing checks run with torch, transformers and trl never imported."""
    bad = [cfg(data={"dataset": "nope"}), cfg("reward"), cfg(model={"ref": models["no_tokenizer"]}),
           cfg(model={"ref": models["no_chat"]}), cfg(training={"learning_rate": -1})]
    script = f"""
import json, sys
from workbench.train.config import ConfigError, load_config, validate_before_load
fields = []
for bad in json.loads({json.dumps(json.dumps(bad))}):
    try:
        validate_before_load(load_config(bad), {str(train_ws)!r})
    except ConfigError as e:
        fields.append(e.field)
heavy = [m for m in ("torch", "transformers", "trl", "peft") if m in sys.modules]
print(json.dumps([fields, heavy]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    fields, heavy = json.loads(out.stdout)
    assert fields == ["data.dataset", "data.dataset", "model.ref", "model.ref", "training.learning_rate"]
    assert heavy == []


def test_a_job_with_a_bad_config_fails_before_loading_anything(train_ws, tmp_path):
    from workbench.jobs.events import FinishedEvent, LogEvent, StartedEvent, read_events
    from workbench.jobs.rundir import new_run_dir
    from workbench.jobs.run import EXIT_FAILED, run_job

    body = cfg("reward", data={"dataset": "demos", "workspace": str(train_ws)})
    # In-process: the run dir must not be in the workspace's runs/ (its pid would be this process).
    rd = new_run_dir(tmp_path / "runs", "reward", {k: v for k, v in body.items() if k != "stage"})
    assert run_job(rd) == EXIT_FAILED
    events = read_events(rd.events)
    assert [type(e) for e in events] == [StartedEvent, FinishedEvent]  # no "loading ..." log
    assert events[-1].error == ("data.dataset: dataset 'demos' holds sft records, but the reward stage "
                                "trains on preference records")
    assert not any(isinstance(e, LogEvent) for e in events)
