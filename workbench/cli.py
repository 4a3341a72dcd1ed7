"""Headless entry points: ``rlhf-workbench workspace|data|gui ...``.

Scripts rely on these exact names. With ``--json`` a command prints one
JSON object on stdout. A failure exits non-zero with a one-line error on
stderr that names the file, line and field where there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import Cancelled, DataError, WorkbenchError


def _workspace_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", "-w", metavar="DIR",
                   help="workspace folder (default: $RLHF_WORKBENCH_WORKSPACE or the per-user default)")


def _json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlhf-workbench",
        description="RLHF Workbench: rank responses, manage datasets, train SFT / reward model / PPO locally. "
                    "Run without a command to open the app.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = sub.add_parser("gui", help="open the desktop app")
    _workspace_arg(gui)

    ws = sub.add_parser("workspace", help="create and inspect workspaces").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    p = ws.add_parser("init", help="create a workspace folder (or migrate an existing one)")
    p.add_argument("dir", metavar="DIR")
    _json_arg(p)
    p = ws.add_parser("info", help="summary of a workspace")
    _workspace_arg(p)
    _json_arg(p)

    data = sub.add_parser("data", help="import, export and manage datasets").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    p = data.add_parser("import", help="import a JSONL / JSON / CSV / Parquet file or an HF dataset folder")
    p.add_argument("file", metavar="FILE")
    _workspace_arg(p)
    p.add_argument("--name", required=True, help="name of the new dataset")
    p.add_argument("--kind", choices=("sft", "preference", "prompts", "unpaired"),
                   help="dataset kind (default: from the detected shape)")
    p.add_argument("--format", choices=("jsonl", "json", "csv", "parquet", "hf"),
                   help="input format (default: from the extension and content)")
    p.add_argument("--layout", metavar="NAME",
                   help="the file's layout when detection is ambiguous or the file was renamed, e.g. "
                        "ultrafeedback, sharegpt, sharegpt-preference, llamafactory-alpaca, "
                        "llamafactory-alpaca-preference, dolly, chatbot-arena, nectar, pku-saferlhf, "
                        "pku-saferlhf-safer, shp, oasst, oasst-trees, label-studio, argilla, or a core shape "
                        "(preference, implicit-preference, hh-rlhf, kwise, messages, prompt-completion, alpaca, ...)")
    p.add_argument("--map", action="append", default=[], metavar="SRC=DST",
                   help="rename a source column to a known field, e.g. --map question=prompt, or let a label "
                        "column pick the chosen reply, e.g. --map 'winner=pick(a:answer_a,b:answer_b)' (repeatable)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="import the valid rows and report every skipped one (default: stop at the first)")
    p.add_argument("--description", default="", help="a note stored with the dataset")
    _json_arg(p)

    p = data.add_parser("export", help="export a dataset or a frozen snapshot, TRL-ready")
    p.add_argument("name", metavar="NAME", help="dataset name, or NAME@HASH for a snapshot")
    _workspace_arg(p)
    p.add_argument("--format", required=True, choices=("jsonl", "json", "csv", "parquet", "hf", "llamafactory-alpaca",
                                                       "llamafactory-sharegpt", "openrlhf", "labelstudio"),
                   help="TRL-ready jsonl/json/csv/parquet/hf, or another tool's layout: llamafactory-alpaca and "
                        "llamafactory-sharegpt (a folder with dataset_info.json), openrlhf (JSONL), labelstudio "
                        "(tasks for the pairwise RLHF template)")
    p.add_argument("--out", required=True, metavar="PATH")
    p.add_argument("--snapshot", metavar="HASH", help="export this frozen snapshot (hash prefix)")
    p.add_argument("--split", choices=("train", "validation"), help="export only this split")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing file, or a folder that is a previous export (never anything else)")
    p.add_argument("--csv-formulas", choices=("neutralise", "keep"), default="neutralise",
                   help="CSV cells starting with = + - @ TAB or CR: prefix them with ' so spreadsheets do not "
                        "run them as formulas (default), or keep them as stored")
    _json_arg(p)

    p = data.add_parser("stats", help="counts, splits, lengths and duplicates of a dataset")
    p.add_argument("name", metavar="NAME")
    _workspace_arg(p)
    p.add_argument("--tokenizer", metavar="DIR", help="model folder with tokenizer.json: adds token lengths")
    _json_arg(p)

    p = data.add_parser("list", help="list the workspace's datasets")
    _workspace_arg(p)
    _json_arg(p)

    p = data.add_parser("dedup", help="remove duplicate records (soft delete; snapshots keep theirs)")
    p.add_argument("name", metavar="NAME")
    _workspace_arg(p)
    p.add_argument("--mode", choices=("exact", "normalized"), default="exact",
                   help="normalized ignores whitespace and case")
    _json_arg(p)

    p = data.add_parser("split", help="seeded train/validation split, one prompt never on both sides")
    p.add_argument("name", metavar="NAME")
    _workspace_arg(p)
    p.add_argument("--validation", type=float, default=0.1, help="share of records for validation")
    p.add_argument("--seed", type=int, default=0)
    _json_arg(p)

    p = data.add_parser("freeze", help="freeze the current records as a snapshot identified by content hash")
    p.add_argument("name", metavar="NAME")
    _workspace_arg(p)
    p.add_argument("--note", default="")
    _json_arg(p)

    p = sub.add_parser("demo", help="build the demo workspace and run SFT -> reward model -> PPO headless")
    _workspace_arg(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="PPO steps (default: the demo's own)")
    p.add_argument("--quick", action="store_true", help="smaller sizes (what the e2e test runs)")
    p.add_argument("--build-only", action="store_true",
                   help="only build the demo seed (tiny model, SFT run, scripted rankings, preference pairs) "
                        "in a new or empty folder; an interrupted build is removed, never left half-built")
    p.add_argument("--progress-jsonl", action="store_true",
                   help='machine-readable output on stdout, one JSON object per line: '
                        '{"event": "progress", "fraction": F, "message": M} while it runs, then '
                        '{"event": "result", "result": {...}}; errors still go to stderr')
    _json_arg(p)

    p = sub.add_parser("train", help="start a run (sft, reward, dpo, ppo, generate, merge) from a config, or resume one")
    p.add_argument("config", nargs="?", metavar="CONFIG.yaml", help="run config with a 'stage:' key")
    p.add_argument("--resume", metavar="RUN", help="resume a cancelled or failed run (its folder, or its id in "
                   "the workspace) from its newest "
                   "checkpoint that verifies (damaged ones are skipped with a warning)")
    p.add_argument("--checkpoint", metavar="step-N", help="with --resume: continue from this checkpoint instead "
                   "(see `runs show`)")
    _workspace_arg(p)
    p.add_argument("--detach", action="store_true", help="start the job and return without following it")
    _json_arg(p)

    runs = sub.add_parser("runs", help="list, inspect and cancel training and generation runs").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    p = runs.add_parser("list", help="every run of the workspace, oldest first")
    _workspace_arg(p)
    _json_arg(p)
    p = runs.add_parser("show", help="one run: status, last metrics, checkpoints, error")
    p.add_argument("run_id", metavar="RUN_ID")
    _workspace_arg(p)
    _json_arg(p)
    p = runs.add_parser("cancel", help="cancel a run: cooperative stop (checkpoint), then terminate, then kill")
    p.add_argument("run_id", metavar="RUN_ID")
    _workspace_arg(p)
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for a cooperative stop before terminating")
    _json_arg(p)

    p = data.add_parser("delete", help="delete a dataset and its snapshots")
    p.add_argument("name", metavar="NAME")
    _workspace_arg(p)
    _json_arg(p)
    return parser


def _version() -> str:
    from . import __version__
    return __version__


def _resolve_workspace(arg: Optional[str]) -> Path:
    from .store.workspace import default_workspace_dir
    return Path(arg or os.environ.get("RLHF_WORKBENCH_WORKSPACE") or default_workspace_dir())


def _open(args):
    from .store.workspace import Workspace
    return Workspace.open(_resolve_workspace(args.workspace))


def _progress_printer(enabled: bool) -> Callable[[float, str], None]:
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if enabled and (now - last[0] > 0.2 or fraction >= 1.0):
            last[0] = now
            sys.stderr.write(f"\r{fraction * 100:5.1f}%  {message}\033[K")
            if fraction >= 1.0:
                sys.stderr.write("\n")
            sys.stderr.flush()
    return progress


def _emit(args, obj: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(obj, ensure_ascii=False, default=str))
    else:
        print(text)


def _fmt_time(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


# -- commands ------------------------------------------------------------------------------

def cmd_workspace(args) -> int:
    from .store.workspace import Workspace
    if args.action == "init":
        ws = Workspace.init(args.dir)
        info = ws.info()
        _emit(args, info.to_dict(), f"Workspace ready at {info.path} (schema v{info.schema_version})")
        return 0
    ws = _open(args)
    info = ws.info()
    _emit(args, info.to_dict(), "\n".join(f"{k:>15}: {v}" for k, v in info.to_dict().items()))
    return 0


def cmd_data(args) -> int:
    from .data import exporter, importer, ops
    from .store import datasets as ds_repo

    ws = _open(args)
    show_progress = not args.json and sys.stderr.isatty()
    if args.action == "import":
        report = importer.import_file(ws, args.file, args.name, kind=args.kind, mapping=args.map,
                                      skip_invalid=args.skip_invalid, description=args.description,
                                      fmt=args.format, progress=_progress_printer(show_progress),
                                      layout=args.layout)
        lines = [f"Imported {report.rows:,} records into {report.dataset!r} ({report.kind}, {report.style}, "
                 f"layout {report.shape}) from {report.path} in {report.seconds:.1f} s; {report.skipped:,} skipped.",
                 f"Layout {report.shape}: {report.layout_reason}."
                 + (f" {report.rankings:,} rankings stored." if report.rankings else "")]
        if report.ignored_fields:
            lines.append(f"Ignored fields: {', '.join(report.ignored_fields)}")
        if not args.json:
            for s in report.skipped_rows[:50]:
                unit = "line" if "line" in s else "row"
                field = f" field '{s['field']}':" if s.get("field") else ""
                sys.stderr.write(f"skipped {report.path}:{unit} {s[unit]}:{field} {s['message']}\n")
            if report.skipped > 50:
                sys.stderr.write(f"... and {report.skipped - 50:,} more skipped rows (use --json for all)\n")
        _emit(args, report.to_dict(), "\n".join(lines))
    elif args.action == "export":
        name, snapshot = args.name, args.snapshot
        if "@" in name:
            name, snapshot = name.split("@", 1)
        report = exporter.export_dataset(ws, name, args.format, args.out, snapshot=snapshot, split=args.split,
                                         overwrite=args.overwrite, csv_formulas=args.csv_formulas,
                                         progress=_progress_printer(show_progress))
        _emit(args, report.to_dict(),
              f"Exported {report.rows:,} records of {report.dataset!r} to {report.path} "
              f"({report.format}, sha256 {report.sha256[:12]})" + (f"\n{report.usage}" if report.usage else ""))
    elif args.action == "stats":
        result = ops.stats(ws, args.name, tokenizer=args.tokenizer, progress=_progress_printer(show_progress))
        _emit(args, result, _stats_text(result))
    elif args.action == "list":
        infos = ds_repo.list_datasets(ws.conn)
        rows = [i.to_dict() for i in infos]
        text = ["NAME                           KIND        STYLE            ROWS    TRAIN    VALID  SNAPSHOTS  UPDATED"]
        for i in infos:
            text.append(f"{i.name[:30]:30} {i.kind:11} {i.style:14} {i.rows:8,} {i.train:8,} {i.validation:8,} "
                        f"{len(i.snapshots):10}  {_fmt_time(i.updated_at)}")
        if not infos:
            text = ["No datasets yet: import one with 'rlhf-workbench data import FILE --name NAME'"]
        _emit(args, {"workspace": str(ws.root), "datasets": rows}, "\n".join(text))
    elif args.action == "dedup":
        report = ops.dedup(ws, args.name, args.mode)
        _emit(args, report.to_dict(), f"Removed {report.removed:,} {args.mode} duplicates of "
                                      f"{report.rows_before:,} records in {args.name!r}.")
    elif args.action == "split":
        report = ops.split(ws, args.name, validation=args.validation, seed=args.seed)
        _emit(args, report.to_dict(), f"Split {args.name!r}: {report.train:,} train, {report.validation:,} "
                                      f"validation ({report.prompts_validation:,} of "
                                      f"{report.prompts_train + report.prompts_validation:,} prompts), seed {args.seed}.")
    elif args.action == "freeze":
        with ws.transaction() as conn:
            snap = ds_repo.freeze(conn, args.name, args.note)
        _emit(args, snap.to_dict(), f"Snapshot of {args.name!r}: {snap.hash} ({snap.rows:,} records)")
    elif args.action == "delete":
        with ws.transaction() as conn:
            ds_repo.delete_dataset(conn, args.name)
        _emit(args, {"deleted": args.name}, f"Deleted dataset {args.name!r}.")
    return 0


#: The stages ``rlhf-workbench train`` starts from a config file.
TRAIN_STAGES = ("sft", "reward", "dpo", "ppo", "generate", "merge")


def _stage_config(path: str, workspace: Path) -> tuple[str, dict, list[str]]:
    """Read and validate a run config before any model loads: ``(stage, config, warnings)``.

    Torch-free, like the training panel's checks: a bad value is reported
    here, naming the file and the field, before a run folder exists.
    """
    from .config_files import load_yaml_file
    from .errors import short_repr

    data = load_yaml_file(path)
    if not isinstance(data, dict) or data.get("stage") not in TRAIN_STAGES:
        got = f" (got {short_repr(data.get('stage'))})" if isinstance(data, dict) and "stage" in data else ""
        raise WorkbenchError(f"{path}: expected a mapping with a 'stage:' key, one of "
                             f"{', '.join(TRAIN_STAGES)}{got}")
    stage = data["stage"]
    body = {k: v for k, v in data.items() if k != "stage"}
    try:
        if stage == "ppo":
            from .train.ppo_config import load_ppo_config, resolve_workspace, to_dict as ppo_to_dict, \
                validate_ppo_before_load
            cfg = load_ppo_config(body)
            # Against the workspace the job will use (a relative `workspace:` is relative to this one).
            warnings = validate_ppo_before_load(cfg, resolve_workspace(cfg, home=workspace))
            return stage, {k: v for k, v in ppo_to_dict(cfg).items() if k != "stage"}, warnings
        if stage == "generate":
            from .generate.config import GenerateConfig
            return stage, GenerateConfig.from_dict(body).to_dict(), []  # from_dict validates
        if stage == "merge":
            from .train.merge import check_config
            check_config(body, workspace)
            return stage, body, []
        from .train.config import load_config, to_dict, validate_before_load
        cfg = load_config(data)
        warnings = validate_before_load(cfg, workspace)
        return cfg.stage, {k: v for k, v in to_dict(cfg).items() if k != "stage"}, warnings
    except DataError:
        raise
    except WorkbenchError as exc:
        raise WorkbenchError(f"{path}: {exc}") from None


def _follow(sup, run_id: str, quiet: bool):
    """Print metric lines while the run goes on; Ctrl+C cancels it (with a checkpoint)."""
    from .jobs.events import FinishedEvent, LogEvent, MetricEvent, WarningEvent

    tailer = sup.tail(run_id)
    try:
        while True:
            for ev in tailer.read():
                if quiet:
                    continue
                if isinstance(ev, MetricEvent):
                    shown = ", ".join(f"{k} {v:.4g}" for k, v in list(ev.values.items())[:6]
                                      if isinstance(v, (int, float)))
                    sys.stderr.write(f"step {ev.step}: {shown}\n")
                elif isinstance(ev, (LogEvent, WarningEvent)):
                    sys.stderr.write(f"{getattr(ev, 'level', 'warning')}: {ev.message}\n")
                elif isinstance(ev, FinishedEvent):
                    sys.stderr.write(f"finished: {ev.status}" + (f" ({ev.error})" if ev.error else "") + "\n")
            sup.poll()
            info = sup.info(run_id)
            if info.status in ("completed", "cancelled", "failed") and not info.alive:
                for ev in tailer.read():
                    if isinstance(ev, FinishedEvent) and not quiet:
                        sys.stderr.write(f"finished: {ev.status}\n")
                return info
            time.sleep(0.5)
    except KeyboardInterrupt:
        sys.stderr.write("cancelling (saving a checkpoint)...\n")
        return sup.cancel(run_id)


#: Marker file inside a demo workspace while ``demo --build-only`` builds it:
#: ``{"pid", "create_time", "started"}`` of the building process. A folder
#: holding it is not a finished demo; the next build removes it and starts over.
DEMO_BUILDING_MARKER = ".demo-building"


def demo_is_complete(root: Path) -> bool:
    """Whether ``root`` holds a workspace that no demo build is (or was left) half-way through."""
    root = Path(root)
    return (root / "workspace.sqlite").is_file() and not (root / DEMO_BUILDING_MARKER).exists()


def _demo_builder_alive(root: Path) -> Optional[int]:
    """The pid of a live process still building the demo in ``root``, else ``None``."""
    import psutil

    try:
        marker = json.loads((Path(root) / DEMO_BUILDING_MARKER).read_text(encoding="utf-8"))
        proc = psutil.Process(int(marker["pid"]))
        if abs(proc.create_time() - float(marker["create_time"])) > 1.0:
            return None  # the pid was reused by another process
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc.pid
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None


def discard_partial_demo(root: Path) -> bool:
    """Remove a half-built demo: stop the jobs still running in it, delete the folder.

    Only a folder carrying :data:`DEMO_BUILDING_MARKER` is touched (a user's
    workspace never is); returns whether something was removed. Used by
    ``demo --build-only`` on cancel and on its next attempt, and by the GUI
    after it had to kill a builder that could not clean up itself.
    """
    import shutil

    from .jobs.supervisor import Supervisor

    root = Path(root)
    if not (root / DEMO_BUILDING_MARKER).exists():
        return False
    if (root / "runs").is_dir():
        sup = Supervisor(root)
        for info in sup.list_runs():
            if info.alive:  # the SFT job runs in its own session: killing the builder leaves it
                sup.cancel(info.run_id, timeout=0.5, term_timeout=2.0, kill_timeout=5.0)
    # The marker goes last: an interrupted removal is still recognised as a partial demo.
    for child in root.iterdir():
        if child.name != DEMO_BUILDING_MARKER:
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    (root / DEMO_BUILDING_MARKER).unlink()
    root.rmdir()
    return True


def _build_demo_only(root: Path, *, seed: int, sizes, progress) -> dict:
    """``demo --build-only``: build into a new or empty ``root``, marked as building until done;
    on any failure, a cancel or SIGTERM, remove what was built."""
    import signal

    import psutil

    from .train import demo

    root = root.absolute()
    if (root / DEMO_BUILDING_MARKER).exists():
        pid = _demo_builder_alive(root)
        if pid is not None:
            raise WorkbenchError(f"{root}: a demo build is already running there (pid {pid})")
        progress(0.0, "removing a half-built demo left by an earlier attempt")
        discard_partial_demo(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise WorkbenchError(f"{root}: not an empty folder; build the demo into a new folder")
    existed = root.exists()
    root.mkdir(parents=True, exist_ok=True)
    me = psutil.Process()
    (root / DEMO_BUILDING_MARKER).write_text(json.dumps(
        {"pid": me.pid, "create_time": me.create_time(), "started": time.time()}), encoding="utf-8")

    def on_sigterm(signum, frame):  # noqa: ARG001 - signal handler shape
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough; let the clean-up finish
        raise Cancelled("demo build cancelled (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        try:
            result = demo.build_demo(root, seed=seed, sizes=sizes, progress=progress)
        except BaseException:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            discard_partial_demo(root)
            if existed:
                root.mkdir(exist_ok=True)  # the user's empty folder stays as it was
            raise
        (root / DEMO_BUILDING_MARKER).unlink()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return result


def _jsonl_progress() -> Callable[[float, str], None]:
    last = [0.0, -1.0]

    def progress(fraction: float, message: str) -> None:
        # At most ~10 lines a second (a job reports every step), but every stage change.
        now = time.monotonic()
        if now - last[0] >= 0.1 or fraction >= 1.0 or fraction == 0.0 or last[1] < 0:
            last[0], last[1] = now, fraction
            print(json.dumps({"event": "progress", "fraction": round(float(fraction), 4),
                              "message": message}, ensure_ascii=False), flush=True)
    return progress


def cmd_demo(args) -> int:
    from .store.workspace import Workspace
    from .train import demo

    root = _resolve_workspace(args.workspace)
    # Jobs inherit this: one thread per job is much faster than two fighting on a small CPU.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sizes = demo.QUICK if args.quick else demo.FULL
    progress = (_jsonl_progress() if args.progress_jsonl
                else _progress_printer(not args.json and sys.stderr.isatty()))
    if args.build_only:
        result = _build_demo_only(root, seed=args.seed, sizes=sizes, progress=progress)
        result = json.loads(json.dumps(result, default=str))
        text = (f"Demo workspace ready in {result['workspace']}: {result['pairs']} preference pairs "
                f"({result['pairs_train']} train, {result['pairs_validation']} validation) from "
                f"{result['candidates']} scripted-ranked candidates; SFT run {result['sft_run']}")
    else:
        Workspace.init(root).close()
        result = demo.run_demo(root, seed=args.seed, steps=args.steps, sizes=sizes, progress=progress)
        result = json.loads(json.dumps(result, default=str))
        text = (f"Demo in {root}: reward model held-out accuracy {result['rm_accuracy']:.3f}; PPO score "
                f"{result['ppo_score_first']:.2f} -> {result['ppo_score_last']:.2f} (first vs last 20% of "
                f"steps), KL {result['kl_last']:.2f}; blind comparison on held-out prompts: "
                f"{result['compare']}\nruns: " + ", ".join(map(str, result["runs"])))
    if args.progress_jsonl:
        print(json.dumps({"event": "result", "result": result}, ensure_ascii=False), flush=True)
    else:
        _emit(args, result, text)
    return 0


def cmd_train(args) -> int:
    from .jobs.supervisor import Supervisor

    if bool(args.config) == bool(args.resume):
        raise WorkbenchError("give a CONFIG.yaml to start a run, or --resume RUN (not both)")
    if args.checkpoint and not args.resume:
        raise WorkbenchError("--checkpoint goes with --resume RUN")
    if args.resume:
        run_dir = Path(args.resume)
        # A run folder, or a run id of the workspace (--workspace or the default one).
        root = run_dir.resolve().parent.parent if run_dir.is_dir() and not args.workspace else \
            _resolve_workspace(args.workspace)
        ws_root = _open(argparse.Namespace(workspace=str(root))).root
        sup = Supervisor(ws_root)
        handle = sup.resume(run_dir.name, checkpoint=args.checkpoint)
    else:
        ws_root = _open(args).root
        stage, body, warnings = _stage_config(args.config, ws_root)
        for w in warnings:
            sys.stderr.write(f"warning: {w}\n")
        sup = Supervisor(ws_root)
        handle = sup.start(stage, body)
    info = sup.info(handle.run_id)
    if not args.json:
        sys.stderr.write(f"run {handle.run_id} ({info.stage}): {info.status}; folder {handle.path}\n")
    if args.detach:
        _emit(args, info.to_dict(), f"{handle.run_id} {info.status}")
        return 0
    info = _follow(sup, handle.run_id, quiet=args.json)
    _emit(args, info.to_dict(), f"{info.run_id}: {info.status}" + (f" ({info.error})" if info.error else ""))
    return {"completed": 0, "cancelled": 130}.get(info.status, 1)


def cmd_runs(args) -> int:
    from .jobs.events import MetricEvent, read_events
    from .jobs.checkpoints import checkpoint_usage
    from .jobs.rundir import list_checkpoints
    from .train.vram import format_bytes
    from .jobs.supervisor import Supervisor

    ws = _open(args)
    sup = Supervisor(ws.root)
    if args.action == "list":
        infos = sup.list_runs()
        text = [f"{'RUN':36} {'STAGE':8} {'STATUS':10} {'STEP':>6}  STARTED"]
        for r in infos:
            text.append(f"{r.run_id:36} {r.stage:8} {r.status:10} {r.last_step if r.last_step is not None else '-':>6}"
                        f"  {_fmt_time(r.started) if r.started else '-'}")
        if not infos:
            text = ["No runs yet."]
        _emit(args, {"workspace": str(ws.root), "runs": [r.to_dict() for r in infos]}, "\n".join(text))
    elif args.action == "show":
        info = sup.info(args.run_id)
        last: dict = {}
        for ev in read_events(sup.run_dir(args.run_id).events):
            if isinstance(ev, MetricEvent):
                last.update(ev.values)
        checkpoints = [str(p) for _step, p in list_checkpoints(sup.run_dir(args.run_id))]
        disk, sizes = checkpoint_usage(sup.run_dir(args.run_id))
        out = {**info.to_dict(), "last_metrics": last, "checkpoints": checkpoints, "disk_bytes": disk,
               "checkpoint_bytes": dict(sizes)}
        text = [f"{info.run_id}: {info.stage}, {info.status}" + (f" at step {info.last_step}" if info.last_step else "")]
        text += [f"  {k} = {v:.6g}" if isinstance(v, float) else f"  {k} = {v}" for k, v in sorted(last.items())]
        text += [f"  checkpoint {c} ({format_bytes(n)})" for c, (_name, n) in zip(checkpoints, sizes)]
        text.append(f"  disk: {format_bytes(disk)} in all ({format_bytes(sum(n for _c, n in sizes))} "
                    f"in {len(sizes)} checkpoint{'' if len(sizes) == 1 else 's'})")
        if info.error:
            text.append(f"  error: {info.error}")
        _emit(args, out, "\n".join(text))
    elif args.action == "cancel":
        info = sup.cancel(args.run_id, timeout=args.timeout)
        _emit(args, info.to_dict(), f"{info.run_id}: {info.status}")
    return 0


def _stats_text(s: dict) -> str:
    out = [f"{s['dataset']}: {s['rows']:,} records ({s['kind']}, {s['style']})",
           f"  splits: train {s['splits']['train']:,}, validation {s['splits']['validation']:,}, "
           f"unassigned {s['splits']['unassigned']:,}; deleted {s['deleted']:,}",
           f"  unique prompts: {s['unique_prompts']:,}; duplicates: {s['duplicates']['exact']:,} exact, "
           f"{s['duplicates']['normalized']:,} normalized"]
    for unit, key in (("chars", "length_chars"), ("tokens", "length_tokens")):
        for field, d in s.get(key, {}).items():
            if d.get("count"):
                out.append(f"  {field:>10} {unit:>6}: min {d['min']}, p50 {d['p50']}, p90 {d['p90']}, "
                           f"p99 {d['p99']}, max {d['max']}, mean {d['mean']}")
    return "\n".join(out)


def cmd_gui(args) -> int:
    # The core never imports Qt (import-linter contract): the `rlhf-workbench`
    # launcher (ui/launcher.py) starts the app before this parser runs.
    raise WorkbenchError("the desktop app is started by the 'rlhf-workbench' launcher "
                         "(python -m ui.launcher gui), not by workbench.cli")


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args.workspace = None
        return cmd_gui(args)
    handler = {"workspace": cmd_workspace, "data": cmd_data, "runs": cmd_runs, "train": cmd_train, "demo": cmd_demo,
               "gui": cmd_gui}[args.command]
    try:
        return handler(args)
    except DataError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except Cancelled:
        sys.stderr.write("error: cancelled\n")
        return 130
    except WorkbenchError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted; nothing of the unfinished operation was stored\n")
        return 130
    except (sqlite3.Error, OSError) as exc:
        # A condition no command foresaw (a full disk, a read-only folder): one line, no traceback.
        from .store.db import explain
        from .store.workspace import DB_NAME
        root = _resolve_workspace(getattr(args, "workspace", None))
        known = explain(exc, root / DB_NAME)
        if known is None:
            where = (exc.filename or root) if isinstance(exc, OSError) else root / DB_NAME
            known = f"{where}: {getattr(exc, 'strerror', None) or exc}"
        sys.stderr.write(f"error: {known}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
