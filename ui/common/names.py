"""Short, readable names for runs and models (the full reference goes in a tooltip).

``./runs/20261203-113525-sft-b84c/checkpoints/step-60/merged`` reads as
``sft-b84c step-60``, the run folder ``./runs/20261203-113525-sft-b84c`` as ``sft-b84c``; a
local folder as its last part; a hub id stays as it is.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Optional


def short_run_name(run_id: str) -> str:
    """``20261123-030919-ppo-e700`` -> ``ppo-e700`` (the date is in the Started column)."""
    parts = run_id.split("-")
    return "-".join(parts[2:]) if len(parts) >= 4 else run_id


def model_name(ref: Optional[str]) -> str:
    """A model reference (hub id, folder, run checkpoint) as a person reads it."""
    if not ref:
        return "\u2014"
    ref = str(ref).strip().rstrip("/\\")
    parts = [p for p in PurePath(ref).parts if p not in (".", "")]
    if "checkpoints" in parts:  # <...>/runs/<id>/checkpoints/step-N[/merged]
        i = parts.index("checkpoints")
        run = short_run_name(parts[i - 1]) if i > 0 else ""
        step = parts[i + 1] if i + 1 < len(parts) else ""
        return " ".join(p for p in (run, step) if p) or ref
    if ref.startswith((".", "/", "~")) or "\\" in ref or len(parts) > 2:
        if len(parts) >= 2 and parts[-2] == "runs":  # a run's folder (the model pickers offer it)
            return short_run_name(parts[-1])
        return parts[-1] if parts else ref  # a local folder: its own name
    return ref  # a hub id: org/name
