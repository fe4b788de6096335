"""The worker: job loop, model backends, training, evaluation and pool scoring (issue 3)."""
