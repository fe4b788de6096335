"""Domain logic, for the web app and the CLI, one sub-package per concern (README, "Layout"): accounts,
sampling, retraining, annotation, corpus, reports, experiments, demo and labelstudio, plus the web side's
job loop (jobloop.py). A sub-package imports only those below it in that order (import-linter).

Functions take the session as their first argument and never commit: the caller owns the transaction.
"""
