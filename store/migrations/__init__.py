"""Alembic migrations for the job ledger, applied with ``store.db.upgrade``."""
