"""Domain logic, for the web app and the CLI: ingest, export, projects, users, access, annotation, flags,
adjudication, agreement, sampling, the fast model, the web side's jobs and Label Studio.

Functions take the session as their first argument and never commit: the caller owns the transaction.
"""
