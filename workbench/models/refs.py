"""Model references: a Hugging Face hub id or a local model folder, checked before loading.

A :class:`ModelRef` is what configs and the CLI carry around. It is cheap to
import and to check (no torch, no transformers), so the CLI and the GUI can
validate a config without paying for the training stack. For a local folder
:func:`check_model_ref` looks at the files a loader will need and names the
one that is missing; a hub id is only checked for syntax, since whether it
can be downloaded (or is cached) is decided by ``from_pretrained`` in the
job process.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import WorkbenchError


class ModelError(WorkbenchError):
    """A model or tokenizer cannot be used: missing files, unsafe weights, no network, ..."""


# Hub repo names: letters, digits, '-', '_', '.'; no '--' or '..'; not starting
# or ending with '-' or '.'; at most 96 characters (huggingface_hub's rules).
_HUB_PART = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_HUB_MAX = 96

CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
SAFE_WEIGHTS_SUFFIX = ".safetensors"
PICKLE_WEIGHTS_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from.

    ``id`` is a hub id (``"Qwen/Qwen2.5-0.5B-Instruct"``) or a local folder
    (``"/data/models/sft-step-200"``, ``"./tiny"``, ``"~/models/x"``).
    ``revision`` (a branch, tag or commit) applies to hub ids only.
    ``trust_remote_code`` lets transformers run Python files shipped with
    the model; it stays off unless the user turns it on for that model.
    """

    id: str
    revision: Optional[str] = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            object.__setattr__(self, "id", os.fspath(self.id))
        if not self.id.strip():
            raise ModelError("model reference is empty: give a hub id like 'Qwen/Qwen2.5-0.5B-Instruct' "
                             "or a local model folder")
        object.__setattr__(self, "id", self.id.strip())

    @classmethod
    def coerce(cls, value: Union["ModelRef", str, os.PathLike, dict]) -> "ModelRef":
        """A ModelRef from a ModelRef, a string or path, or a dict with the field names."""
        if isinstance(value, ModelRef):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"id", "revision", "trust_remote_code"}
            if unknown or "id" not in value:
                raise ModelError(f"model reference {value!r}: expected keys id, revision, trust_remote_code")
            return cls(**value)
        if isinstance(value, (str, os.PathLike)):
            return cls(os.fspath(value))
        raise ModelError(f"model reference must be a hub id or a folder path, got {type(value).__name__}")

    @property
    def is_local(self) -> bool:
        """True for a folder path; False for a hub id.

        An existing folder is always local. Otherwise anything that reads as
        a path (absolute, ``./``, ``../``, ``~``, a drive letter, backslashes,
        or more than one ``/``) is local, and ``name`` or ``owner/name`` is a
        hub id.
        """
        s = self.id
        if Path(s).expanduser().is_dir():
            return True
        if s.startswith(("/", "~", ".", "\\")) or "\\" in s or re.match(r"^[A-Za-z]:", s):
            return True
        return s.count("/") > 1

    def resolve(self) -> str:
        """What to pass to ``from_pretrained``: an absolute folder path, or the hub id."""
        if self.is_local:
            return str(Path(self.id).expanduser().resolve())
        return self.id

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "revision": self.revision, "trust_remote_code": self.trust_remote_code}

    def __str__(self) -> str:
        return self.id if not self.revision else f"{self.id}@{self.revision}"


def check_hub_id(hub_id: str) -> None:
    """Raise :class:`ModelError` unless ``hub_id`` is a well-formed ``name`` or ``owner/name``."""
    parts = hub_id.split("/")
    if len(hub_id) > _HUB_MAX or len(parts) > 2 or not all(_HUB_PART.match(p) for p in parts):
        raise ModelError(
            f"'{hub_id}' is neither an existing folder nor a valid hub id "
            "(expected 'owner/name' of letters, digits, '-', '_', '.')")


def find_weights(folder: Path) -> tuple[list[Path], list[Path]]:
    """The safetensors files and the pickle-format weight files directly in ``folder``."""
    files = [p for p in sorted(folder.iterdir()) if p.is_file()]
    safe = [p for p in files if p.name.endswith(SAFE_WEIGHTS_SUFFIX)]
    pickled = [p for p in files if p.name.endswith(PICKLE_WEIGHTS_SUFFIXES) and not p.name.startswith("training_args")]
    return safe, pickled


def check_model_ref(ref: Union[ModelRef, str, os.PathLike], *, allow_pickle: bool = False,
                    require_tokenizer: bool = True, require_weights: bool = True) -> ModelRef:
    """Check that ``ref`` can be handed to ``from_pretrained``; return it as a ModelRef.

    For a local folder: it exists, holds ``config.json``, weights in
    safetensors format (pickle ``.bin`` weights are refused unless
    ``allow_pickle``: unpickling a file can run arbitrary code), and a
    tokenizer (``tokenizer.json`` or ``tokenizer_config.json``). For a hub id:
    the syntax only. Raises :class:`ModelError` naming the folder and the
    missing file.
    """
    ref = ModelRef.coerce(ref)
    if not ref.is_local:
        check_hub_id(ref.id)
        return ref
    folder = Path(ref.resolve())
    if not folder.exists():
        raise ModelError(f"model folder {folder} does not exist")
    if not folder.is_dir():
        raise ModelError(f"model path {folder} is a file; give the folder that holds config.json")
    if not (folder / CONFIG_FILE).is_file():
        hint = ""
        if (folder / "adapter_config.json").is_file():
            hint = " (it holds a LoRA adapter: give the full model folder, or the adapter's base model)"
        raise ModelError(f"model folder {folder} has no {CONFIG_FILE}{hint}")
    if require_weights:
        safe, pickled = find_weights(folder)
        if not safe:
            if pickled and not allow_pickle:
                names = ", ".join(p.name for p in pickled[:3])
                raise ModelError(
                    f"model folder {folder} has only pickle weights ({names}), no .safetensors: "
                    "loading pickle files can execute arbitrary code; convert the weights to "
                    "safetensors, or allow pickle weights for a model you trust")
            if not pickled:
                raise ModelError(f"model folder {folder} has no weights (model.safetensors)")
    if require_tokenizer and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ModelError(f"model folder {folder} has no tokenizer ({' or '.join(TOKENIZER_FILES)})")
    return ref
