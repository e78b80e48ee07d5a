"""The one settings class of bingeo (environment prefix ``BINGEO_``)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
    database_owner_url: str | None = Field(
        default=None,
        description="Role owning the schema (migrations, imports); BINGEO_DATABASE_URL if unset.",
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
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Scheme, host and port (and path) clients reach the API at: links in answers.",
    )
    page_limit_default: int = 100
    page_limit_max: int = 1000
    max_body_bytes: int = Field(default=5 * 1024 * 1024, description="Largest request body.")
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A request's headers must arrive within this (408)."
    )
    body_timeout_s: float = Field(
        default=60.0, gt=0, description="A request's body must arrive within this (408)."
    )
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
        default=1.0,
        description="Overlap listings: two networks sharing less, and no address, only touch "
        "(previews, sends and planning reports use the same rule at 1 m²).",
    )
    gap_max_covered_share: float = Field(
        default=0.1, description="Areas with at most this share covered count as uncovered."
    )
    gap_adjacency_m: float = Field(
        default=1.0, description="Areas this close are neighbours: candidate zones may join them."
    )
    gap_min_addresses: int = Field(
        default=150, ge=1, description="Candidate zones smaller than this are merged if they can."
    )
    gap_max_addresses: int = Field(
        default=1500, ge=2, description="Candidate zones hold at most this many addresses."
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins for a name from a client before its back-off."
    )
    login_max_failures_per_client: int = Field(
        default=20, ge=1, description="Failed logins from a client (any name) before its back-off."
    )
    login_backoff_s: float = Field(
        default=1.0, gt=0, description="First wait of a failing client, doubled per failure."
    )
    login_backoff_max_s: float = Field(
        default=300.0, gt=0, description="Longest wait of a failing client (seconds)."
    )
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For is believed.",
    )
    login_window_s: float = Field(
        default=900.0, gt=0, description="Failed logins older than this are forgotten (s)."
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else value
        networks = []
        for item in items or ():  # type: ignore[union-attr]
            if str(item).strip():
                # Checked here, so that a typo stops the server instead of trusting nobody.
                networks.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
        return tuple(networks)

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
