"""The offline model's lab: the synthetic world it learns from, its training recipe and its measurement.

Only the CLI's `train` and `evaluate` commands import it; the app never does."""
