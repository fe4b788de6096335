"""Domain logic: ingest, projects, users, labels, agreement, export (and later sampling, Label Studio).

Functions take the session as their first argument and never commit: the caller owns the transaction.
"""
