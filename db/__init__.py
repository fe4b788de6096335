"""Database layer: typed models, engine and sessions, migrations and the job queue.

The database is the only contract between the web side (app, annotator) and the worker (trainer).
"""
