"""Data versions: the number each table's data has now (set by triggers, migration 0012)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.selectable import ScalarSelect

from bingeo.db.models import DataVersion

VERSIONS = DataVersion.__table__


def versions_of(*tables: str) -> ScalarSelect:
    """The versions of ``tables`` as one array ('table:version' texts): a value that changes
    with every statement that writes one of them, visible when the change is (read models)."""
    label = func.concat_ws(":", VERSIONS.c.table_name, VERSIONS.c.version)
    return (
        select(func.array_agg(aggregate_order_by(label, VERSIONS.c.table_name)))
        .where(VERSIONS.c.table_name.in_(tables))
        .scalar_subquery()
    )
