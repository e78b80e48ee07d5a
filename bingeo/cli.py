"""The ``bingeo`` command line (Typer); every command calls ``bingeo.services``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bingeo.db.cluster import Cluster
from bingeo.db.models import AreaLevel
from bingeo.errors import BinGeoError
from bingeo.settings import Settings

app = typer.Typer(help="bingeo: BIN / BIN-Z networks on the map, in PostGIS.", no_args_is_help=True)
db_app = typer.Typer(help="The database: embedded cluster and migrations.", no_args_is_help=True)
import_app = typer.Typer(
    help="Import Belgian reference data, addresses and networks.", no_args_is_help=True
)
users_app = typer.Typer(help="Users and their roles and scopes.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (bearer) of users.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
networks_app = typer.Typer(help="Networks: areas from street lists.", no_args_is_help=True)
app.add_typer(networks_app, name="networks")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

LEVEL_COMMANDS = {
    "sectors": AreaLevel.sector,
    "wijken": AreaLevel.wijk,
    "deelgemeenten": AreaLevel.deelgemeente,
    "municipalities": AreaLevel.municipality,
    "police-zones": AreaLevel.police_zone,
}


def main() -> None:
    """Entry point: run the CLI, turning bingeo errors into one clear line and exit code 1."""
    try:
        code = app(standalone_mode=False)
    except BinGeoError as exc:
        typer.echo(f"error [{exc.code}]: {exc.detail}", err=True)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:
        # Usage errors of click (which typer may vendor): shown with their own exit code.
        exit_code = getattr(exc, "exit_code", None)
        if callable(getattr(exc, "show", None)) and isinstance(exit_code, int):
            exc.show()
            sys.exit(exit_code)
        raise
    # Without standalone mode click returns the code of typer.Exit instead of exiting.
    sys.exit(code if isinstance(code, int) else 0)


def _settings() -> Settings:
    return Settings()


def _engine(settings: Settings, *, owner: bool = True):
    """The engine of a command: as the schema's owner (an operator's command: migrations,
    imports, users), or as the application's role for the long-running server and worker."""
    from bingeo.db.engine import make_engine

    return make_engine(settings, owner=owner)


def _progress(message: str) -> None:
    typer.echo(message, err=True)


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


# db --------------------------------------------------------------------------------------------


@db_app.command("start")
def db_start() -> None:
    """Create (once) and start the embedded PostGIS cluster."""
    settings = _settings()
    if not settings.embedded:
        typer.echo("BINGEO_DATABASE_URL is set: using that server, no embedded cluster started.")
        return
    status = Cluster(settings).start()
    typer.echo(f"embedded PostGIS running (pid {status.pid}) in {status.data_dir}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster."""
    settings = _settings()
    if not settings.embedded:
        typer.echo("BINGEO_DATABASE_URL is set: there is no embedded cluster to stop.")
        return
    Cluster(settings).stop()
    typer.echo("embedded PostGIS stopped")


@db_app.command("status")
def db_status() -> None:
    """Whether the embedded cluster exists and runs (or which server is configured)."""
    settings = _settings()
    if not settings.embedded:
        from bingeo.db.engine import database_url

        typer.echo(f"external server: {_hide_password(database_url(settings))}")
        return
    status = Cluster(settings).status()
    state = "running" if status.running else ("stopped" if status.initialised else "not created")
    pid = f" (pid {status.pid})" if status.pid else ""
    typer.echo(f"embedded PostGIS {state}{pid} in {status.data_dir}")
    if not status.running:
        raise typer.Exit(3)


@db_app.command("url")
def db_url() -> None:
    """Print the connection URL of the database bingeo uses."""
    from bingeo.db.engine import database_url

    typer.echo(database_url(_settings(), start=False))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the schema migrations (starts the embedded cluster when needed)."""
    from bingeo.db import migrate

    engine = _engine(_settings())
    migrate.upgrade(engine, revision)
    typer.echo(f"schema at revision {migrate.current(engine)}")


# import ----------------------------------------------------------------------------------------

FileArg = Annotated[Path, typer.Argument(help="The file to import.")]
LayerOpt = Annotated[str | None, typer.Option(help="Layer of a GeoPackage.")]
CrsOpt = Annotated[str | None, typer.Option(help="CRS when the file has none (4326, 31370, 3812).")]
SkipOpt = Annotated[
    bool, typer.Option("--skip-invalid", help="Store the valid records, report the rejected ones.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


def _report(summary, as_json: bool) -> None:
    data = summary.as_dict()
    if as_json:
        _echo_json(data)
        return
    typer.echo(
        f"{data['file']} ({data['kind']}): read {data['read']}, stored {data['stored']}, "
        f"updated {data['updated']}, unchanged {data['unchanged']}, repaired {data['repaired']}, "
        f"unlocated {data['unlocated']}, duplicates {data['duplicates']}, "
        f"rejected {data['rejected']}"
    )
    if data.get("approximate"):
        placed = ", ".join(f"{method} {n}" for method, n in data["approximate"].items())
        typer.echo(f"  approximate positions in the file's streets: {placed}")
    for line in data["repairs"]:
        typer.echo(f"  repaired: {line}")
    for line in data["rejections"]:
        typer.echo(f"  rejected: {line}")


def _area_command(command: str, level: AreaLevel) -> None:
    @import_app.command(command, help=f"Import {command} (GeoJSON, GeoPackage or Shapefile).")
    def run(
        file: FileArg,
        layer: LayerOpt = None,
        crs: CrsOpt = None,
        code_column: Annotated[str | None, typer.Option(help="Column with the code.")] = None,
        name_column: Annotated[str | None, typer.Option(help="Column with the name.")] = None,
        skip_invalid: SkipOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        from bingeo.services.imports import import_areas

        summary = import_areas(
            _engine(_settings()),
            file,
            level,
            layer=layer,
            crs=crs,
            code_column=code_column,
            name_column=name_column,
            skip_invalid=skip_invalid,
            progress=_progress,
        )
        _report(summary, as_json)


for _command, _level in LEVEL_COMMANDS.items():
    _area_command(_command, _level)


@import_app.command("addresses")
def import_addresses_command(
    file: FileArg,
    crs: Annotated[str | None, typer.Option(help="CRS of x/y columns (31370 or 3812).")] = None,
    source: Annotated[str | None, typer.Option(help="Prefix of the record keys.")] = None,
    id_column: Annotated[str | None, typer.Option(help="Column with the source id.")] = None,
    street_column: Annotated[str | None, typer.Option()] = None,
    number_column: Annotated[str | None, typer.Option()] = None,
    box_column: Annotated[str | None, typer.Option()] = None,
    postcode_column: Annotated[str | None, typer.Option()] = None,
    municipality_column: Annotated[str | None, typer.Option()] = None,
    nis_column: Annotated[str | None, typer.Option()] = None,
    lat_column: Annotated[str | None, typer.Option()] = None,
    lon_column: Annotated[str | None, typer.Option()] = None,
    x_column: Annotated[str | None, typer.Option()] = None,
    y_column: Annotated[str | None, typer.Option()] = None,
    skip_invalid: SkipOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import addresses from a CRAB/BeST-style CSV (lat/lon or x/y)."""
    from bingeo.addresses import AddressColumns
    from bingeo.services.imports import import_addresses

    columns = AddressColumns(
        source_id=id_column,
        street=street_column,
        house_number=number_column,
        box=box_column,
        postcode=postcode_column,
        municipality=municipality_column,
        nis_code=nis_column,
        lat=lat_column,
        lon=lon_column,
        x=x_column,
        y=y_column,
    )
    summary = import_addresses(
        _engine(_settings()),
        file,
        columns=columns,
        crs=crs,
        source=source,
        skip_invalid=skip_invalid,
        progress=_progress,
    )
    _report(summary, as_json)


@import_app.command("networks")
def import_networks_command(
    file: FileArg,
    layer: LayerOpt = None,
    crs: CrsOpt = None,
    status: Annotated[
        str, typer.Option(help="Status of networks whose file gives none.")
    ] = "active",
    skip_invalid: SkipOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Import network areas with name, kind (BIN / BIN-Z) and status."""
    from bingeo.services.imports import import_networks

    summary = import_networks(
        _engine(_settings()),
        file,
        layer=layer,
        crs=crs,
        default_status=status,
        skip_invalid=skip_invalid,
        progress=_progress,
    )
    _report(summary, as_json)


# status ----------------------------------------------------------------------------------------


@app.command("status")
def status_command(as_json: JsonOpt = False) -> None:
    """What the database holds: reference areas, addresses, networks."""
    from bingeo.services.status import database_status

    data = database_status(_engine(_settings()))
    if as_json:
        _echo_json(data)
        return
    typer.echo(f"database: {data['database']} (schema {data['schema_revision']})")
    typer.echo("reference areas:")
    for level in AreaLevel:
        typer.echo(f"  {level.value:<14} {data['reference_areas'].get(level.value, 0):>10,}")
    addresses = data["addresses"]
    typer.echo(
        f"addresses: {addresses['located']:,} located, {addresses['approximate']:,} approximate, "
        f"{addresses['unlocated']:,} unlocated"
    )
    typer.echo("networks:")
    if not data["networks"]:
        typer.echo("  none")
    for kind, statuses in sorted(data["networks"].items()):
        for status, count in sorted(statuses.items()):
            typer.echo(f"  {kind:<6} {status:<20} {count:>6}")


def _hide_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# serve, users, tokens --------------------------------------------------------------------------


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    dispatch: Annotated[
        bool | None,
        typer.Option(help="Also run the alert dispatcher (default: BINGEO_DISPATCH_IN_SERVE)."),
    ] = None,
) -> None:
    """Serve the HTTP API (and web pages) with uvicorn; migrations are applied first."""
    import logging
    import os

    import uvicorn

    from bingeo.db import migrate

    settings = _settings()
    if "public_base_url" not in settings.model_fields_set:
        # Links in answers name the address served (workers read it from the environment).
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        os.environ["BINGEO_PUBLIC_BASE_URL"] = f"http://{shown}:{port}"
        settings = _settings()
    migrate.upgrade(_engine(settings))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if settings.dispatch_in_serve if dispatch is None else dispatch:
        from bingeo.services.dispatch import start_in_thread

        start_in_thread(_engine(settings, owner=False), settings)
    # uvicorn's own access log prints query strings, which may hold addresses: ours does not.
    # The app and the protocol are named by import strings (bingeo never imports the API):
    # each worker process builds them from the same environment as this one.
    uvicorn.run(
        "api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        # Named, not given: a worker imports it once it answers uvicorn's health checks.
        http="api.server:HeaderTimeoutProtocol",
        # uvicorn believes X-Forwarded-For from loopback by default: the app decides instead,
        # from BINGEO_TRUSTED_PROXIES.
        proxy_headers=False,
        log_level="info",
    )


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[
        str,
        typer.Option(
            help="admin, police_analyst, police_officer, municipality_planner or coordinator"
        ),
    ],
    zone: Annotated[str | None, typer.Option(help="Police zone code (police roles).")] = None,
    municipality: Annotated[str | None, typer.Option(help="NIS code (planners).")] = None,
    network: Annotated[int | None, typer.Option(help="Network id (coordinators).")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read a web-login password from stdin.")
    ] = False,
) -> None:
    """Create a user with a role and its scope."""
    from bingeo.db.models import Role
    from bingeo.errors import InvalidInput
    from bingeo.services.users import add_user

    try:
        role_value = Role(role)
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}; use one of {[r.value for r in Role]}") from None
    user_id = add_user(
        _engine(_settings()),
        name,
        role_value,
        police_zone_code=zone,
        nis_code=municipality,
        network_id=network,
        password=_read_password(password_stdin) if password_stdin else None,
    )
    typer.echo(f"user {name} ({role_value.value}) created with id {user_id}")


@users_app.command("set-password")
def users_set_password(
    name: Annotated[str, typer.Argument(help="Login name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Set a user's password for the web app (asked twice, or read from stdin)."""
    from bingeo.services.users import set_password

    set_password(_engine(_settings()), name, _read_password(password_stdin))
    typer.echo(f"password of {name} set")


def _read_password(from_stdin: bool) -> str:
    # From stdin: the first line, so `echo pw | bingeo ...` and here-strings work.
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """Every user with role and scope."""
    from bingeo.services.users import list_users

    users = list_users(_engine(_settings()))
    if as_json:
        _echo_json(users)
        return
    for user in users:
        scope = user["police_zone_code"] or user["nis_code"] or user["network_id"] or "-"
        typer.echo(f"{user['id']:>4} {user['name']:<24} {user['role'].value:<22} {scope}")


@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Argument(help="Login name of the user.")],
    label: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
    expires_in_days: Annotated[
        float, typer.Option(min=0, help="Lifetime in days; 0 for a token that never expires.")
    ] = 90,
) -> None:
    """Create a bearer token; it is printed once and stored only as a hash."""
    from bingeo.services.users import create_token

    token_id, token = create_token(
        _engine(_settings()), user, label=label, expires_in_days=expires_in_days or None
    )
    typer.echo(f"token {token_id} for {user} (shown once, keep it safe):", err=True)
    typer.echo(token)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="Id of the token.")]) -> None:
    """Revoke a token at once."""
    from bingeo.services.users import revoke_token

    revoke_token(_engine(_settings()), token_id)
    typer.echo(f"token {token_id} revoked")


@tokens_app.command("list")
def tokens_list(as_json: JsonOpt = False) -> None:
    """Every token's id, user, label and validity (never the token)."""
    from bingeo.services.users import list_tokens

    tokens = list_tokens(_engine(_settings()))
    if as_json:
        _echo_json(tokens)
        return
    for token in tokens:
        state = "revoked" if token["revoked_at"] else f"expires {token['expires_at'] or 'never'}"
        typer.echo(f"{token['id']:>4} {token['name']:<24} {token['label'] or '-':<20} {state}")


# demo ------------------------------------------------------------------------------------------


@app.command("demo")
def demo_command(
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the demo files and the map.")
    ] = None,
    real: Annotated[
        bool,
        typer.Option(
            "--real", help="Load the real Bierbeek sample of data/ instead, into its own database."
        ),
    ] = False,
    database: Annotated[
        str, typer.Option(help="Database of the real sample (--real); never the configured one.")
    ] = "bingeo_real",
    sample: Annotated[
        Path | None, typer.Option(help="Folder of the real sample (--real; default: data/).")
    ] = None,
    as_json: JsonOpt = False,
    lang: LangOpt = "nl",
) -> None:
    """Generate the demo municipality Demodorp (or load the real Bierbeek sample with --real),
    import it and draw the networks map."""
    from bingeo.services.demo import real_demo_settings, run_demo, run_real_demo

    settings = real_demo_settings(_settings(), database) if real else _settings()
    engine = _engine(settings)
    # The demo is the first thing a new user runs: bring the schema up to date first.
    _upgrade_or_explain(engine, settings, real)
    if real:
        result = run_real_demo(
            engine, settings, sample_dir=sample, out_dir=out, progress=_progress, language=lang
        )
    else:
        result = run_demo(engine, settings, out_dir=out, progress=_progress, language=lang)
    if as_json:
        _echo_json(result)
        return
    for data in result["imports"]:
        typer.echo(
            f"{data['kind']:<13} read {data['read']:>6,}, stored {data['stored']:>6,}, "
            f"updated {data['updated']:>6,}, unchanged {data['unchanged']:>6,}, "
            f"unlocated {data['unlocated']:>4}, rejected {data['rejected']}"
        )
    if real:
        _echo_derived(result["derived"])
        hint = (
            f" (to use it: BINGEO_DATABASE_NAME={database} bingeo ...)" if settings.embedded else ""
        )
        typer.echo(f"loaded into database {database}{hint}")
    typer.echo(f"files in {result['folder']}")
    typer.echo(f"map of {result['networks']} networks: {result['map']}")


def _upgrade_or_explain(engine, settings: Settings, real: bool) -> None:
    """Apply the migrations; the real sample's database missing on a server is named."""
    from bingeo.db import migrate
    from bingeo.errors import DatabaseUnavailable

    try:
        migrate.upgrade(engine)
    except DatabaseUnavailable as exc:
        if not real or settings.embedded:
            raise
        cause = " ".join(str(exc.__cause__ or exc).split())
        raise DatabaseUnavailable(
            f"database {settings.database_name!r} on the configured server cannot be opened "
            f"({cause}); create it with the postgis and pg_trgm extensions, or name another "
            "with --database"
        ) from exc


def _echo_derived(data: dict) -> None:
    for network in data["networks"]:
        area = f"{network['area_m2'] / 10_000:.1f} ha" if network["area_m2"] else "no area"
        typer.echo(f"{network['code']:<36} {network['addresses']:>6} addresses  {area}")
    for finding in data["findings"]:
        more = f" (candidates: {', '.join(finding['candidates'])})" if finding["candidates"] else ""
        typer.echo(f"  {finding['network']}: {finding['kind']}: {finding['message']}{more}")


@networks_app.command("from-streets")
def networks_from_streets(
    file: Annotated[
        Path,
        typer.Argument(
            help="Street list CSV: network, municipality, street, qualifier (as published)."
        ),
    ],
    networks: Annotated[
        Path | None, typer.Option(help="Networks CSV: id, name, kind, municipality, coverage text.")
    ] = None,
    only: Annotated[list[str] | None, typer.Option(help="Only these network ids.")] = None,
    store: Annotated[bool, typer.Option(help="Store the derived networks.")] = True,
    status: Annotated[str, typer.Option(help="Status of stored networks.")] = "active",
    out: Annotated[
        Path | None, typer.Option(help="Write the areas as GeoJSON (EPSG:4326).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Derive network areas from a published street list; every doubt is reported."""
    from bingeo.networks import parse_status
    from bingeo.services.streetlists import derive_from_street_list, store_derived

    engine = _engine(_settings())
    result = derive_from_street_list(
        engine, file, networks_csv=networks, only=set(only) if only else None, progress=_progress
    )
    if store:
        store_derived(engine, result, status=parse_status(status))
    if out:
        result.frame(status=parse_status(status)).to_crs(4326).to_file(out, driver="GeoJSON")
    if as_json:
        _echo_json(result.as_dict())
        return
    data = result.as_dict()
    _echo_derived(data)
    if store:
        typer.echo(f"stored {data['stored']} new and {data['updated']} changed networks")


# fetch -----------------------------------------------------------------------------------------


@app.command("fetch")
def fetch_command(
    name: Annotated[
        str | None, typer.Argument(help="A known open-data download; omit it to list them.")
    ] = None,
    dest: Annotated[Path, typer.Option("--dest", help="Folder to store the file in.")] = Path(
        "data"
    ),
    sha256: Annotated[
        str | None, typer.Option("--sha256", help="Expected SHA-256, from a source you trust.")
    ] = None,
    accept_checksum: Annotated[
        bool,
        typer.Option(
            "--accept-checksum",
            help="Keep a file whose checksum is not known (it is printed, marked unverified).",
        ),
    ] = False,
    url: Annotated[
        str | None, typer.Option(help="Download from this address (a mirror); checks still apply.")
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the server.")] = 60.0,
    as_json: JsonOpt = False,
) -> None:
    """Download an official open-data file (Statbel sectors, BeST addresses), checked against
    its SHA-256; a file that is incomplete or does not match is not kept."""
    from bingeo.fetch import DOWNLOADS
    from bingeo.services.fetch import fetch

    if name is None:
        for download in DOWNLOADS.values():
            checksum = download.sha256 or f"no checksum known: {download.checksum_note}"
            typer.echo(f"{download.name}\n  {download.description}\n  {download.url}")
            typer.echo(f"  licence: {download.licence}\n  sha256: {checksum}")
        return
    shown: list[int] = []

    def report(done: int, total: int | None) -> None:
        # One line, rewritten at each new percent (or each 10 MB when the size is not known).
        step = done * 100 // total if total else done // 10_000_000
        if shown and shown[-1] == step:
            return
        shown.append(step)
        text = f"{done:,} of {total:,} bytes ({step}%)" if total else f"{done:,} bytes"
        typer.echo(f"\r{name}: {text}", err=True, nl=False)

    try:
        result = fetch(
            name,
            dest,
            url=url,
            sha256=sha256,
            accept_checksum=accept_checksum,
            timeout_s=timeout,
            progress=report,
        )
    finally:
        if shown:
            typer.echo("", err=True)
    if as_json:
        _echo_json(result.as_dict())
        return
    state = "verified" if result.verified else "NOT verified (no checksum was known)"
    action = "downloaded" if result.downloaded else "already present"
    typer.echo(f"{result.path}: {action}, {result.size_bytes:,} bytes, SHA-256 {state}")
    typer.echo(f"sha256 {result.sha256}")


# address lookup --------------------------------------------------------------------------------


@app.command("address")
def address_command(
    text: Annotated[str, typer.Argument(help='An address, e.g. "Kerkstraat 12, 9000 Gent".')],
    limit: Annotated[int, typer.Option(min=1, max=20, help="Answers at most.")] = 5,
    as_json: JsonOpt = False,
) -> None:
    """Look up a free-text address: the best match (id, position, whether it is approximate,
    covering networks) with its confidence, or the nearest ones."""
    from bingeo.access import Actor, Principal
    from bingeo.db.models import Role
    from bingeo.services.lookup import search_addresses

    # The local operator has the database anyway: the staff view of the networks.
    actor = Actor(principal=Principal(name="cli", role=Role.admin))
    result = search_addresses(_engine(_settings()), actor, text, limit=limit)
    if as_json:
        _echo_json(result.as_dict())
        return

    def line(match) -> str:
        box = f" bus {match.box}" if match.box else ""
        where = f"{match.postcode or ''} {match.municipality or ''}".strip()
        position = f"  ({match.lat:.6f}, {match.lon:.6f})" if match.lat is not None else ""
        if match.approximate:
            position += f" approximate: {match.position_method}"
        networks = ", ".join(n.code or n.name for n in match.networks or [])
        covered = f"  networks: {networks}" if networks else ""
        return (
            f"#{match.id} {match.street} {match.house_number or ''}{box}, {where}{position}"
            f"{covered}"
        )

    if result.found and result.best is not None:
        typer.echo(f"{line(result.best)}  confidence {result.confidence:.2f}")
        label = "alternatives"
    else:
        typer.echo(f"not found: {result.message}")
        label = "nearest candidates"
    if result.alternatives:
        typer.echo(f"{label}:")
        for match in result.alternatives:
            typer.echo(f"  {line(match)}  confidence {match.confidence:.2f} ({match.reason})")
    if not result.found:
        raise typer.Exit(2)


# alerts and the dispatcher ---------------------------------------------------------------------

alerts_app = typer.Typer(help="Alerts scoped to a drawn area.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
AsOpt = Annotated[str, typer.Option("--as", help="The user who acts (audit trail).")]
AreaOpt = Annotated[
    Path | None, typer.Option(help="A GeoJSON file with a (Multi)Polygon (EPSG:4326).")
]
CircleOpt = Annotated[str | None, typer.Option(help="Circle centre as LON,LAT.")]
AddressIdOpt = Annotated[int | None, typer.Option(help="Circle around this address id.")]
AddressOpt = Annotated[str | None, typer.Option(help="Circle around this address (free text).")]
RadiusOpt = Annotated[float | None, typer.Option(help="Radius in metres (circle, address).")]
ModeOpt = Annotated[str, typer.Option(help="relay (coordinators, e-mail) or direct (members).")]
ScopeOpt = Annotated[str, typer.Option(help="direct: members in the 'area' or the 'networks'.")]
MessageOpt = Annotated[
    list[str], typer.Option("--message", help='LANG=TEXT, e.g. nl="Let op ..." (repeatable).')
]
KindOpt = Annotated[list[str] | None, typer.Option("--kind", help="BIN and/or BIN-Z.")]
StatusOpt = Annotated[list[str] | None, typer.Option("--status", help="Network status.")]


def _alert_request(engine, settings, area, circle, address_id, address, radius_m, **options):
    from bingeo.services.alerts import make_request, parse_target

    target: dict = {"radius_m": radius_m}
    if area is not None:
        target["area"] = json.loads(area.read_text(encoding="utf-8"))
    if circle is not None:
        try:
            lon, lat = (float(v) for v in circle.split(","))
        except ValueError as exc:
            raise typer.BadParameter("--circle must be LON,LAT") from exc
        target["circle"] = {"lon": lon, "lat": lat, "radius_m": radius_m}
    target["address_id"], target["address"] = address_id, address
    messages = {}
    for item in options.pop("message"):
        language, sep, text = item.partition("=")
        if not sep:
            raise typer.BadParameter("--message must be LANG=TEXT")
        messages[language.strip().lower()] = text
    return make_request(parse_target(engine, target, settings), messages=messages, **options)


@alerts_app.command("preview")
def alerts_preview(
    user: AsOpt,
    message: MessageOpt,
    area: AreaOpt = None,
    circle: CircleOpt = None,
    address_id: AddressIdOpt = None,
    address: AddressOpt = None,
    radius_m: RadiusOpt = None,
    mode: ModeOpt = "relay",
    direct_scope: ScopeOpt = "area",
    kind: KindOpt = None,
    status: StatusOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who an alert would reach (counts and opaque ids), its cost and message checks."""
    from bingeo.services.alerts import actor_for_user, preview_alert

    settings = _settings()
    engine = _engine(settings)
    request = _alert_request(
        engine, settings, area, circle, address_id, address, radius_m, message=message,
        mode=mode, direct_scope=direct_scope, kinds=kind, statuses=status,
    )  # fmt: skip
    result = preview_alert(engine, actor_for_user(engine, user), request, settings)
    if as_json:
        _echo_json(result)
        return
    typer.echo(f"area: {result['area']['description']} ({result['area']['area_m2'] / 1e6:.3f} km²)")
    for network in result["networks"]:
        typer.echo(
            f"  network {network['id']:>5} {network['code']:<16} {network['share_inside']:>6.1%} "
            f"inside, {network['addresses_inside']:>6} addresses, "
            f"{network['members_reached']:>4} members, {network['coordinators']} coordinators"
        )
    addresses = result["addresses"]
    typer.echo(
        f"addresses inside: {addresses['inside_area']} "
        f"({addresses['inside_area_approximate']} approximate), of which in a network: "
        f"{addresses['inside_area_and_network']}; within {result['edge']['distance_m']:g} m "
        f"of the edge: {result['edge']['total']}"
    )
    typer.echo(f"members reached: {result['members']['total']} {result['members']['by_channel']}")
    typer.echo(f"recipients ({mode}): {result['recipients']}")
    typer.echo(f"cost: {result['cost']['total_eur']:.2f} EUR ({result['cost']})")
    for warning in result["message"]["warnings"] + result["area"]["warnings"]:
        typer.echo(f"  warning: {warning}")


@alerts_app.command("send")
def alerts_send(
    user: AsOpt,
    message: MessageOpt,
    reason: Annotated[str, typer.Option(help="Why the alert is sent (audit trail).")],
    area: AreaOpt = None,
    circle: CircleOpt = None,
    address_id: AddressIdOpt = None,
    address: AddressOpt = None,
    radius_m: RadiusOpt = None,
    mode: ModeOpt = "relay",
    direct_scope: ScopeOpt = "area",
    kind: KindOpt = None,
    status: StatusOpt = None,
    urgency: Annotated[str, typer.Option(help="immediate, expected, future or unknown")] = (
        "expected"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Store an alert with its exact recipient list; `bingeo worker` delivers it."""
    from bingeo.services.alerts import actor_for_user, send_alert

    settings = _settings()
    engine = _engine(settings)
    request = _alert_request(
        engine, settings, area, circle, address_id, address, radius_m, message=message,
        mode=mode, direct_scope=direct_scope, kinds=kind, statuses=status, urgency=urgency,
        reason=reason,
    )  # fmt: skip
    result = send_alert(engine, actor_for_user(engine, user), request, settings)
    if as_json:
        _echo_json(result)
        return
    typer.echo(f"alert {result['id']} queued for {result['recipients']['total']} recipients")
    typer.echo(f"  {result['recipients']}")


@alerts_app.command("status")
def alerts_status(
    alert_id: Annotated[int, typer.Argument(help="The alert id.")],
    user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """An alert's deliveries counted per status and channel."""
    from bingeo.services.alerts import actor_for_user, alert_status

    engine = _engine(_settings())
    result = alert_status(engine, actor_for_user(engine, user), alert_id)
    if as_json:
        _echo_json(result)
        return
    typer.echo(f"alert {result['id']} ({result['mode']}): {result['status']}")
    for channel, counts in sorted(result["recipients"]["by_channel"].items()):
        typer.echo(f"  {channel:<6} {counts}")


@alerts_app.command("cancel")
def alerts_cancel(
    alert_id: Annotated[int, typer.Argument(help="The alert id.")], user: AsOpt
) -> None:
    """Cancel the deliveries of an alert that have not gone out yet."""
    from bingeo.services.alerts import actor_for_user, cancel_alert

    engine = _engine(_settings())
    result = cancel_alert(engine, actor_for_user(engine, user), alert_id)
    typer.echo(
        f"alert {alert_id} cancelled: {result['cancelled']} deliveries stopped, "
        f"{result['already_out']} already out"
    )


@app.command("worker")
def worker_command(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop when nothing is left to deliver.")
    ] = False,
) -> None:
    """The alert dispatcher: deliver queued alerts by e-mail, SMS and voice, with retries."""
    import logging
    import signal
    import threading

    from bingeo.services.dispatch import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = _settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stats = run_worker(
            _engine(settings, owner=False),
            settings,
            stop=stop,
            until_idle=until_idle,
            progress=_progress,
        )
    except KeyboardInterrupt:
        return
    typer.echo(f"sent {stats.sent}, retried {stats.retried}, failed {stats.failed}")


# matching --------------------------------------------------------------------------------------


@app.command("match")
def match_command(as_json: JsonOpt = False) -> None:
    """Match every located address to every network covering it (full rematch)."""
    from bingeo.services.matching import rematch_all

    stats = rematch_all(_engine(_settings()), progress=_progress)
    if as_json:
        _echo_json(stats.as_dict())
        return
    typer.echo(
        f"{stats.addresses:,} located addresses, {stats.networks:,} networks: "
        f"{stats.pairs:,} matches, {stats.covered_addresses:,} addresses covered; "
        f"{stats.added:,} added, {stats.removed:,} removed; load {stats.load_s:.2f} s, "
        f"match {stats.match_s:.2f} s, store {stats.store_s:.2f} s, total {stats.total_s:.2f} s"
    )


@app.command("covering")
def covering_command(
    lon: Annotated[float | None, typer.Option(help="Longitude (EPSG:4326).")] = None,
    lat: Annotated[float | None, typer.Option(help="Latitude (EPSG:4326).")] = None,
    address_id: Annotated[int | None, typer.Option(help="Id of a stored address.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Which networks cover a point (--lon --lat) or an address (--address-id)."""
    from dataclasses import asdict

    from bingeo.access import Actor, Principal
    from bingeo.db.models import Role
    from bingeo.errors import InvalidInput
    from bingeo.services.matching import networks_covering

    if (lon is None) != (lat is None):
        raise InvalidInput("give both --lon and --lat")
    point = (lon, lat) if lon is not None else None
    # The local operator has the database anyway: show the staff view.
    actor = Actor(principal=Principal(name="cli", role=Role.admin))
    covering = networks_covering(_engine(_settings()), actor, address_id=address_id, point=point)
    if as_json:
        _echo_json(asdict(covering))
        return
    if not covering.located:
        typer.echo(f"address {address_id} has no position: no network can be matched")
        return
    if not covering.networks:
        typer.echo("no network covers this place")
    for n in covering.networks:
        typer.echo(f"{n.id}\t{n.code}\t{n.kind.value}\t{n.status.value}\t{n.name}")


# coverage --------------------------------------------------------------------------------------

ZoneOpt = Annotated[str | None, typer.Option("--zone", help="Police zone code.")]
MunicipalityOpt = Annotated[str | None, typer.Option("--municipality", help="NIS code.")]
LevelOpt = Annotated[
    AreaLevel | None,
    typer.Option("--level", help="Reference level (default: the finest with areas in the scope)."),
]
InactiveOpt = Annotated[
    bool, typer.Option("--include-inactive", help="Count networks that are not active too.")
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write to .html (map), .csv, .gpkg or .geojson.")
]
LangOpt = Annotated[str, typer.Option("--lang", help="Language of a map's texts: nl or fr.")]


def _coverage_actor():
    from bingeo.access import Actor, Principal
    from bingeo.db.models import Role

    # The local operator has the database anyway.
    return Actor(principal=Principal(name="cli", role=Role.admin))


@app.command("coverage")
def coverage_command(
    zone: ZoneOpt = None,
    municipality: MunicipalityOpt = None,
    level: LevelOpt = None,
    include_inactive: InactiveOpt = False,
    out: OutOpt = None,
    network: Annotated[
        str | None, typer.Option("--network", help="Map of one network (id or code) to --out.")
    ] = None,
    lang: LangOpt = "nl",
) -> None:
    """Coverage per reference area of a police zone, a municipality or the whole country."""
    from bingeo.services import coverage as service

    settings = _settings()
    engine, actor = _engine(settings), _coverage_actor()
    if network is not None:
        if out is None or out.suffix.lower() != ".html":
            raise typer.BadParameter("--network needs --out FILE.html")
        service.export_map(
            lambda assets: service.network_map(
                engine, actor, settings, network, level=level, assets_url=assets, language=lang
            ),
            out,
        )
        typer.echo(f"map of network {network} written to {out}")
        return
    scope = {"zone": zone, "municipality": municipality}
    if out is not None and out.suffix.lower() == ".html":
        service.export_map(
            lambda assets: service.coverage_map(
                engine,
                actor,
                settings,
                level=level,
                include_inactive=include_inactive,
                assets_url=assets,
                language=lang,
                **scope,
            ),
            out,
        )
        typer.echo(f"map written to {out}")
        return
    result = service.coverage(
        engine, actor, level=level, include_inactive=include_inactive, **scope
    )
    if out is not None:
        service.export_frame(result.areas, out)
        typer.echo(f"{len(result.areas)} areas written to {out}")
    _echo_json({"scope": result.scope.describe(), "level": result.level.value, **result.totals})


@app.command("overlaps")
def overlaps_command(
    zone: ZoneOpt = None,
    municipality: MunicipalityOpt = None,
    include_inactive: InactiveOpt = False,
    out: OutOpt = None,
) -> None:
    """Overlapping networks and networks crossing municipality or police-zone borders."""
    from bingeo.services import coverage as service

    settings = _settings()
    result = service.overlaps(
        _engine(settings),
        _coverage_actor(),
        zone=zone,
        municipality=municipality,
        include_inactive=include_inactive,
        min_overlap_m2=settings.min_overlap_m2,
    )
    if out is not None:
        service.export_frame(result.pairs, out)
    for row in result.pairs.itertuples():
        typer.echo(
            f"{row.code_a}\t{row.code_b}\t{row.overlap_m2:.0f} m2\t{row.share_a:.1%}\t"
            f"{row.share_b:.1%}\t{row.shared_addresses} addresses"
        )
    for row in result.crossings.itertuples():
        typer.echo(f"crosses a border: {row.code}\t{row.municipalities}\t{row.police_zones}")


@app.command("gaps")
def gaps_command(
    zone: ZoneOpt = None,
    municipality: MunicipalityOpt = None,
    level: LevelOpt = None,
    include_inactive: InactiveOpt = False,
    out: OutOpt = None,
) -> None:
    """Candidate zones for new networks, made of uncovered areas, ranked by uncovered addresses
    and distance to the nearest network."""
    import pandas as pd

    from bingeo.services import coverage as service

    settings = _settings()
    result = service.gaps(
        _engine(settings),
        _coverage_actor(),
        zone=zone,
        municipality=municipality,
        level=level,
        include_inactive=include_inactive,
        **service.gap_options(settings),
    )
    if out is not None:
        service.export_frame(result.zones, out)
    for row in result.zones.itertuples():
        distance = "-" if pd.isna(row.distance_m) else f"{row.distance_m:.0f} m"
        typer.echo(
            f"{row.rank}\t{row.id}\t{row.uncovered} uncovered of {row.addresses}\t"
            f"nearest network {distance}\t{row.name}"
        )


# planning --------------------------------------------------------------------------------------

planning_app = typer.Typer(
    help="Planning networks: validation, lifecycle, dormant networks.", no_args_is_help=True
)
app.add_typer(planning_app, name="planning")


def _operator(name: str | None):
    from bingeo.access import Actor, Principal
    from bingeo.db.models import Role

    # The local operator has the database anyway; --by names who acts, for the records.
    return Actor(principal=Principal(name=name or "cli", role=Role.admin))


@planning_app.command("validate")
def planning_validate(
    file: Annotated[
        Path, typer.Argument(help="GeoJSON, GeoPackage, zipped Shapefile, KML or street-list CSV.")
    ],
    layer: LayerOpt = None,
    network: Annotated[
        str | None, typer.Option(help="Network of a street list holding several.")
    ] = None,
    networks_csv: Annotated[
        Path | None, typer.Option("--networks", help="Networks CSV of the street list.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The validation report of a proposed area (writes nothing); exit 2 when something blocks."""
    from bingeo.services import planning as service

    settings = _settings()
    engine = _engine(settings)
    if file.suffix.lower() in (".csv", ".txt"):
        proposal = service.proposal_from_street_list(
            engine, file, network=network, networks_csv=networks_csv
        )
    else:
        proposal = service.proposal_from_file(file, layer=layer, limits=settings.geometry_limits())
    report = service.validate(engine, _operator(None), proposal)
    if as_json:
        _echo_json(report.as_dict(geometry=False))
    else:
        typer.echo(
            f"{report.source}: {report.area_m2 / 10_000:.1f} ha, "
            f"{report.addresses_inside} addresses, {report.members_inside} members of networks"
        )
        for overlap in report.overlaps:
            typer.echo(
                f"  overlaps {overlap['code']} ({overlap['status']}): "
                f"{overlap['overlap_m2']:.0f} m², {overlap['addresses']} addresses"
            )
        for finding in report.findings:
            typer.echo(f"  {finding.severity.value}: {finding.code}: {finding.message}")
    if not report.valid:
        raise typer.Exit(2)


@planning_app.command("transition")
def planning_transition(
    network_id: Annotated[int, typer.Argument(help="Id of the network.")],
    to: Annotated[str | None, typer.Argument(help="The state to go to.")] = None,
    fact: Annotated[
        list[str] | None, typer.Option(help="A fact as name=value (JSON values allowed).")
    ] = None,
    by: Annotated[str | None, typer.Option(help="Who takes the step (for the record).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record lifecycle facts and/or take a lifecycle step of a network."""
    from bingeo.errors import InvalidInput
    from bingeo.services import planning as service

    facts: dict[str, object] = {}
    for item in fact or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"fact {item!r} is not name=value")
        try:
            facts[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            facts[name.strip()] = value
    state = service.transition(_engine(_settings()), _operator(by), network_id, to=to, facts=facts)
    if as_json:
        _echo_json(state)
        return
    typer.echo(f"network {state['network_id']} ({state['code']}): {state['status']}")
    for step in state["next"]:
        missing = f" (missing: {', '.join(step['missing'])})" if step["missing"] else ""
        typer.echo(f"  -> {step['to']}{missing}")


@planning_app.command("dormant")
def planning_dormant(
    months: Annotated[int | None, typer.Option(min=1, help="Months without activity.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Active networks without message or member change for the given months."""
    from bingeo.services import planning as service

    settings = _settings()
    months = months or settings.dormant_months
    found = service.dormant_networks(_engine(settings), _operator(None), months=months)
    if as_json:
        _echo_json(found)
        return
    for network in found:
        typer.echo(
            f"{network['network_id']:>6} {network['code']:<32} quiet since {network['quiet_since']}"
        )
    typer.echo(f"{len(found)} networks without activity for {months} months")
