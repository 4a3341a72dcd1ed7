"""Presets and config files for the Train page's forms (no Qt).

A preset (``resources/presets/*.yaml``) is a hardware profile: shared
``model`` / ``training`` sections and per-stage overrides
(:func:`workbench.train.config.read_preset`; PPO maps them onto its flat
keys, :func:`workbench.train.ppo_config.ppo_preset_data`). Applied to a form
it changes the knobs but keeps what the pipeline filled in: the model
fields fed by earlier stages (when set) and the dataset.

A config file is what ``config.yaml`` of a run holds and what
``rlhf-workbench train CONFIG.yaml`` reads: ``stage`` first, then the
stage's fields.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from workbench.config_files import load_yaml_file
from workbench.errors import WorkbenchError
from workbench.train import config as C
from workbench.train.ppo_config import ppo_preset_data

from .stages import STAGES, get_path, set_path


def preset_stages() -> dict[str, tuple[str, tuple[str, ...]]]:
    """``{preset name: (description, stages it has)}`` of every preset file."""
    out = {}
    for name in C.list_presets():
        try:
            data = C.read_preset(name)
        except C.ConfigError:
            continue
        out[name] = (str(data.get("description") or name), tuple((data.get("stages") or {}).keys()))
    return out


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_preset(stage: str, current: dict[str, Any], name: str) -> dict[str, Any]:
    """``current`` form values with preset ``name`` applied for ``stage`` (see the module docstring)."""
    sdef = STAGES[stage]
    if stage == "ppo":
        data = {**copy.deepcopy(current), **ppo_preset_data(name)}
    else:
        preset = C.read_preset(name)
        over = _merge({"model": preset.get("model") or {}, "training": preset.get("training") or {}},
                      (preset.get("stages") or {}).get(stage) or {})
        data = _merge(current, over)
    for path in sdef.inputs + (sdef.dataset_field, sdef.snapshot_field):
        keep = get_path(current, path)
        if keep:
            set_path(data, path, keep)
    return data


class ConfigFileError(ValueError):
    """A config file cannot be read; the message names the file (and line)."""


def read_config_file(path: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """``(stage, values)`` from a config YAML; :class:`ConfigFileError` names what is wrong.
    The values are not checked here (the form shows what the checks say about them)."""
    path = Path(path)
    try:
        data = load_yaml_file(path)  # the core's loader: bounded alias expansion and depth
    except WorkbenchError as e:
        raise ConfigFileError(str(e)) from None
    if not isinstance(data, dict) or data.get("stage") not in STAGES:
        got = data.get("stage") if isinstance(data, dict) else type(data).__name__
        raise ConfigFileError(f"{path}: expected a mapping with 'stage: sft|reward|ppo|dpo', got {got!r}")
    stage = data.pop("stage")
    return stage, data


def write_config_file(path: str | os.PathLike, stage: str, values: dict[str, Any]) -> None:
    """Write ``values`` as a config YAML with ``stage`` first."""
    body = {"stage": stage, **values}
    Path(path).write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")


def restorable_config(config: dict[str, Any], stage: str) -> dict[str, Any]:
    """A run's ``config.yaml`` as form values for a new run: without ``stage`` and without the
    pinned snapshot (a new run freezes the dataset's records as they are then)."""
    data = {k: copy.deepcopy(v) for k, v in config.items() if k != "stage"}
    if get_path(data, STAGES[stage].snapshot_field) is not None:
        set_path(data, STAGES[stage].snapshot_field, None)
    return data
