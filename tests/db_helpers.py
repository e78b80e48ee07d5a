"""Emptying the test database between tests and modules."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, text

from bingeo.db.models import Base

# Migration 0015: the audit trail refuses TRUNCATE, from its owner too; tests lift that guard
# for their own statement only, in its transaction.
AUDIT_GUARD = "audit_log_no_truncate"


def empty_tables(engine: Engine, tables: Iterable[str] | None = None) -> None:
    """``TRUNCATE ... RESTART IDENTITY CASCADE`` of ``tables`` (default: all), as the owner."""
    names = ", ".join(tables or (t.name for t in Base.metadata.sorted_tables))
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE audit_log DISABLE TRIGGER {AUDIT_GUARD}"))
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        connection.execute(text(f"ALTER TABLE audit_log ENABLE TRIGGER {AUDIT_GUARD}"))
