"""The one settings class of bingeo (environment prefix ``BINGEO_``)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    # As root the server runs as an unprivileged user that cannot enter /root.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/bingeo")
    return Path(platformdirs.user_data_dir("bingeo"))


class Settings(BaseSettings):
    """Configuration, read from ``BINGEO_*`` environment variables; build it once and pass it in."""

    model_config = SettingsConfigDict(env_prefix="BINGEO_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="A PostGIS server to use instead of the embedded cluster."
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_name: str = "bingeo"
    pg_bindir: Path | None = Field(
        default=None, description="Folder of initdb/pg_ctl; found automatically when unset."
    )
    server_user: str = Field(
        default="postgres", description="Unprivileged user that runs the embedded server as root."
    )
    real_data_dir: Path = Path("../shared/data/real")
    out_dir: Path = Path("out")
    page_limit_default: int = 100
    page_limit_max: int = 1000
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="Largest request body.")
    max_vertices: int = Field(default=20_000, description="Most vertices of a geometry given.")
    max_area_m2: float = Field(default=500e6, description="Largest area of a geometry given.")
    max_self_intersections: int = Field(
        default=50, ge=0, description="Most self-crossings of a geometry given (repaired)."
    )
    max_edge_pairs: int = Field(
        default=500_000, ge=1, description="Most edge pairs side by side checked in a geometry."
    )
    max_repair_parts: int = Field(
        default=50, ge=0, description="Most parts a repair may add to a geometry given."
    )
    dormant_months: int = Field(
        default=12, ge=1, description="Months without message or member change: dormant."
    )
    tiles: str | None = Field(
        default="OpenStreetMap", description="Base-map tiles for maps; empty for none."
    )
    # Alerts: delivery by SMTP and an SMS/voice HTTP gateway, and the dispatcher (issue 7).
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "bingeo@localhost"
    smtp_timeout_s: float = 30.0
    sms_gateway_url: str | None = Field(default=None, description="POST endpoint of SMS/voice.")
    sms_gateway_key: str | None = None
    sms_cost_eur: float = Field(default=0.08, description="Price of one SMS segment.")
    voice_cost_eur: float = Field(default=0.25, description="Price of one voice call.")
    dispatch_batch: int = 20
    dispatch_lease_s: float = Field(
        default=300.0, description="After this, a delivery stuck in 'sending' is tried again."
    )
    dispatch_poll_s: float = 2.0
    dispatch_max_attempts: int = 6
    dispatch_backoff_s: float = 30.0
    dispatch_in_serve: bool = Field(
        default=False, description="Run the alert dispatcher inside 'bingeo serve'."
    )
    assets_url: str = Field(
        default="/static/vendor", description="Where maps load their vendored JS/CSS from."
    )
    min_overlap_m2: float = Field(
        default=1.0, description="Smaller overlaps of two networks count as touching."
    )
    gap_max_covered_share: float = Field(
        default=0.1, description="Areas with at most this share covered count as uncovered."
    )
    gap_adjacency_m: float = Field(
        default=1.0, description="Uncovered areas this close are merged into one candidate zone."
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins per user name in the window before a 429."
    )
    login_max_failures_per_client: int = Field(
        default=20, ge=1, description="Failed logins per client address in the window before a 429."
    )
    login_window_s: float = Field(
        default=900.0, gt=0, description="Window of the login rate limit (seconds)."
    )

    @property
    def embedded(self) -> bool:
        """True when bingeo runs its own cluster (no ``BINGEO_DATABASE_URL``)."""
        return not self.database_url

    def geometry_limits(self):
        """The bounds on geometries given by users."""
        from bingeo.geometry import GeometryLimits

        return GeometryLimits(
            max_vertices=self.max_vertices,
            max_area_m2=self.max_area_m2,
            max_self_intersections=self.max_self_intersections,
            max_edge_pairs=self.max_edge_pairs,
            max_repair_parts=self.max_repair_parts,
        )
