"""bingeo: geospatial planning and alerting for Belgian neighbourhood information networks."""

from __future__ import annotations

__version__ = "0.1.0"
