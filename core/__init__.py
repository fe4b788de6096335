"""The pure rules both sides obey: label scheme, metrics, calibration, weights, languages, the study protocol.

Nothing here imports the database, a model library, the web app or another project package (import-linter)."""
