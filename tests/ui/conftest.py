"""UI test set-up: run Qt without a display unless the caller chose a platform."""

import os

# Set before pytest-qt creates the QApplication; `make test` sets it too, but a
# bare `pytest tests/ui` on a desktop should not flash windows.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
