"""The model worker: trains LoRA and encoder versions, evaluates, publishes and scores pools and archives, served
by the shared job runner (db/runner.py)."""
