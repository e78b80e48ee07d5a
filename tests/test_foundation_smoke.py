from __future__ import annotations

from bingeo.services.imports import import_areas
from bingeo.services.status import database_status


def test_gent_sectors_import(db, real_data):
    summary = import_areas(db, real_data / "gent" / "gent_statistical_sectors.geojson", "sector")
    assert summary.stored == 254
    assert len(summary.repaired) == 4
    assert database_status(db)["reference_areas"] == {"sector": 254}
