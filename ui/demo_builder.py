"""Build the demo workspace in a child process, with progress and cancel.

The demo seed (:func:`workbench.train.demo.build_demo`) imports torch and
trains a tiny model, so it never runs in the GUI process: :class:`DemoBuilder`
starts ``python -m workbench.cli demo --build-only --progress-jsonl`` in its
own session (process group) and parses its JSON lines. Cancel sends SIGTERM
to that group: the builder stops its SFT job (which runs in a session of
its own) and deletes the half-built folder itself. If it has not exited
after ``kill_after_ms`` it gets SIGKILL, and the GUI does the same clean-up
with :func:`workbench.cli.discard_partial_demo` on a worker thread. Either
way no half-built demo is left for the next attempt to trip over (and the
builder also removes one left by a crash before it starts).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from workbench.cli import discard_partial_demo

from .common.worker import Task, run_in_thread

_JOB_ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
_STDERR_KEEP = 8000


def demo_command(target: Path, *, quick: bool = False) -> list[str]:
    """The child's command line: the jobs' interpreter (``$RLHF_WORKBENCH_PYTHON``, as
    :class:`workbench.jobs.supervisor.Supervisor` uses, else this one) first."""
    python = os.environ.get("RLHF_WORKBENCH_PYTHON") or sys.executable
    return [python, "-m", "workbench.cli", "demo", "--build-only", "--progress-jsonl",
            "--workspace", str(target)] + (["--quick"] if quick else [])


class DemoBuilder(QObject):
    """One demo build in a child process.

    Emits ``progressed(fraction, message)`` per progress line, then exactly
    one of ``succeeded(result)`` (the CLI's result dict), ``failed(message)``
    or ``cancelled()``. Clean-up after a cancel or failure runs before the
    final signal, so a handler may start a new build at once.
    """

    progressed = Signal(float, str)
    succeeded = Signal(dict)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, target: Path, *, quick: bool = False, kill_after_ms: int = 15000,
                 parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.target = Path(target).absolute()
        self.quick = quick
        self.fraction = 0.0
        self.message = ""
        self.result: Optional[dict] = None
        self._stdout = b""
        self._stderr = b""
        self._cancel_requested = False
        self._cleanup: Optional[Task] = None
        self._process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        for key, value in _JOB_ENV.items():
            if not env.contains(key):
                env.insert(key, value)
        # The child imports this checkout's packages whatever its working directory.
        pkg_root = str(Path(__file__).resolve().parents[1])
        env.insert("PYTHONPATH", os.pathsep.join(p for p in (pkg_root, env.value("PYTHONPATH")) if p))
        self._process.setProcessEnvironment(env)
        if hasattr(os, "killpg"):
            # Its own process group, so a cancel reaches everything it started in that group.
            self._process.setUnixProcessParameters(QProcess.UnixProcessFlag.CreateNewSession)
        self._process.readyReadStandardOutput.connect(self._on_process_ready_read_standard_output)
        self._process.readyReadStandardError.connect(self._on_process_ready_read_standard_error)
        self._process.finished.connect(self._on_process_finished)
        self._process.errorOccurred.connect(self._on_process_error_occurred)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.setInterval(kill_after_ms)
        self._kill_timer.timeout.connect(self._on_kill_timer_timeout)

    @property
    def running(self) -> bool:
        """True from :meth:`start` until the final signal (clean-up included)."""
        return (self._process.state() != QProcess.ProcessState.NotRunning
                or (self._cleanup is not None and self._cleanup.running))

    @property
    def pid(self) -> Optional[int]:
        pid = self._process.processId()
        return int(pid) if pid else None

    @property
    def stderr_text(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def start(self) -> None:
        command = demo_command(self.target, quick=self.quick)
        self._process.start(command[0], command[1:])

    def cancel(self) -> None:
        """Stop the build: SIGTERM to its process group now, SIGKILL after ``kill_after_ms``."""
        if self._cancel_requested or self._process.state() == QProcess.ProcessState.NotRunning:
            return
        self._cancel_requested = True
        self._signal(signal.SIGTERM if hasattr(signal, "SIGTERM") else None)
        self._kill_timer.start()

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until the child has exited (shutdown and tests only)."""
        return self._process.waitForFinished(timeout_ms)

    # -- internals ----------------------------------------------------------------------
    def _signal(self, sig) -> None:
        pid = self.pid
        if pid is None:
            return
        if sig is None or not hasattr(os, "killpg"):
            self._process.kill()
            return
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass

    def _parse_line(self, raw: bytes) -> None:
        try:
            item = json.loads(raw)
        except ValueError:
            return  # a stray library print on stdout: not ours to interpret
        if not isinstance(item, dict):
            return
        if item.get("event") == "progress":
            self.fraction = max(0.0, min(1.0, float(item.get("fraction") or 0.0)))
            self.message = str(item.get("message") or "")
            self.progressed.emit(self.fraction, self.message)
        elif item.get("event") == "result" and isinstance(item.get("result"), dict):
            self.result = item["result"]

    def _error_message(self, exit_code: int) -> str:
        lines = [ln.strip() for ln in self.stderr_text.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error:")]
        if errors:
            return errors[-1][len("error:"):].strip()
        tail = lines[-1] if lines else "no output"
        return f"the demo builder exited with status {exit_code}: {tail}"

    def _finish_after_cleanup(self, emit) -> None:
        target = self.target

        def work(progress, cancel):  # noqa: ARG001 - worker signature
            return discard_partial_demo(target)

        task = run_in_thread(work, parent=self)
        task.done.connect(emit)
        task.done.connect(task.deleteLater)
        self._cleanup = task

    # -- slots --------------------------------------------------------------------------
    @Slot()
    def _on_process_ready_read_standard_output(self) -> None:
        self._stdout += bytes(self._process.readAllStandardOutput())
        *lines, self._stdout = self._stdout.split(b"\n")
        for raw in lines:
            if raw.strip():
                self._parse_line(raw)

    @Slot()
    def _on_process_ready_read_standard_error(self) -> None:
        self._stderr = (self._stderr + bytes(self._process.readAllStandardError()))[-_STDERR_KEEP:]

    @Slot(int, QProcess.ExitStatus)
    def _on_process_finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:  # noqa: ARG002
        self._kill_timer.stop()
        self._on_process_ready_read_standard_output()
        if self._stdout.strip():
            self._parse_line(self._stdout)
            self._stdout = b""
        if self._cancel_requested:
            self._finish_after_cleanup(self.cancelled.emit)
        elif exit_code == 0 and self.result is not None:
            self.succeeded.emit(self.result)
        else:
            message = self._error_message(exit_code)
            self._finish_after_cleanup(lambda: self.failed.emit(message))

    @Slot(QProcess.ProcessError)
    def _on_process_error_occurred(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.failed.emit(f"could not start the demo builder ({self._process.program()}): "
                             f"{self._process.errorString()}")

    @Slot()
    def _on_kill_timer_timeout(self) -> None:
        self._signal(signal.SIGKILL if hasattr(signal, "SIGKILL") else None)


class DemoBuildDialog(QDialog):
    """Progress of a demo build with a Cancel button.

    Accepted when the demo is built (``target`` then holds it), rejected
    once a cancel has been carried out (the folder removed); on failure it
    stays open showing why, with Close. Closing it (Esc, the title bar)
    while building means Cancel.
    """

    def __init__(self, target: Path, *, quick: bool = False, parent: Optional[QWidget] = None,
                 kill_after_ms: int = 15000) -> None:
        super().__init__(parent)
        self.setWindowTitle("Building the Demo Workspace")
        self.setMinimumWidth(520)
        self.target = Path(target)
        self.error: Optional[str] = None

        intro = QLabel("Training a tiny model on demonstrations and ranking its responses with a "
                       "scripted annotator, in a background process. This takes about a minute "
                       "(once: the demo workspace is kept for next time).")
        intro.setWordWrap(True)
        where = QLabel(f"Folder: {self.target}")
        where.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        where.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        where.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("%p%")
        self.message_label = QLabel("Starting\u2026")
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)  # shows user data: never markup
        self.message_label.setObjectName("demoProgressMessage")
        self.message_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button: QPushButton = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self._on_buttons_rejected)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 18, 20, 14)
        layout.setSpacing(10)
        layout.addWidget(intro)
        layout.addWidget(where)
        layout.addSpacing(4)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.message_label)
        layout.addSpacing(4)
        layout.addWidget(self.buttons)

        self.builder = DemoBuilder(self.target, quick=quick, kill_after_ms=kill_after_ms, parent=self)
        self.builder.progressed.connect(self._on_builder_progressed)
        self.builder.succeeded.connect(self._on_builder_succeeded)
        self.builder.failed.connect(self._on_builder_failed)
        self.builder.cancelled.connect(self._on_builder_cancelled)

    def start(self) -> None:
        """Show the dialog (window-modal, non-blocking) and start building."""
        self.open()
        self.builder.start()

    def reject(self) -> None:  # noqa: D401 - Esc and the title bar's close come here
        if self.builder.running:
            self._on_buttons_rejected()
        else:
            super().reject()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.builder.running:
            event.ignore()
            self._on_buttons_rejected()
        else:
            super().closeEvent(event)

    # -- slots --------------------------------------------------------------------------
    @Slot()
    def _on_buttons_rejected(self) -> None:
        if self.builder.running:
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling\u2026")
            self.message_label.setText("Stopping the build and removing what it made\u2026")
            self.builder.cancel()
        else:
            super().reject()

    @Slot(float, str)
    def _on_builder_progressed(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(round(fraction * 1000)))
        self.message_label.setText(message[:1].upper() + message[1:])

    @Slot(dict)
    def _on_builder_succeeded(self, result: dict) -> None:  # noqa: ARG002
        self.progress_bar.setValue(1000)
        self.accept()

    @Slot(str)
    def _on_builder_failed(self, message: str) -> None:
        self.error = message
        self.message_label.setText(f"The demo could not be built: {message}")
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Close")

    @Slot()
    def _on_builder_cancelled(self) -> None:
        super().reject()
