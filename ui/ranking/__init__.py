"""The Rank page: side-by-side comparison with keyboard-first decisions (see :mod:`ui.ranking.panel`)."""
