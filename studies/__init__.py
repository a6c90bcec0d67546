"""Scripts that regenerate the figures in ``figures/`` (one script per figure; see ``run_all.py``)."""
