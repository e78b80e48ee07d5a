"""Alembic migrations of the bingeo schema."""
