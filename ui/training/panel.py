"""The Train page: the pipeline, a stage's config form with its memory estimate, and run control.

Layout: the pipeline strip on top (:class:`~ui.training.pipeline.PipelineView`);
below it the selected stage's form (:class:`~ui.training.config_form.ConfigFormView`,
with presets and YAML load/save) on the left, and on the right the VRAM
estimate (:class:`~ui.training.vram_view.VramView`), the Run box (start,
cancel, resume, the job queue) and the After-the-run box (generate, compare,
merge and export).

Pipeline state. The cards show each stage's runs (running wins over queued,
then the latest outcome) and what its latest completed run produced. That
output feeds the later stages' model fields (SFT -> reward, DPO and PPO's
policy; reward -> PPO's reward model) once it is loadable: a full model, a
run's ``merged/`` copy, or a merge job's export; a field the user typed into
is left alone. When a workspace opens, each untouched form starts from its
stage's latest run config (the snapshot unpinned), so a restarted GUI shows
where the user left off.

Threading. Everything that touches the workspace's SQLite, a model folder or
the supervisor runs on worker threads through :func:`ui.common.worker.run_in_thread`:
the form checks and estimate (debounced after each edit), the listing of
datasets, snapshots, models and run outputs, and start / cancel / resume.
Results come back on the GUI thread; a check result older than the latest
edit is dropped. The job queue comes from a :class:`~ui.common.jobs.JobMonitor`:
the window's shared ``job_monitor`` when the page lives in the main window,
else one of its own (standalone, as in the tests).

Hand-overs. Starting a run emits ``run_started(run_id)`` and, inside the main
window, shows the Runs page and selects the run there (``select_run``).
"Generate candidates" and "Compare with base" emit ``generation_requested``
/ ``comparison_requested`` and, in the window, call the Rank page's
``open_generation_dialog(model=...)`` / ``open_comparison_dialog(a, b)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton,
                               QScrollArea, QSplitter, QStackedWidget, QVBoxLayout, QWidget)

from workbench.jobs.events import EventTailer, LogEvent
from workbench.jobs.rundir import RunDir
from workbench.jobs.supervisor import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, RunInfo
from workbench.train import vram as V
from workbench.train.outputs import RunOutput, loadable_model

from ..common.jobs import JobMonitor
from ..common.names import model_name
from ..common.worker import Task, run_in_thread

from .after_run import AfterRunView
from .config_form import ConfigFormView
from .form_io import (ConfigFileError, apply_preset, preset_stages, read_config_file, restorable_config,
                      write_config_file)
from .pipeline import PipelineView, stage_status
from .run_control import RunControlView
from .stages import ORDER, STAGES, CheckResult, check_config, defaults, get_path
from .vram_view import VramView
from .workspace_lists import WorkspaceLists, read_lists

#: Hub models offered in every model field (the presets' models).
HUB_MODELS = ("Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
              "meta-llama/Llama-3.1-8B-Instruct")
#: Errors that only say a required field is still empty: not shown until the user tries to start.
_DASH = "\u2014"
_EMPTY_MARKERS = ("empty:", "give the model to train", "choose the workspace dataset of prompts",
                  "choose the reward model")


class TrainingPanel(QWidget):
    """The Train page (see the module docstring); follows :mod:`ui.common.page`."""

    run_started = Signal(str)
    generation_requested = Signal(str)
    comparison_requested = Signal(str, str)
    #: Emitted after each form check with its result (tests wait on it).
    checked = Signal(object)

    def __init__(self, parent: Optional[QWidget] = None, *, job_monitor: Optional[JobMonitor] = None,
                 check_delay_ms: int = 250) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self._root: Optional[Path] = None
        self._given_monitor = job_monitor
        self._monitor: Optional[JobMonitor] = None
        self._own_monitor: Optional[JobMonitor] = None
        self._runs: list[RunInfo] = []
        self._lists = WorkspaceLists()
        self._lists_key: Any = None
        self._tasks: set[Task] = set()
        self._check_seq = 0
        self._autofilled: dict[tuple[str, str], str] = {}
        self._start_attempted: set[str] = set()
        self._busy: dict[str, str] = {}  # run id -> "cancelling" / "resuming"
        self._merge_run: Optional[str] = None
        self._run_configs: dict[str, Optional[dict]] = {}  # run id -> its config.yaml
        self.merge_dialog: Optional[QFileDialog] = None  # "where to" of a merge, while it is up
        self.replace_box: Optional[QMessageBox] = None  # "Replace the earlier merged model?", while up
        self._merge_tailer: Optional[EventTailer] = None
        self._merge_log = ""
        self.stage = "sft"
        self.last_check: Optional[CheckResult] = None
        self.file_dialog: Optional[QFileDialog] = None
        self._presets = preset_stages()
        self._restored: set[str] = set()

        self.pipeline = PipelineView()
        self.pipeline.stage_clicked.connect(self._on_pipeline_stage_clicked)

        # Left: header with presets and YAML, then the forms.
        self.stage_title = QLabel()
        title_font = QFont(self.stage_title.font())
        title_font.setPointSizeF(title_font.pointSizeF() * 1.25)
        title_font.setWeight(QFont.Weight.DemiBold)
        self.stage_title.setFont(title_font)
        self.stage_blurb = QLabel()
        self.stage_blurb.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.stage_blurb.setWordWrap(True)  # wraps rather than widening the window
        self.preset_combo = QComboBox()
        self.preset_combo.setObjectName("presetCombo")
        # Preset descriptions are long; the popup shows them whole, the closed combo need not.
        self.preset_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset_combo.setMinimumContentsLength(18)
        self.preset_combo.view().setMinimumWidth(360)
        self.preset_combo.setToolTip("Fill the form with a hardware profile from resources/presets")
        self.preset_combo.activated.connect(self._on_preset_combo_activated)
        self.load_button = QPushButton("Load YAML\u2026")
        self.load_button.clicked.connect(self._on_load_button_clicked)
        self.save_button = QPushButton("Save YAML\u2026")
        self.save_button.clicked.connect(self._on_save_button_clicked)
        header = QHBoxLayout()
        header.addWidget(self.stage_title)
        header.addWidget(self.stage_blurb, 1)
        header.addWidget(self.preset_combo)
        header.addWidget(self.load_button)
        header.addWidget(self.save_button)

        self.forms: dict[str, ConfigFormView] = {}
        self.form_stack = QStackedWidget()
        for stage in ORDER:
            form = ConfigFormView(stage)
            form.changed.connect(self._on_form_changed)
            self.forms[stage] = form
            self.form_stack.addWidget(form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.form_stack)
        self._form_scroll = scroll
        scroll.viewport().installEventFilter(self)  # forms fit their columns to its width
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 6, 0)
        left_layout.addLayout(header)
        left_layout.addWidget(scroll, 1)

        # Right: estimate, run control, after the run.
        self.vram = VramView()
        self.vram.detect_requested.connect(self._on_vram_detect_requested)
        self.run_control = RunControlView()
        self.run_control.start_button.clicked.connect(self._on_start_clicked)
        self.run_control.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.run_control.resume_button.clicked.connect(self._on_resume_clicked)
        self.after_run = AfterRunView()
        self.after_run.generate_button.clicked.connect(self._on_generate_clicked)
        self.after_run.compare_button.clicked.connect(self._on_compare_clicked)
        self.after_run.merge_button.clicked.connect(self._on_merge_clicked)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(6, 0, 0, 0)
        right_layout.addWidget(self.vram)
        right_layout.addWidget(self.run_control)
        right_layout.addWidget(self.after_run)
        right_layout.addStretch(1)
        right_scroll = QScrollArea()
        right_scroll.setWidgetResizable(True)
        right_scroll.setFrameShape(QFrame.Shape.NoFrame)
        right_scroll.setWidget(right)
        right_scroll.setMinimumWidth(330)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right_scroll)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([880, 380])
        splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(10)
        layout.addWidget(self.pipeline)
        layout.addWidget(splitter, 1)

        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(check_delay_ms)
        self._check_timer.timeout.connect(self._run_check)
        self._select_stage("sft")
        self._update_run_controls()

    # == page contract =================================================================
    def set_workspace(self, root: Optional[Path]) -> None:
        """Bind to the workspace at ``root`` (``None``: none open)."""
        self._root = Path(root) if root is not None else None
        self._restored = set()
        self._lists = WorkspaceLists()
        self._lists_key = None
        self._runs = []
        self._merge_run = None
        self._bind_monitor()
        for form in self.forms.values():
            form.set_workspace_lists(self._root, [], {}, self._model_choices())
        if self._root is not None:
            self._refresh_lists()
        self._update_pipeline()
        self._update_run_controls()
        self._schedule_check(now=True)

    def shutdown(self) -> None:
        """Stop timers and worker threads (the window is closing)."""
        self._check_timer.stop()
        if self._own_monitor is not None:
            self._own_monitor.stop()
        for task in list(self._tasks):
            task.cancel()
            task.wait(30000)

    @property
    def monitor(self) -> Optional[JobMonitor]:
        """The job monitor in use (the window's or the panel's own)."""
        return self._monitor

    def _bind_monitor(self) -> None:
        """Listen to the given monitor, else the window's shared one, else a monitor of our own
        (standalone: tests, or a page outside the main window)."""
        window = self.window()
        monitor = self._given_monitor or (getattr(window, "job_monitor", None) if window is not self else None)
        if monitor is None:
            if self._own_monitor is None:
                self._own_monitor = JobMonitor(self, interval_ms=500)
            monitor = self._own_monitor
            monitor.set_workspace(self._root)
        if monitor is not self._monitor:
            if self._monitor is not None:
                self._monitor.runs_changed.disconnect(self._on_monitor_runs_changed)
            monitor.runs_changed.connect(self._on_monitor_runs_changed)
            self._monitor = monitor
        if monitor.runs:
            self._on_monitor_runs_changed(monitor.runs)

    # == stages and forms ==============================================================
    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Resize and watched is self._form_scroll.viewport():
            for form in self.forms.values():
                form.fit_width(watched.width())
        return super().eventFilter(watched, event)

    @property
    def form(self) -> ConfigFormView:
        """The form of the selected stage."""
        return self.forms[self.stage]

    def select_stage(self, stage: str) -> None:
        """Show ``stage``'s form (as clicking its card does)."""
        self.pipeline.set_selected(stage)
        self._select_stage(stage)

    def _on_pipeline_stage_clicked(self, stage: str) -> None:
        self._select_stage(stage)

    def _select_stage(self, stage: str) -> None:
        self.stage = stage
        sdef = STAGES[stage]
        self.pipeline.set_selected(stage)
        self.form_stack.setCurrentWidget(self.forms[stage])
        self.stage_title.setText(sdef.title)
        self.stage_blurb.setText(sdef.blurb)
        self.preset_combo.clear()
        self.preset_combo.addItem("Preset\u2026", None)
        for name, (description, stages) in self._presets.items():
            if stage in stages:
                self.preset_combo.addItem(description or name, name)
                self.preset_combo.setItemData(self.preset_combo.count() - 1, name, Qt.ItemDataRole.ToolTipRole)
        self.preset_combo.setEnabled(self.preset_combo.count() > 1)
        self._update_run_controls()
        self._update_after_run()
        self._schedule_check(now=True)

    def _on_form_changed(self) -> None:
        self._update_pipeline_io()
        self._schedule_check()

    # -- presets and YAML ----------------------------------------------------------------
    def apply_preset(self, name: str) -> None:
        """Fill the selected stage's form from preset ``name``; fields filled from earlier stages
        (and the dataset) keep their values."""
        self.form.set_values(apply_preset(self.stage, self.form.values(), name))
        index = self.preset_combo.findData(name)
        if index >= 0:
            self.preset_combo.setCurrentIndex(index)
        self.run_control.set_status(f"Preset {name!r} applied to the {STAGES[self.stage].title} form.")

    def _on_preset_combo_activated(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name:
            self.apply_preset(name)

    def load_yaml(self, path: str | os.PathLike) -> bool:
        """Load a config YAML (``stage`` picks the form); problems show on the form. Returns
        whether it loaded."""
        try:
            stage, data = read_config_file(path)
        except ConfigFileError as e:
            self.form.set_banner(str(e))
            return False
        self.select_stage(stage)
        self._start_attempted.add(stage)  # a loaded config shows all its problems at once
        self.forms[stage].set_values(data)
        self.run_control.set_status(f"Loaded {Path(path).name} into the {STAGES[stage].title} form.")
        return True

    def save_yaml(self, path: str | os.PathLike) -> None:
        """Write the selected form as a config YAML (``stage`` first): ``rlhf-workbench train`` runs it."""
        write_config_file(path, self.stage, self.form.values())
        self.run_control.set_status(f"Saved the {STAGES[self.stage].title} config to {path}.")

    def _file_dialog(self, save: bool) -> QFileDialog:
        start = str(self._root) if self._root else ""
        dialog = QFileDialog(self, "Save config" if save else "Load config", start, "YAML (*.yaml *.yml)")
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave if save else QFileDialog.AcceptMode.AcceptOpen)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile if save else QFileDialog.FileMode.ExistingFile)
        if save:
            dialog.setDefaultSuffix("yaml")
            dialog.selectFile(f"{self.stage}.yaml")
        dialog.fileSelected.connect(self.save_yaml if save else self.load_yaml)
        dialog.finished.connect(dialog.deleteLater)
        self.file_dialog = dialog
        dialog.open()
        return dialog

    def _on_load_button_clicked(self) -> None:
        self._file_dialog(save=False)

    def _on_save_button_clicked(self) -> None:
        self._file_dialog(save=True)

    # -- checks and the estimate ---------------------------------------------------------
    def _schedule_check(self, now: bool = False) -> None:
        self._check_seq += 1
        if now:
            self._check_timer.stop()
            self._run_check()
        else:
            self._check_timer.start()

    def _run_check(self) -> None:
        seq, stage, values, root = self._check_seq, self.stage, self.form.values(), self._root
        bnb = self._lists.bitsandbytes_ok

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            result = check_config(stage, values, root, bitsandbytes_ok=bnb)
            est = V.estimate_config(stage, values, root)
            gpu = V.read_probe(root) if root is not None else None
            return seq, stage, result, est, gpu

        self._spawn(work, self._on_check_done)

    def _on_check_done(self, outcome) -> None:
        seq, stage, result, est, gpu = outcome
        if seq != self._check_seq or stage != self.stage:
            return  # the form changed since: a newer check is on its way
        self.last_check = result
        shown = dict(result.errors)
        if stage not in self._start_attempted:
            form = self.forms[stage]
            shown = {p: m for p, m in shown.items()
                     if not (any(m.startswith(k) or k in m for k in _EMPTY_MARKERS) and not form_value(form, p))}
        self.forms[stage].set_errors(shown)
        self._lists.gpu = gpu
        self.vram.set_estimate(est, V.check_fit(est, gpu), gpu)
        self.checked.emit(result)

    # == runs ============================================================================
    def _on_monitor_runs_changed(self, runs: list) -> None:
        self._runs = list(runs)
        key = tuple((r.run_id, r.status) for r in runs if r.status in (COMPLETED, FAILED, CANCELLED))
        if self._root is not None and key != self._lists_key:
            self._lists_key = key
            self._refresh_lists()
        self.run_control.set_queue(runs)
        self._update_pipeline()
        self._update_run_controls()
        self._update_merge_state()

    def _latest(self, stage: str, statuses: tuple[str, ...]) -> Optional[RunInfo]:
        mine = [r for r in self._runs if r.stage == stage and r.status in statuses]
        return mine[-1] if mine else None

    def _active(self, stage: str) -> Optional[RunInfo]:
        """The stage's running run, else its first queued one (what Cancel stops)."""
        running = self._latest(stage, (RUNNING,))
        if running is not None:
            return running
        queued = [r for r in self._runs if r.stage == stage and r.status == QUEUED]
        return queued[0] if queued else None

    def _update_pipeline(self) -> None:
        for stage, card in self.pipeline.cards.items():
            card.set_status(stage_status(self._runs, stage))
        self._update_pipeline_io()

    def _update_pipeline_io(self) -> None:
        for stage, card in self.pipeline.cards.items():
            sdef, form = STAGES[stage], self.forms[stage]
            # The inputs of the run whose status the card shows (a preset applied to the form
            # afterwards is the *next* run: its model beside this run's status misled); the form's
            # values while the stage has no run yet.
            run = stage_status(self._runs, stage).run
            config = self._run_config(run) if run is not None else None
            value = (lambda path, c=config: get_path(c, path, None)) if config is not None else form.value
            if stage == "ppo":
                inputs = [f"Policy: {_short(value('policy_model'))}",
                          f"Reward: {_short(value('reward_model'))}",
                          f"Prompts: {value('prompt_dataset') or _DASH}"]
            else:
                data = value(sdef.dataset_field) or _DASH
                snap = value(sdef.snapshot_field)
                inputs = [f"Model: {_short(value(sdef.model_field))}",
                          f"Data: {data}" + (f" @ {snap[:8]}" if snap else "")]
            card.set_io(inputs, self._output_line(stage))

    def _run_config(self, run: RunInfo) -> Optional[dict]:
        """A run's ``config.yaml`` (read once per run: it never changes), ``None`` if unreadable."""
        if run.run_id not in self._run_configs:
            try:  # the core's reader: bounded alias expansion and size, a regular file only
                data = RunDir(Path(run.path)).read_config()
            except (OSError, ValueError, TypeError):
                data = None
            self._run_configs[run.run_id] = data if isinstance(data, dict) else None
        return self._run_configs[run.run_id]

    def _stage_output(self, stage: str) -> Optional[RunOutput]:
        run = self._latest(stage, (COMPLETED,))
        return self._lists.outputs.get(run.run_id) if run is not None else None

    def _output_line(self, stage: str) -> str:
        out = self._stage_output(stage)
        if out is None:
            return "Output: none yet"
        if out.kind == "model":
            return f"Output: step {out.step} \u00b7 full model"
        if out.model_folder is not None:
            return f"Output: step {out.step} \u00b7 LoRA + merged model"
        if out.run_id in self._lists.exports:
            return f"Output: step {out.step} \u00b7 LoRA, exported"
        if not STAGES[stage].feeds:  # a last stage: the adapter is what Generate/Compare load
            return f"Output: step {out.step} \u00b7 LoRA adapter"
        return f"Output: step {out.step} \u00b7 LoRA adapter (merge it to feed the next stage)"

    def _update_run_controls(self) -> None:
        rc, has_ws = self.run_control, self._root is not None
        active = self._active(self.stage)
        last = self._latest(self.stage, (CANCELLED, FAILED))
        rc.start_button.setEnabled(has_ws and "starting" not in self._busy.values())
        cancelling = active is not None and self._busy.get(active.run_id) == "cancelling"
        rc.cancel_button.setEnabled(active is not None and not cancelling)
        rc.cancel_button.setText("Cancelling\u2026" if cancelling else "Cancel")
        rc.cancel_button.setToolTip(f"Stop run {active.run_id} (a checkpoint is saved at the current step)"
                                    if active else "No run of this stage is running or waiting")
        resumable = last is not None and not self._busy.get(last.run_id)
        rc.resume_button.setEnabled(resumable)
        rc.resume_button.setToolTip(f"Continue run {last.run_id} from its latest complete checkpoint"
                                    if resumable else "Resume a cancelled or failed run of this stage")
        if not has_ws:
            rc.set_status(NO_WORKSPACE)
        elif rc.status_label.text() == NO_WORKSPACE:
            rc.set_status("")

    def _host_page(self, title: str) -> Optional[QWidget]:
        """The main window's page ``title`` (switching to it), or ``None`` when standalone."""
        window = self.window()
        show = getattr(window, "show_page", None) if window is not self else None
        if show is None:
            return None
        try:
            return show(title)
        except (KeyError, ValueError, LookupError):
            return None

    # -- start, cancel, resume -------------------------------------------------------------
    def _on_start_clicked(self) -> None:
        monitor = self._monitor
        if self._root is None or monitor is None or monitor.supervisor is None:
            self.run_control.set_status("Open a workspace to train.")
            return
        stage, values, root, sup = self.stage, self.form.values(), self._root, monitor.supervisor
        bnb = self._lists.bitsandbytes_ok
        self._start_attempted.add(stage)
        self._busy["start"] = "starting"
        self._update_run_controls()
        self.run_control.set_status("Checking the config\u2026")

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            result = check_config(stage, values, root, bitsandbytes_ok=bnb)
            if not result.ok:
                return stage, result, None, []
            waiting_for = [r.run_id for r in sup.list_runs() if r.status in (RUNNING, QUEUED)]
            handle = sup.start(stage, result.config)
            return stage, result, handle.run_id, waiting_for

        self._spawn(work, self._on_start_done, on_failure=self._on_start_failed)

    def _on_start_done(self, outcome) -> None:
        stage, result, run_id, waiting_for = outcome
        self._busy.pop("start", None)
        self._update_run_controls()
        form = self.forms[stage]
        form.set_errors(result.errors)
        self.last_check = result
        if run_id is None:
            n = len(result.errors)
            self.run_control.set_status(f"Not started: {n} problem{'s' if n != 1 else ''} in the "
                                        f"{STAGES[stage].title} form (marked below the fields).")
            return
        queued = f", queued behind {len(waiting_for)} job{'s' if len(waiting_for) != 1 else ''}" \
            if waiting_for else ""
        notes = "".join(f"\nNote: {w}" for w in result.warnings)
        self.run_control.set_status(f"Started {STAGES[stage].title} run {run_id}{queued}.{notes}")
        if self._monitor is not None:
            self._monitor.refresh()
        self.run_started.emit(run_id)
        runs_page = self._host_page("Runs")
        if runs_page is not None and hasattr(runs_page, "select_run"):
            runs_page.select_run(run_id)

    def _on_start_failed(self, exc: BaseException) -> None:
        self._busy.pop("start", None)
        self._update_run_controls()
        self.run_control.set_status(f"Could not start: {exc}")

    def _on_cancel_clicked(self) -> None:
        run = self._active(self.stage)
        sup = self._monitor.supervisor if self._monitor else None
        if run is None or sup is None:
            return
        self._busy[run.run_id] = "cancelling"
        self._update_run_controls()
        self.run_control.set_status(f"Cancelling run {run.run_id} (it saves a checkpoint at its next step)\u2026")

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            return sup.cancel(run.run_id)

        self._spawn(work, self._on_cancel_done, on_failure=lambda e, r=run.run_id: self._on_action_failed(r, e))

    def _on_cancel_done(self, info: RunInfo) -> None:
        self._busy.pop(info.run_id, None)
        step = f" at step {info.last_step}" if info.last_step is not None else ""
        self.run_control.set_status(f"Run {info.run_id} {info.status}{step}"
                                    + (f": {info.error}" if info.error else "") + ".")
        if self._monitor is not None:
            self._monitor.refresh()
        self._update_run_controls()

    def _on_resume_clicked(self) -> None:
        run = self._latest(self.stage, (CANCELLED, FAILED))
        sup = self._monitor.supervisor if self._monitor else None
        if run is None or sup is None:
            return
        self._busy[run.run_id] = "resuming"
        self._update_run_controls()

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            from workbench.jobs.checkpoints import resume_checkpoint

            ckpt = resume_checkpoint(run.path)[0]  # the newest one that verifies: what the job will load
            handle = sup.resume(run.run_id)
            return handle.run_id, ckpt.name if ckpt else None

        self._spawn(work, self._on_resume_done, on_failure=lambda e, r=run.run_id: self._on_action_failed(r, e))

    def _on_resume_done(self, outcome) -> None:
        run_id, ckpt = outcome
        self._busy.pop(run_id, None)
        self.run_control.set_status(f"Resuming run {run_id} from {ckpt}." if ckpt else
                                    f"Resuming run {run_id}: no complete checkpoint, it starts over.")
        if self._monitor is not None:
            self._monitor.refresh()
        self._update_run_controls()
        runs_page = self._host_page("Runs")
        if runs_page is not None and hasattr(runs_page, "select_run"):
            runs_page.select_run(run_id)

    def _on_action_failed(self, run_id: str, exc: BaseException) -> None:
        self._busy.pop(run_id, None)
        self.run_control.set_status(f"Run {run_id}: {exc}")
        self._update_run_controls()

    # -- after the run ----------------------------------------------------------------------
    def _update_after_run(self) -> None:
        out = self._stage_output(self.stage)
        exported = self._lists.exports.get(out.run_id) if out is not None else None
        self.after_run.set_output(out, stage=self.stage, exported=str(exported) if exported else None)
        self._update_merge_state()

    def _checkpoint_model(self, out: RunOutput) -> str:
        """The folder generation and comparison load: the loadable model, else the checkpoint."""
        return str(loadable_model(out, self._lists.exports) or out.checkpoint)

    def _base_model(self, out: RunOutput) -> str:
        """The model the run started from, as its config names it (relative folders resolved)."""
        try:  # the core's reader: bounded alias expansion and size, a regular file only
            config = RunDir(self._root / "runs" / out.run_id).read_config()
        except (OSError, ValueError, TypeError):
            config = {}
        ref = (config.get("policy_model") if out.stage == "ppo" else get_path(config, "model.ref")) \
            or out.base_model or ""
        if not isinstance(ref, str):
            ref = out.base_model or ""
        if self._root is not None and ref.startswith(("./", "../")):
            ref = str((self._root / ref).resolve())
        return ref

    def _on_generate_clicked(self) -> None:
        out = self.after_run.output
        if out is None:
            return
        model = self._checkpoint_model(out)
        self.generation_requested.emit(model)
        rank = self._host_page("Rank")
        if rank is not None and hasattr(rank, "open_generation_dialog"):
            rank.open_generation_dialog(model=model)

    def _on_compare_clicked(self) -> None:
        out = self.after_run.output
        if out is None:
            return
        base, model = self._base_model(out), self._checkpoint_model(out)
        self.comparison_requested.emit(base, model)
        rank = self._host_page("Rank")
        if rank is not None and hasattr(rank, "open_comparison_dialog"):
            rank.open_comparison_dialog(base, model)

    def _on_merge_clicked(self) -> None:
        """Ask where the merged model goes (default ``models/<run>-merged``), then merge there."""
        out = self.after_run.output
        if out is None or self._root is None:
            return
        from workbench.train.merge import default_output

        dialog = QFileDialog(self, "Save the merged model as a folder",
                             str(default_output(Path(out.checkpoint), self._root)))
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setFileMode(QFileDialog.FileMode.AnyFile)
        dialog.setLabelText(QFileDialog.DialogLabel.Accept, "Merge here")
        dialog.setOption(QFileDialog.Option.DontConfirmOverwrite)  # asked once, in our words (below)
        dialog.fileSelected.connect(lambda path, o=out: self._on_merge_target_selected(o, Path(path)))
        dialog.finished.connect(lambda _r: setattr(self, "merge_dialog", None))
        self.merge_dialog = dialog
        dialog.open()  # window-modal, not a nested event loop

    def _on_merge_target_selected(self, out: RunOutput, output: Path) -> None:
        """Merge into ``output``; if something is there already (an earlier merge), ask first
        whether to replace it, and only then let the job overwrite it."""
        try:
            taken = output.is_dir() and any(output.iterdir()) or output.is_file() and output.stat().st_size > 0
        except OSError:
            taken = True   # unreadable: the core will say why; do not replace it unasked
        if not taken:
            self._start_merge(out, output, overwrite=False)
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Replace the earlier merged model?",
                          f"{output} already exists (an earlier merge or export?).",
                          QMessageBox.StandardButton.NoButton, self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # shows a user path: never markup
        box.setInformativeText("Replace deletes what is there now and puts this merge in its place (only a "
                               "folder this app exported is ever replaced). Keep it to leave it as it is; "
                               "you can merge into another folder.")
        replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep it", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def on_finished(_result: int) -> None:
            self.replace_box = None
            if box.clickedButton() is replace:
                self._start_merge(out, output, overwrite=True)
            else:
                self.after_run.set_merge_state(False, f"Kept {output}; nothing was merged")

        box.finished.connect(on_finished)
        self.replace_box = box
        box.open()  # window-modal, not a nested event loop

    def _start_merge(self, out: RunOutput, output: Path, *, overwrite: bool) -> None:
        sup = self._monitor.supervisor if self._monitor else None
        if sup is None or self._root is None:
            return
        source = out.checkpoint
        try:  # inside the workspace: relative, so the config stays valid if the workspace moves
            output_ref = output.resolve().relative_to(self._root.resolve()).as_posix()
        except ValueError:
            output_ref = str(output)
        self.after_run.set_merge_state(True, "Starting the merge job\u2026")

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            # The merge runs on the CPU: it does not wait behind a training job for the GPU.
            # overwrite only once the user said Replace; even then the core replaces nothing but a
            # previous export of ours.
            return sup.start("merge", {"source": str(source), "output": output_ref, "overwrite": overwrite},
                             queue=False).run_id

        self._spawn(work, self._on_merge_started,
                    on_failure=lambda e: self.after_run.set_merge_state(False, f"Could not start the merge: {e}"))

    def _on_merge_started(self, run_id: str) -> None:
        self._merge_run = run_id
        self._merge_tailer = EventTailer(self._root / "runs" / run_id / "events.jsonl")
        self._merge_log = "merge job started"
        if self._monitor is not None:
            self._monitor.refresh()
        self._update_merge_state()

    def _update_merge_state(self) -> None:
        if self._merge_run is None:
            return
        info = next((r for r in self._runs if r.run_id == self._merge_run), None)
        if self._merge_tailer is not None:
            for event in self._merge_tailer.read():
                if isinstance(event, LogEvent):
                    self._merge_log = event.message
        if info is None or info.status in (QUEUED, RUNNING) or info.alive:
            self.after_run.set_merge_state(True, f"Merging: {self._merge_log}")
            return
        if info.status == COMPLETED:
            out = self._lists.outputs.get(info.run_id)
            where = str(out.model_folder) if out is not None and out.model_folder else self._merge_log
            self.after_run.set_merge_state(False, f"Exported: {where}")
        else:
            self.after_run.set_merge_state(False, f"Merge {info.status}: {info.error or ''}")

    # -- GPU probe ----------------------------------------------------------------------------
    def _on_vram_detect_requested(self) -> None:
        if self._monitor is None or self._monitor.supervisor is None:
            return
        from ..gpu_probe import GpuProbe

        probe = getattr(self, "_probe", None)
        if probe is None:
            probe = self._probe = GpuProbe(self)
            probe.finished.connect(lambda info: (self.vram.set_detecting(False), self._schedule_check(now=True)))
            probe.failed.connect(lambda message: (self.vram.set_detecting(False),
                                                  self.run_control.set_status(f"GPU probe failed: {message}")))
        self.vram.set_detecting(True)
        probe.start(self._root)

    # == workspace lists ====================================================================
    def _refresh_lists(self) -> None:
        root, runs = self._root, list(self._runs)

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            return root, read_lists(root, runs)

        self._spawn(work, self._on_lists_read)

    def _on_lists_read(self, outcome) -> None:
        root, lists = outcome
        if root != self._root:
            return
        self._lists = lists
        models = self._model_choices()
        for form in self.forms.values():
            form.set_workspace_lists(self._root, lists.datasets, lists.snapshots, models)
        self._restore_last_configs()
        self._prefill()
        self._update_pipeline()
        self._update_after_run()
        self._schedule_check()

    def _model_choices(self) -> list[tuple[str, str]]:
        choices: list[tuple[str, str]] = []
        for stage in ORDER:
            for run_id, out in self._lists.outputs.items():
                if out.stage != stage:
                    continue
                folder = loadable_model(out, self._lists.exports)
                if folder is not None:
                    choices.append((f"{STAGES[stage].title} run {run_id} (step {out.step})",
                                    self._relative(folder)))
        choices += [(f"models/{name}", f"./models/{name}") for name in self._lists.models]
        choices += [(hub, hub) for hub in HUB_MODELS]
        return choices

    def _relative(self, folder: Path) -> str:
        if self._root is not None:
            try:
                return "./" + Path(folder).resolve().relative_to(self._root.resolve()).as_posix()
            except ValueError:
                pass
        return str(folder)

    def _restore_last_configs(self) -> None:
        """Once per workspace: a form nobody has edited yet shows its stage's latest run config
        (where the user left off), with the pipeline-fed model fields still open to newer outputs."""
        for stage, config in self._lists.last_configs.items():
            form = self.forms[stage]
            if stage in self._restored or form.values() != defaults(stage):
                continue
            self._restored.add(stage)
            form.set_values(restorable_config(config, stage))
            for path in STAGES[stage].inputs:
                value = form.value(path)
                if value:
                    self._autofilled[(stage, path)] = value

    def _prefill(self) -> None:
        """Feed each stage's latest loadable output into the later stages' model fields, unless
        the user typed something else there."""
        for stage in ORDER:
            feeds = STAGES[stage].feeds
            if not feeds:
                continue
            folder = loadable_model(self._stage_output(stage), self._lists.exports)
            if folder is None:
                continue
            ref = self._relative(folder)
            for target, path in feeds.items():
                form, key = self.forms[target], (target, path)
                current = form.value(path)
                if not current or current == self._autofilled.get(key):
                    self._autofilled[key] = ref
                    if current != ref:
                        form.set_value(path, ref)

    # == helpers ============================================================================
    def _spawn(self, fn, on_success, on_failure=None) -> Task:
        task = run_in_thread(fn, parent=self, on_success=on_success,
                             on_failure=on_failure or (lambda e: self.run_control.set_status(f"Error: {e}")))
        self._tasks.add(task)
        task.done.connect(lambda t=task: self._tasks.discard(t))
        return task


NO_WORKSPACE = "Open a workspace to train."


# -- module helpers ---------------------------------------------------------------------------
def _short(ref: Optional[str]) -> str:
    if not ref:
        return "\u2014"
    return f"run {model_name(ref)}" if "/checkpoints/" in str(ref) else str(ref)  # a folder or hub id as typed


def form_value(form: ConfigFormView, path: str) -> Any:
    """A form's value at ``path``, or ``None`` for paths without a widget."""
    return form.value(path) if path in form.paths else None
