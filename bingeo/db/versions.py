"""Data versions: the number each table's data has now (set by triggers, migration 0012)."""

from __future__ import annotations

from sqlalchemy import func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.selectable import ScalarSelect

from bingeo.db.models import DataVersion

VERSIONS = DataVersion.__table__


def versions_of(*tables: str) -> ScalarSelect:
    """The versions of ``tables`` as one array ('table:version' texts): a value that changes
    with every statement that writes one of them, visible when the change is (read models)."""
    # The names written into the statement (they are constants): a list of bound values in an
    # IN would be rendered again at every execution.
    if not all(name.isidentifier() for name in tables):
        raise ValueError(f"not table names: {tables}")
    names = [literal_column(f"'{name}'") for name in tables]
    label = func.concat_ws(literal_column("':'"), VERSIONS.c.table_name, VERSIONS.c.version)
    return (
        select(func.array_agg(aggregate_order_by(label, VERSIONS.c.table_name)))
        .where(VERSIONS.c.table_name.in_(names))
        .scalar_subquery()
    )
