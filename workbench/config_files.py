"""Reading YAML config files: the one loader for run configs, presets and ``config.yaml``.

Config files come from users and from the internet, so the loader is
defensive beyond ``yaml.safe_load`` (which already refuses tags that would
build Python objects):

- Aliases share one object per anchor, so a few hundred bytes can describe a
  tree of billions of nodes ("billion laughs"). Nothing is wrong until some
  code walks or prints it, and then it hangs. The loaded value is walked once
  with a budget of :data:`MAX_NODES` nodes (counting every alias expansion)
  and refused beyond it; a self-referencing alias is refused the same way.
- A value nested deeper than :data:`MAX_DEPTH` levels is refused (the YAML
  composer and every later walk recurse).

Errors are :class:`ConfigFileError`, one line naming the file (and the line
and column for a syntax error).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import yaml

from .errors import WorkbenchError

#: Most nodes (mappings, lists, scalars, with aliases expanded) a config may hold.
#: The largest real config (a PPO stage with every field) has a few hundred.
MAX_NODES = 100_000
#: Deepest nesting of mappings and lists; real configs nest three levels.
MAX_DEPTH = 50
#: Largest config file read, in bytes.
MAX_BYTES = 4 << 20


class ConfigFileError(WorkbenchError):
    """A config file cannot be read or is not a sane YAML document; the message names the file."""


def check_expanded_size(data: Any, where: str) -> None:
    """Refuse ``data`` if it expands (aliases included) beyond :data:`MAX_NODES` nodes
    or nests deeper than :data:`MAX_DEPTH`; ``where`` leads the message."""
    budget = MAX_NODES
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigFileError(f"{where}: the config expands to more than {MAX_NODES:,} values "
                                  "(YAML aliases repeating each other, or referring to themselves); "
                                  "refused")
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, (list, tuple)):
            children = list(value)
        else:
            continue
        if depth >= MAX_DEPTH and children:
            raise ConfigFileError(f"{where}: nested deeper than {MAX_DEPTH} levels "
                                  "(or a YAML alias refers to itself); refused")
        stack.extend((child, depth + 1) for child in children)


def parse_yaml(text: str, where: str) -> Any:
    """The YAML document in ``text``, checked as described in the module docstring."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigFileError(f"{where}: not valid YAML: {at}{problem}") from None
    except RecursionError:
        raise ConfigFileError(f"{where}: nested deeper than {MAX_DEPTH} levels; refused") from None
    check_expanded_size(data, where)
    return data


def load_yaml_file(path: Union[str, os.PathLike]) -> Any:
    """The YAML document in the file at ``path`` (see :func:`parse_yaml`)."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO or device would block or never end
        raise ConfigFileError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: cannot read the config (no such config file)") from None
    except OSError as e:
        raise ConfigFileError(f"{path}: cannot read the config ({e.strerror or e})") from None
    if len(raw) > MAX_BYTES:
        raise ConfigFileError(f"{path}: larger than {MAX_BYTES >> 20} MB; not a config file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigFileError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return parse_yaml(text, str(path))
