"""Storage: SQLAlchemy 2 + GeoAlchemy2 models, repositories, migrations and the embedded cluster."""
