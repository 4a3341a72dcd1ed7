"""The main window's status bar: workspace path, job queue, GPU.

:class:`StatusBarView` only displays; the main window feeds it: the
workspace on open/close, ``JobMonitor.runs_changed`` for the queue, and the
:class:`ui.gpu_probe.GpuProbe` result for the GPU. The formatting functions
are plain so they can be tested without widgets.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QStatusBar, QToolButton, QWidget

if TYPE_CHECKING:  # the supervisor module is not imported before the first paint
    from workbench.jobs.supervisor import RunInfo

#: ``workbench.jobs.supervisor.RUNNING`` / ``QUEUED`` (checked by tests/ui/test_status_bar.py).
RUNNING, QUEUED = "running", "queued"
_GIB = 1024 ** 3
_DOT = " \u00b7 "


def queue_text(runs: Iterable["RunInfo"]) -> str:
    """``"1 running · 2 queued"``, ``"1 running"``, ``"2 queued"`` or ``"No jobs"``."""
    runs = list(runs)
    running = sum(r.status == RUNNING for r in runs)
    queued = sum(r.status == QUEUED for r in runs)
    parts = ([f"{running} running"] if running else []) + ([f"{queued} queued"] if queued else [])
    return _DOT.join(parts) if parts else "No jobs"


def queue_tooltip(runs: Iterable["RunInfo"]) -> str:
    lines = []
    for r in runs:
        if r.status in (RUNNING, QUEUED):
            step = f", step {r.last_step}" if r.last_step is not None else ""
            lines.append(f"{r.stage} \u2014 {r.run_id} ({r.status}{step})")
    return "\n".join(lines + ["Click to open the Runs page"]) if lines else "No job is running or queued"


def gpu_text(info: dict[str, Any]) -> str:
    """``"NVIDIA H200 · 139.1 GiB free"`` (first CUDA device), or ``"No GPU (CPU)"``."""
    name = info.get("gpu_name")
    if not name:
        return "Apple GPU (MPS)" if info.get("mps_available") else "No GPU (CPU)"
    text = str(name)
    free = info.get("free_memory")
    if isinstance(free, (int, float)):
        text += f"{_DOT}{free / _GIB:.1f} GiB free"
    count = int(info.get("device_count") or 1)
    if count > 1:
        text += f" (+{count - 1} more)"
    return text


def gpu_tooltip(info: dict[str, Any]) -> str:
    lines = [f"torch {info.get('torch', '?')}" + (f", CUDA {info['cuda_version']}" if info.get("cuda_version") else "")]
    for dev in info.get("devices") or []:
        lines.append(f"GPU {dev['index']}: {dev['name']}, {dev['free_memory'] / _GIB:.1f} of "
                     f"{dev['total_memory'] / _GIB:.1f} GiB free, compute {dev.get('capability', '?')}, "
                     f"bf16 {'yes' if dev.get('bf16_supported') else 'no'}")
    if not info.get("devices"):
        lines.append("No CUDA GPU: training runs on the CPU (slow beyond tiny models).")
    bnb = info.get("bitsandbytes") or {}
    if bnb:
        lines.append(f"bitsandbytes {bnb.get('version')}" if bnb.get("importable")
                     else f"bitsandbytes not usable: {bnb.get('error')}")
    if info.get("run_id"):
        lines.append(f"Probed by run {info['run_id']}")
    return "\n".join(lines)


class StatusBarView(QStatusBar):
    """Workspace path (left, stretching), then the job queue button and the GPU label."""

    jobs_clicked = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        # Permanent widgets rather than showMessage(): transient messages are
        # wiped whenever a menu item shows its status tip.
        self.workspace_label = QLabel()
        self.workspace_label.setObjectName("workspaceLabel")
        self.addWidget(self.workspace_label, 1)

        self.jobs_button = QToolButton()
        self.jobs_button.setObjectName("jobsButton")
        self.jobs_button.setAutoRaise(True)
        self.jobs_button.clicked.connect(self.jobs_clicked)
        self.addPermanentWidget(self.jobs_button)

        self.gpu_label = QLabel()
        self.gpu_label.setObjectName("gpuLabel")
        self.addPermanentWidget(self.gpu_label)

        self.set_workspace(None)
        self.set_runs([])

    def finish_setup(self) -> None:
        """Details that need PySide's ``Qt`` namespace (~20 ms to set up): the main
        window calls this right after its first paint."""
        from PySide6.QtCore import Qt

        self.workspace_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.workspace_label.setTextFormat(Qt.TextFormat.PlainText)  # a folder name is data, never markup
        self.jobs_button.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_workspace(self, path: Optional[Path]) -> None:
        if path is None:
            self.workspace_label.setText("No workspace open")
            self.workspace_label.setToolTip("")
            self.jobs_button.setVisible(False)
            self.gpu_label.setVisible(False)
            self.gpu_label.clear()
            return
        self.workspace_label.setText(f"Workspace: {path}")
        self.workspace_label.setToolTip(str(path))
        self.jobs_button.setVisible(True)
        self.gpu_label.setVisible(True)
        self.gpu_label.setText("GPU: not probed yet")
        self.gpu_label.setToolTip("The GPU is probed in a child process a few seconds after opening.")

    def set_runs(self, runs: list["RunInfo"]) -> None:
        """Show the queue of ``runs`` (connected to ``JobMonitor.runs_changed``)."""
        self.jobs_button.setText(queue_text(runs))
        self.jobs_button.setToolTip(queue_tooltip(runs))

    def show_gpu_probing(self) -> None:
        self.gpu_label.setText("GPU: probing\u2026")

    def show_gpu(self, info: dict[str, Any]) -> None:
        self.gpu_label.setText(gpu_text(info))
        self.gpu_label.setToolTip(gpu_tooltip(info))

    def show_gpu_error(self, message: str) -> None:
        self.gpu_label.setText("GPU: unknown")
        self.gpu_label.setToolTip(f"The GPU probe failed: {message}")
