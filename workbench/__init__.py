"""RLHF Workbench core: workspace storage, datasets, training and jobs.

This package never imports Qt (checked by an import-linter contract in the
test suite); the ``ui`` package is a view over it.
"""

__version__ = "0.1.0"
