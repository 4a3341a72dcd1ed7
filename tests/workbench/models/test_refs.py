"""Model references: hub id vs folder, and the folder checks that run before any loading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.models.refs import ModelError, ModelRef, check_hub_id, check_model_ref


@pytest.mark.parametrize("value, local", [
    ("Qwen/Qwen2.5-0.5B-Instruct", False),
    ("gpt2", False),
    ("/data/models/sft", True),
    ("./tiny", True),
    ("../models/x", True),
    ("~/models/x", True),
    ("runs/abc/checkpoints/step-10", True),
    ("C:\\models\\x", True),
])
def test_is_local(value, local):
    assert ModelRef(value).is_local is local


def test_existing_folder_is_local_even_if_it_reads_like_a_hub_id(tmp_path, monkeypatch):
    (tmp_path / "org" / "model").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    ref = ModelRef("org/model")
    assert ref.is_local
    assert ref.resolve() == str(tmp_path / "org" / "model")
    assert not ModelRef("org/other").is_local


def test_resolve_and_coerce(tmp_path):
    assert ModelRef("Qwen/Qwen2.5-0.5B-Instruct", revision="main").resolve() == "Qwen/Qwen2.5-0.5B-Instruct"
    assert ModelRef.coerce(tmp_path).resolve() == str(tmp_path)
    ref = ModelRef.coerce({"id": "org/name", "revision": "v1", "trust_remote_code": True})
    assert ref == ModelRef("org/name", "v1", True)
    assert ModelRef.coerce(ref.to_dict()) == ref
    assert str(ref) == "org/name@v1"
    with pytest.raises(ModelError, match="expected keys"):
        ModelRef.coerce({"name": "x"})
    with pytest.raises(ModelError, match="empty"):
        ModelRef("  ")


@pytest.mark.parametrize("hub_id", ["Qwen/Qwen2.5-0.5B-Instruct", "gpt2", "meta-llama/Llama-3.2-1B",
                                    "a/b", "HuggingFaceTB/SmolLM2-135M-Instruct"])
def test_valid_hub_ids(hub_id):
    check_hub_id(hub_id)
    assert check_model_ref(hub_id) == ModelRef(hub_id)


@pytest.mark.parametrize("hub_id", ["org/na me", "org/-name", "org/name.", "org/na--me", "org/na..me",
                                    "org/", "x" * 97, "org/name?rev=1"])
def test_invalid_hub_ids(hub_id):
    with pytest.raises(ModelError, match="valid hub id"):
        check_model_ref(hub_id)


def test_tiny_folder_passes(tiny_dir):
    assert check_model_ref(tiny_dir).is_local


def test_missing_folder(tmp_path):
    with pytest.raises(ModelError, match=re.escape(f"{tmp_path / 'nope'} does not exist")):
        check_model_ref(tmp_path / "nope")


def test_file_instead_of_folder(tiny_dir):
    with pytest.raises(ModelError, match="is a file"):
        check_model_ref(tiny_dir / "config.json")


def test_missing_config(tiny_copy):
    (tiny_copy / "config.json").unlink()
    with pytest.raises(ModelError) as err:
        check_model_ref(tiny_copy)
    assert str(err.value) == f"model folder {tiny_copy} has no config.json"
    assert isinstance(err.value, WorkbenchError)


def test_adapter_folder_gets_a_hint(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match="LoRA adapter"):
        check_model_ref(tmp_path)


def test_pickle_only_weights_are_refused_unless_allowed(tiny_copy):
    (tiny_copy / "model.safetensors").rename(tiny_copy / "pytorch_model.bin")
    with pytest.raises(ModelError) as err:
        check_model_ref(tiny_copy)
    msg = str(err.value)
    assert str(tiny_copy) in msg and "pytorch_model.bin" in msg
    assert "execute arbitrary code" in msg and "safetensors" in msg
    assert check_model_ref(tiny_copy, allow_pickle=True).is_local


def test_safetensors_next_to_pickle_is_fine(tiny_copy):
    (tiny_copy / "pytorch_model.bin").write_bytes(b"")
    check_model_ref(tiny_copy)


def test_no_weights(tiny_copy):
    (tiny_copy / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=r"has no weights \(model.safetensors\)"):
        check_model_ref(tiny_copy)
    check_model_ref(tiny_copy, require_weights=False)


def test_no_tokenizer(tiny_copy):
    (tiny_copy / "tokenizer.json").unlink()
    (tiny_copy / "tokenizer_config.json").unlink()
    with pytest.raises(ModelError) as err:
        check_model_ref(tiny_copy)
    assert str(err.value) == f"model folder {tiny_copy} has no tokenizer (tokenizer.json or tokenizer_config.json)"
    check_model_ref(tiny_copy, require_tokenizer=False)


def test_sharded_safetensors_count_as_weights(tiny_copy):
    (tiny_copy / "model.safetensors").rename(tiny_copy / "model-00001-of-00002.safetensors")
    check_model_ref(Path(tiny_copy))
