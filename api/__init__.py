"""bingeo's HTTP API (FastAPI): routes call bingeo.services, never the database directly."""

from api.app import create_app

__all__ = ["create_app"]
