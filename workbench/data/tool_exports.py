"""Export rows in the layouts of the tools users go to next: LLaMA-Factory, OpenRLHF, Label Studio.

Each format turns the exporter's TRL-style rows (``prompt``, ``completion``,
``messages``, ``chosen``, ``rejected``, ``label``; strings or chat messages)
into what the tool's own loader reads, and says how to point the tool at it
(:attr:`ToolFormat.usage`). Every output is a pure function of the rows, so a
frozen snapshot exports byte-identically. A row the tool cannot represent
(say a system message in the middle of a chat) stops the export with a
message naming the record and field; nothing is written under the final name.

- ``llamafactory-alpaca`` / ``llamafactory-sharegpt``: a folder with
  ``<name>.jsonl`` and the ``dataset_info.json`` entry for it (``formatting``,
  ``ranking: true`` for pairs, ``columns``, sharegpt ``tags``), read by
  LLaMA-Factory's ``src/llamafactory/data/parser.py`` (``DatasetAttr``) and
  ``converter.py`` (``AlpacaDatasetConverter``, ``SharegptDatasetConverter``),
  as documented in its ``data/README.md``.
- ``openrlhf``: JSONL with the keys OpenRLHF's dataset code reads:
  ``openrlhf/datasets/reward_dataset.py`` (``preprocess_data``: ``prompt_key``,
  ``chosen_key``, ``rejected_key``; with ``--data.apply_chat_template`` the
  prompt and answers are message lists, concatenated), ``sft_dataset.py``
  (``input_key``, ``output_key``) and ``prompts_dataset.py`` (``input_key``);
  the flags are in ``openrlhf/cli/train_rm.py``, ``train_dpo.py``,
  ``train_sft.py`` and ``train_ppo_ray.py``.
- ``labelstudio``: a JSON list of tasks for Label Studio's "Human Preferences
  collection for RLHF" template (``<Text name="prompt">``,
  ``<Pairwise name="comparison" toName="answer1,answer2">``), each with the
  stored preference as an annotation whose ``pairwise`` result selects
  ``left`` (answer1) or ``right`` (answer2) with ``to_name`` the control's own
  name, as label-studio-frontend's ``src/tags/control/Pairwise.js`` writes it
  (``createResult({}, {selected}, self, self.name)``; its
  ``examples/pairwise/annotations/1.json``), and readers such as data-juicer's
  ``human_preference_annotation_mapper.py`` take back. Sides are drawn per pair from a hash of its texts, so the
  better answer is not always on the left, and the draw is reproducible.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from ..errors import WorkbenchError


@dataclass(frozen=True)
class ToolFormat:
    """One tool's layout: which dataset kinds it takes, file or folder, and how to use it."""

    name: str
    label: str
    kinds: tuple[str, ...]
    folder: bool
    suffix: str  # of the data file (inside the folder for folder formats)


TOOL_FORMATS: dict[str, ToolFormat] = {f.name: f for f in (
    ToolFormat("llamafactory-alpaca", "LLaMA-Factory, alpaca layout (folder with dataset_info.json)",
               ("sft", "preference", "unpaired", "prompts"), True, ".jsonl"),
    ToolFormat("llamafactory-sharegpt", "LLaMA-Factory, sharegpt layout (folder with dataset_info.json)",
               ("sft", "preference", "unpaired"), True, ".jsonl"),
    ToolFormat("openrlhf", "OpenRLHF JSONL (prompt/chosen/rejected, input/output)",
               ("sft", "preference", "prompts"), False, ".jsonl"),
    ToolFormat("labelstudio", "Label Studio tasks, pairwise RLHF template (.json)", ("preference",), False, ".json"),
)}

_WHY_NOT = {
    ("llamafactory-sharegpt", "prompts"): "LLaMA-Factory's sharegpt layout has no prompt-only rows; "
                                          "use --format llamafactory-alpaca",
    ("openrlhf", "unpaired"): "OpenRLHF has no trainer for unpaired (KTO) rows",
}


class ToolExportError(WorkbenchError):
    """A dataset or a row the chosen tool layout cannot hold."""


def unsupported(fmt: str, kind: str) -> Optional[str]:
    """Why tool format ``fmt`` cannot hold a ``kind`` dataset, or ``None`` when it can."""
    tool = TOOL_FORMATS[fmt]
    if kind in tool.kinds:
        return None
    return _WHY_NOT.get((fmt, kind)) or f"it takes {', '.join(tool.kinds)} datasets"


def check_kind(fmt: str, kind: str, dataset: str) -> None:
    """Raise :class:`ToolExportError` when tool format ``fmt`` cannot hold a ``kind`` dataset."""
    why = unsupported(fmt, kind)
    if why:
        raise ToolExportError(f"--format {fmt}: {dataset!r} is a {kind} dataset; {why}")


# -- chat turns ---------------------------------------------------------------------------------

def _turns(value: Any, role: str) -> list[dict]:
    """A text value as messages (a plain string becomes one ``role`` message)."""
    return [{"role": role, "content": value}] if isinstance(value, str) else list(value)


def _split_system(messages: list[dict]) -> tuple[str, list[dict]]:
    if messages and messages[0].get("role") == "system":
        return str(messages[0].get("content") or ""), messages[1:]
    return "", messages


def _answer(value: Any, where: str, field: str) -> str:
    """A completion/chosen/rejected value as one assistant text."""
    if isinstance(value, str):
        return value
    if len(value) != 1 or value[0].get("role") != "assistant":
        raise ToolExportError(f"{where}: field '{field}': expected one assistant message, "
                              f"got {len(value)} message(s) ({', '.join(str(m.get('role')) for m in value)})")
    return str(value[0].get("content") or "")


def _as_text(messages: list[dict]) -> str:
    """A chat as plain text for a viewer that shows one string (Label Studio's ``<Text>``)."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return str(messages[0].get("content") or "")
    return "\n\n".join(f"{str(m.get('role', '')).capitalize()}: {m.get('content') or ''}" for m in messages)


def _prompt_and_reply(row: dict) -> tuple[list[dict], Optional[list[dict]]]:
    """``(prompt messages, reply messages or None)`` of an SFT / unpaired / prompts row."""
    if "messages" in row and row["messages"] is not None:
        msgs = list(row["messages"])
        return msgs[:-1], msgs[-1:]
    prompt = _turns(row["prompt"], "user")
    return prompt, (_turns(row["completion"], "assistant") if row.get("completion") is not None else None)


# -- LLaMA-Factory ------------------------------------------------------------------------------

_SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "tool": "observation", "system": "system"}
#: LLaMA-Factory's SharegptDatasetConverter: after a leading system turn, odd turns are human or
#: observation, even turns gpt or function_call; anything else makes it skip the row silently.
_SHAREGPT_ORDER = (("human", "observation"), ("gpt", "function_call"))


def _sharegpt(messages: list[dict], where: str, field: str, *, ends_with: str) -> list[dict]:
    out = []
    for i, m in enumerate(messages):
        role = _SHAREGPT_ROLES.get(str(m.get("role")))
        if role is None or (role == "system" and i > 0):
            raise ToolExportError(f"{where}: field '{field}': message {i + 1} has role {m.get('role')!r}, which "
                                  "LLaMA-Factory's sharegpt layout cannot hold there")
        out.append({"from": role, "value": str(m.get("content") or "")})
    turns = out[1:] if out and out[0]["from"] == "system" else out
    for i, m in enumerate(turns):
        if m["from"] not in _SHAREGPT_ORDER[i % 2]:
            raise ToolExportError(f"{where}: field '{field}': turn {i + 1} is {m['from']!r}; LLaMA-Factory needs "
                                  "user and assistant turns to alternate, starting with the user")
    if not turns or turns[-1]["from"] not in _SHAREGPT_ORDER[0 if ends_with == "human" else 1]:
        raise ToolExportError(f"{where}: field '{field}': the conversation must end with a "
                              f"{'user' if ends_with == 'human' else 'assistant'} turn")
    return out


def _alpaca_prompt(prompt: list[dict], where: str) -> dict:
    """``instruction``, ``system`` and ``history`` ([[user, assistant], ...]) of a prompt."""
    system, turns = _split_system(prompt)
    if not turns or turns[-1].get("role") != "user":
        raise ToolExportError(f"{where}: field 'prompt': the prompt must end with a user turn")
    history = []
    for i in range(0, len(turns) - 1, 2):
        pair = turns[i:i + 2]
        if [m.get("role") for m in pair] != ["user", "assistant"]:
            raise ToolExportError(f"{where}: field 'prompt': LLaMA-Factory's alpaca history needs alternating "
                                  "user and assistant turns (use --format llamafactory-sharegpt for other roles)")
        history.append([str(pair[0].get("content") or ""), str(pair[1].get("content") or "")])
    return {"instruction": str(turns[-1].get("content") or ""), "system": system, "history": history}


def _llamafactory_alpaca(row: dict, kind: str, where: str) -> dict:
    if kind == "preference":
        out = _alpaca_prompt(_turns(row["prompt"], "user"), where)
        out.update(chosen=_answer(row["chosen"], where, "chosen"), rejected=_answer(row["rejected"], where, "rejected"))
        return out
    prompt, reply = _prompt_and_reply(row)
    out = _alpaca_prompt(prompt, where)
    if reply is not None:
        out["output"] = _answer(reply, where, "messages" if "messages" in row else "completion")
    if kind == "unpaired":
        out["kto_tag"] = bool(row["label"])
    return out


def _llamafactory_sharegpt(row: dict, kind: str, where: str) -> dict:
    if kind == "preference":
        return {"conversations": _sharegpt(_turns(row["prompt"], "user"), where, "prompt", ends_with="human"),
                "chosen": {"from": "gpt", "value": _answer(row["chosen"], where, "chosen")},
                "rejected": {"from": "gpt", "value": _answer(row["rejected"], where, "rejected")}}
    prompt, reply = _prompt_and_reply(row)
    field = "messages" if "messages" in row else "prompt"
    out: dict[str, Any] = {"conversations": _sharegpt(prompt + (reply or []), where, field, ends_with="gpt")}
    if kind == "unpaired":
        out["kto_tag"] = bool(row["label"])
    return out


def dataset_info(fmt: str, kind: str, name: str, file_name: str) -> dict:
    """The ``dataset_info.json`` entry LLaMA-Factory reads for the exported file."""
    entry: dict[str, Any] = {"file_name": file_name}
    if fmt == "llamafactory-alpaca":
        columns = {"prompt": "instruction", "system": "system", "history": "history"}
        if kind == "preference":
            columns.update(chosen="chosen", rejected="rejected")
        elif kind in ("sft", "unpaired"):
            columns["response"] = "output"
    else:
        entry["formatting"] = "sharegpt"
        columns = {"messages": "conversations"}
        if kind == "preference":
            columns.update(chosen="chosen", rejected="rejected")
        entry["tags"] = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                         "observation_tag": "observation", "system_tag": "system"}
    if kind == "unpaired":
        columns["kto_tag"] = "kto_tag"
    if kind == "preference":
        entry["ranking"] = True
    entry["columns"] = columns
    return {name: entry}


# -- OpenRLHF -----------------------------------------------------------------------------------

def _openrlhf(row: dict, kind: str, where: str) -> dict:
    if kind == "preference":
        return {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}
    if kind == "prompts":
        return {"input": row["prompt"]}
    if "messages" in row and row["messages"] is not None:
        prompt, reply = _prompt_and_reply(row)
        return {"input": prompt, "output": reply}
    return {"input": row["prompt"], "output": row["completion"]}


def openrlhf_flags(kind: str, conversational: bool) -> str:
    """The OpenRLHF command-line flags that read an ``openrlhf`` export of a ``kind`` dataset."""
    keys = {"preference": "--data.prompt_key prompt --data.chosen_key chosen --data.rejected_key rejected",
            "sft": "--data.input_key input --data.output_key output",
            "prompts": "--data.input_key input"}[kind]
    return keys + (" --data.apply_chat_template" if conversational else "")


# -- Label Studio -------------------------------------------------------------------------------

def _labelstudio(row: dict, kind: str, where: str) -> dict:
    prompt = _as_text(_turns(row["prompt"], "user"))
    chosen = _answer(row["chosen"], where, "chosen")
    rejected = _answer(row["rejected"], where, "rejected")
    digest = hashlib.sha256(json.dumps([prompt, chosen, rejected], ensure_ascii=False).encode("utf-8")).digest()
    left = digest[0] % 2 == 0  # the chosen answer on the left for about half of the pairs
    answer1, answer2 = (chosen, rejected) if left else (rejected, chosen)
    result = {"from_name": "comparison", "to_name": "comparison", "type": "pairwise",
              "value": {"selected": "left" if left else "right"}}
    return {"data": {"prompt": prompt, "answer1": answer1, "answer2": answer2},
            "annotations": [{"result": [result]}]}


_CONVERTERS: dict[str, Callable[[dict, str, str], dict]] = {
    "llamafactory-alpaca": _llamafactory_alpaca, "llamafactory-sharegpt": _llamafactory_sharegpt,
    "openrlhf": _openrlhf, "labelstudio": _labelstudio,
}


def convert(fmt: str, kind: str, rows: Iterable[tuple[str, dict]]) -> Iterator[dict]:
    """The rows of tool format ``fmt``; ``rows`` are ``(where, exporter row)``, ``where`` naming the record."""
    convert_row = _CONVERTERS[fmt]
    for where, row in rows:
        yield convert_row(row, kind, where)


def usage(fmt: str, kind: str, conversational: bool, out: Path, entries: list[str]) -> str:
    """One line telling the user how to point the tool at the export in ``out``
    (``entries``: the ``dataset_info.json`` names, the validation one second)."""
    if fmt.startswith("llamafactory"):
        stage = {"preference": "rm or dpo", "unpaired": "kto", "sft": "sft", "prompts": "ppo"}[kind]
        evaluation = f", eval_dataset: {entries[1]}" if len(entries) > 1 else ""
        return (f"LLaMA-Factory training YAML: dataset_dir: {out}, dataset: {entries[0]}{evaluation} "
                f"(stage: {stage})")
    if fmt == "openrlhf":
        script = {"preference": "train_rm / train_dpo", "sft": "train_sft", "prompts": "train_ppo_ray"}[kind]
        data = "--data.prompt_dataset" if kind == "prompts" else "--data.dataset"
        return f"OpenRLHF ({script}): {data} {out} {openrlhf_flags(kind, conversational)}"
    return ("Label Studio: create a project with the \"Human Preferences collection for RLHF\" template "
            f"and import {out.name}")
