"""Alembic revisions for the lingualoop schema (SQLite uses batch mode)."""
