"""The worker: LoRA training, evaluation and pool scoring, served by the shared job runner (db/runner.py)."""
