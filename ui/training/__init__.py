"""The training pages: Train (:mod:`.panel`: pipeline, config forms, VRAM estimate, run control)
and Runs (:mod:`.runs`: run history, live plots, health warnings, samples, logs)."""
