"""The HTTP edge of CityGraph: the Starlette app factory, lifespan, routes, and the CLI.

Request flow: RequestIdMiddleware -> BodySizeLimitMiddleware -> AuthenticationMiddleware
(``edge/``) -> ``/graphql`` (``edge/graphql_http.py``) -> the schema (``schema/``), whose policy
extension decides once per (connector, type) -> resolvers and loaders (``resolvers/``) ->
connectors (``connectors/``) -> audit record (``audit/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import structlog
import typer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from audit import AuditTrail
from connectors.base import Connector
from connectors.registry import enable
from edge.collector import serving_collector
from edge.graphql_http import execute_http
from edge.identity import TokenVerifier, mint_dev_token
from edge.logs import configure_logging
from edge.middleware import AuthenticationMiddleware, BodySizeLimitMiddleware, RequestIdMiddleware
from edge.settings import Settings
from policies.cache import CachingEngine
from policies.cli import policy_cli
from policies.decisionlog import DecisionSink, HttpSink, JsonlFileSink, LoggingEngine, LogMask, TeeSink, instance_labels
from policies.embedded import EmbeddedEngine
from policies.engine import PolicyEngine
from policies.reload import PolicyReloader
from resolvers.context import Runtime
from schema.builder import BuiltSchema, build_schema
from schema.limits import Limits

log = structlog.get_logger("citygraph")
ROOT = Path(__file__).resolve().parent
STATIC = ROOT / "static"


@dataclass(frozen=True, slots=True)
class Gateway:
    """What the app serves with, once the lifespan has opened it."""

    runtime: Runtime
    built: BuiltSchema


def admin_input(request: Request, resource: str) -> dict[str, object]:
    """The policy input for an administrative action on the gateway itself."""
    principal = request.state.principal
    return {
        "subject": principal.to_policy(),
        "action": "admin",
        "purpose": request.state.purpose.code,
        "case_ref": request.state.purpose.case_ref,
        "resource": {"connector": "gateway", "type": resource, "classification": 4, "fields": []},
        "operation": {"type": "admin", "name": request.url.path, "coordinates": [], "args": {}, "depth": 0},
        "context": {"now_ns": time.time_ns(), "today": "", "request_id": request.state.request_id},
    }


def _limits(settings: Settings) -> Limits:
    lim = settings.limits
    return Limits(
        max_depth=lim.max_depth, max_aliases=lim.max_aliases, max_cost=lim.max_cost, max_tokens=lim.max_tokens
    )


async def _with_decision_log(embedded: EmbeddedEngine, settings: Settings) -> PolicyEngine:
    """Wrap the engine so every evaluation is written as an OPA decision-log event (if configured)."""
    dl = settings.policy.decision_log
    sinks: list[DecisionSink] = []
    if dl.file:
        sinks.append(JsonlFileSink(dl.file, max_bytes=dl.max_bytes, backups=dl.backups))
    if dl.url:
        auth = {"Authorization": f"Bearer {dl.token.get_secret_value()}"} if dl.token else {}
        sinks.append(
            HttpSink(
                dl.url,
                batch_size=dl.batch_size,
                flush_interval_s=dl.flush_interval_s,
                headers=auth,
                max_queue=dl.max_queue,
            )
        )
    if not sinks:
        return embedded
    mask = LogMask(settings.policy.rego_dir) if dl.mask else None
    if mask is not None:
        await asyncio.to_thread(mask.load)
    labels = instance_labels(dl.instance_id)
    return LoggingEngine(embedded, TeeSink(*sinks), labels=labels, engine_name="embedded", mask=mask)


async def _opa_engine(settings: Settings) -> PolicyEngine:
    """The OPA-server engine, probed once so /readyz shows OPA's bundle revision."""
    from policies.opa import OpaEngine, OpaSettings

    opa = settings.policy.opa
    options = opa.model_dump(exclude={"url"})
    engine = OpaEngine(OpaSettings.from_url(opa.url, **options))
    await engine.probe()
    # A per-process cache in front of OPA is keyed by the revision OPA last reported; keep its TTL
    # short (cache_ttl_s) since an OPA-side bundle swap is seen only on the next real call.
    if settings.policy.cache_ttl_s > 0:
        return CachingEngine(engine, ttl_s=settings.policy.cache_ttl_s)
    return engine


async def _open(
    settings: Settings,
    connectors: Mapping[str, Connector] | None,
    engine: PolicyEngine | None,
    audit: AuditTrail | None,
    subgraph: str | None = None,
) -> Gateway:
    if engine is None and settings.policy.engine == "opa":
        engine = await _opa_engine(settings)
    if engine is None:
        embedded = EmbeddedEngine(settings.policy.rego_dir, timeout_s=settings.policy.timeout_s)
        loaded = await asyncio.to_thread(embedded.load)
        if not loaded.ok:
            log.error("policy bundle failed to load; every sensitive read is denied", errors=loaded.errors)
        engine = await _with_decision_log(embedded, settings)
        if settings.policy.cache_ttl_s > 0:
            engine = CachingEngine(engine, ttl_s=settings.policy.cache_ttl_s)
    if connectors is None:
        connectors = enable(settings.connectors, settings.data_dir)
    references: Mapping[str, Callable[[str], object]] = {}
    if subgraph is not None:
        from schema.federation import build_subgraph

        part = build_subgraph(
            connectors, subgraph, _limits(settings), introspection=settings.dev, compiled=settings.execution.compiled
        )
        built, references = part.built, part.references
        connectors = {name: c for name, c in connectors.items() if name == subgraph}  # serve one department
    else:
        built = build_schema(
            connectors, _limits(settings), introspection=settings.dev, compiled=settings.execution.compiled
        )
    for connector in connectors.values():
        await connector.open()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    audit = audit or AuditTrail(
        settings.audit_url, lock_timeout_s=settings.audit.lock_timeout_s, idle_timeout_s=settings.audit.idle_timeout_s
    )
    await audit.open()
    timeouts = {name: float(settings.connectors.get(name, {}).get("timeout_s", 5.0)) for name in connectors}
    runtime = built.runtime(
        connectors, engine, audit, timeouts, max_page_size=settings.limits.max_page_size, references=references
    )
    return Gateway(runtime=runtime, built=built)


async def _close(gateway: Gateway) -> None:
    for connector in gateway.runtime.connectors.values():
        await connector.aclose()
    await gateway.runtime.engine.aclose()
    await gateway.runtime.audit.aclose()


def create_app(
    settings: Settings | None = None,
    *,
    connectors: Mapping[str, Connector] | None = None,
    engine: PolicyEngine | None = None,
    audit: AuditTrail | None = None,
    subgraph: str | None = None,
) -> Starlette:
    """Build the gateway app; tests inject connectors, engine or audit trail to isolate layers.

    ``subgraph`` serves one connector's part of the graph (or ``"gateway"``: the gateway's own
    fields) as an Apollo Federation v2 subgraph (``schema/federation.py``); ``connectors`` are
    then every enabled connector, of which only that one is opened.
    """
    settings = settings or Settings()
    configure_logging(settings.log_level)
    verifier = TokenVerifier(settings.auth, settings.dev_secret() if settings.auth.mode == "dev" else None)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway = await _open(settings, connectors, engine, audit, subgraph)
        app.state.gateway = gateway
        reloader = None
        try:
            with serving_collector():  # undone before the shutdown below, as the app stops serving
                inner = gateway.runtime.engine
                while isinstance(inner, CachingEngine | LoggingEngine):
                    inner = inner.engine
                if isinstance(inner, EmbeddedEngine):
                    reloader = PolicyReloader(inner, settings.policy.rego_dir, settings.policy.watch_interval_s)
                    if settings.policy.watch_interval_s > 0:
                        reloader.start()
                app.state.reloader = reloader
                log.info(
                    "gateway ready",
                    connectors=sorted(gateway.runtime.connectors),
                    revision=gateway.runtime.engine.status().revision,
                )
                yield
        finally:
            if reloader is not None:
                await reloader.stop()
            await _close(gateway)

    async def graphql(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        if request.method == "GET" and settings.dev and "query" not in request.query_params:
            if "text/html" in request.headers.get("accept", ""):
                return FileResponse(STATIC / "graphiql" / "index.html")
        if subgraph is not None:
            from schema.federation import TRACE_REQUESTED

            # The router asks for federated tracing per request (Apollo's ftv1 protocol).
            TRACE_REQUESTED.set(request.headers.get("apollo-federation-include-trace") == "ftv1")
        return await execute_http(request, gateway.runtime, gateway.built.schema, settings.limits.max_tokens)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        checks: dict[str, Any] = {}
        for name, connector in gateway.runtime.connectors.items():
            health = await connector.health()
            checks[f"connector:{name}"] = {"ok": health.ok, "detail": health.detail}
        status = gateway.runtime.engine.status()
        checks["policy"] = {"ok": status.ready, "revision": status.revision, "detail": status.detail}
        checks["audit"] = {"ok": await gateway.runtime.audit.writable()}
        ready = all(c["ok"] for c in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def reload_policies(request: Request) -> Response:
        gateway: Gateway = request.app.state.gateway
        decision = await gateway.runtime.engine.decide(admin_input(request, "PolicyReload"))
        if not decision.allow:
            return JSONResponse(
                {"errors": [{"message": "Security officers only.", "extensions": {"code": "FORBIDDEN"}}]}, 403
            )
        if request.app.state.reloader is None:
            return JSONResponse(
                {"errors": [{"message": "No reloadable engine.", "extensions": {"code": "BAD_REQUEST"}}]}, 400
            )
        result = await request.app.state.reloader.reload("admin call")
        body = {"ok": result.ok, "revision": result.revision, "errors": result.errors}
        body["active"] = gateway.runtime.engine.status().revision
        return JSONResponse(body, status_code=200 if result.ok else 422)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        body = {"errors": [{"message": "Unexpected error.", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}
        return Response(orjson.dumps(body), status_code=500, media_type="application/json")

    routes: list[Route | Mount] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/admin/policy/reload", reload_policies, methods=["POST"]),
    ]
    if settings.dev:
        routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(BodySizeLimitMiddleware, max_bytes=settings.limits.max_body_bytes),
        Middleware(AuthenticationMiddleware, verifier=verifier),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers={500: server_error})


# ---------------------------------------------------------------------------------------------
# The command line: ``citygraph serve | token | demo-data | sdl | audit verify``
# ---------------------------------------------------------------------------------------------

cli = typer.Typer(help="CityGraph: one GraphQL graph over the city's department systems.", no_args_is_help=True)
audit_cli = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")
stream_cli = typer.Typer(help="Signed video stream URLs.", no_args_is_help=True)
cli.add_typer(stream_cli, name="stream")
cli.add_typer(policy_cli, name="policy")


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from config: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config: 8000).")] = None,
    subgraph: Annotated[
        str | None,
        typer.Option(help="Serve one connector (or 'gateway') as an Apollo Federation v2 subgraph."),
    ] = None,
) -> None:
    """Serve the gateway (or, with --subgraph, one subgraph of it) with uvicorn."""
    import functools

    import uvicorn

    settings = Settings()
    if subgraph is not None:
        from schema.federation import SubgraphError, check_subgraph_name

        try:
            check_subgraph_name(enable(settings.connectors, settings.data_dir), subgraph)
        except SubgraphError as exc:
            raise typer.BadParameter(str(exc), param_hint="--subgraph") from exc
    uvicorn.run(
        functools.partial(create_app, subgraph=subgraph) if subgraph else "gateway:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        proxy_headers=False,
    )


@cli.command()
def token(
    dept: Annotated[str, typer.Option(help="Department code, e.g. market_supervision.")] = "",
    roles: Annotated[str, typer.Option(help="Comma-separated roles, e.g. staff,district_officer.")] = "staff",
    districts: Annotated[str, typer.Option(help="Comma-separated jurisdiction adcodes, e.g. 330203.")] = "",
    clearance: Annotated[int, typer.Option(min=1, max=4, help="Clearance level 1-4.")] = 2,
    sub: Annotated[str, typer.Option(help="Subject (user id).")] = "dev-user",
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
) -> None:
    """Mint a development token (HS256 with the dev secret); prints it on stdout."""
    settings = Settings()
    if settings.auth.mode != "dev":
        typer.echo("tokens can only be minted in dev auth mode; production tokens come from the IdP", err=True)
        raise typer.Exit(2)
    split = [s for s in roles.split(",") if s], [d for d in districts.split(",") if d]
    typer.echo(
        mint_dev_token(
            settings.dev_secret(),
            settings.auth,
            subject=sub,
            department=dept,
            roles=split[0],
            districts=split[1],
            clearance=clearance,
            ttl_s=ttl,
        )
    )


@cli.command("demo-data")
def demo_data(
    scale: Annotated[int, typer.Option(help="Number of enterprises.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: the data folder).")] = None,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="Do nothing if the data exists.")] = False,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Also load the data into this empty PostgreSQL database (migrated first)."),
    ] = None,
    districts: Annotated[
        Path | None,
        typer.Option(
            "--districts",
            help="District boundary file (GeoPackage, Shapefile, GeoJSON; an 'adcode' per district) "
            "to use instead of the demo's Voronoi partition.",
        ),
    ] = None,
) -> None:
    """Generate the deterministic Ningbo demo data set (credit, license store, spatial layers, video library)."""
    from connectors.credit.demo import generate as credit_demo
    from connectors.license.demo import generate as license_demo
    from connectors.spatial.demo import generate as spatial_demo
    from connectors.video.demo import generate as video_demo

    folder = out or Settings().data_dir
    if districts is not None:
        from connectors.spatial.demo import read_boundaries

        try:  # checked before anything is written
            read_boundaries(districts)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    credit, license_ = folder / "credit.sqlite", folder / "license.sqlite"
    spatial = folder / "spatial.gpkg"
    if if_missing and credit.exists() and license_.exists():
        if not spatial.exists():  # data made before the spatial connector existed
            places = spatial_demo(spatial, credit_db=credit, seed=seed, boundaries=districts)
            typer.echo(f"wrote {sum(places.features.values())} features and {places.readings} readings to {spatial}")
        if not (folder / "video.sqlite").exists():  # data made before the video connector existed
            cams = video_demo(folder / "video.sqlite", spatial_gpkg=spatial, seed=seed)
            typer.echo(f"wrote {cams.cameras} cameras and {cams.recordings} recordings to {cams.path}")
        typer.echo(f"demo data present in {folder}")
        return
    folder.mkdir(parents=True, exist_ok=True)
    progress = sys.stderr.isatty()
    stats = credit_demo(credit, scale=scale, seed=seed, progress=progress)
    typer.echo(f"wrote {stats.enterprises} enterprises and {stats.records} credit records in {stats.seconds:.1f}s")
    # The license store reuses the credit platform's enterprises and legal representatives.
    licences = license_demo(license_, credit_db=credit, seed=seed, progress=progress)
    typer.echo(
        f"wrote {licences.enterprises} registrations, {licences.persons} persons and {licences.licenses} signed "
        f"licences in {licences.seconds:.1f}s to {folder}"
    )
    # The spatio-temporal cloud places the credit platform's enterprises on the map.
    places = spatial_demo(spatial, credit_db=credit, seed=seed, boundaries=districts)
    typer.echo(
        f"wrote {sum(places.features.values())} features in {len(places.features)} layers and {places.readings} "
        f"IoT readings in {places.seconds:.1f}s to {spatial}"
    )
    # Cameras along the streets of the districts and around the enterprises' locations.
    cams = video_demo(folder / "video.sqlite", spatial_gpkg=spatial, seed=seed)
    typer.echo(f"wrote {cams.cameras} cameras and {cams.recordings} recordings in {cams.seconds:.1f}s to {cams.path}")
    if to is not None:
        from sqlalchemy.engine import make_url

        from connectors.credit.tables import metadata as credit_metadata
        from connectors.demo_pg import copy_sqlite_to
        from connectors.license.tables import metadata as license_metadata
        from connectors.spatial.pgload import copy_gpkg_to
        from connectors.video.tables import metadata as video_metadata

        rows = copy_sqlite_to(to, credit, credit_metadata) + copy_sqlite_to(to, license_, license_metadata)
        rows += copy_sqlite_to(to, folder / "video.sqlite", video_metadata)
        rows += copy_gpkg_to(to, spatial)  # the spatial layers into PostGIS
        typer.echo(f"copied {rows} rows into {make_url(to).render_as_string(hide_password=True)}")


@cli.command("migrate")
def migrate_command(
    components: Annotated[
        list[str] | None,
        typer.Argument(help="credit, license, video, audit, spatial (PostGIS url only) (default: all)."),
    ] = None,
) -> None:
    """Upgrade each database's schema to the latest revision (Alembic; idempotent, adopts demo files)."""
    from sqlalchemy.engine import make_url

    from connectors.migrate import COMPONENTS, migrate

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # SQLite files default to the data folder
    urls = {
        n: str(settings.connectors.get(n, {}).get("url") or f"sqlite:///{settings.data_dir / f'{n}.sqlite'}")
        for n in ("credit", "license", "video")
    }
    urls["audit"] = settings.audit_url
    known = list(COMPONENTS)
    spatial_url = settings.connectors.get("spatial", {}).get("url")
    if spatial_url:  # the spatial connector on PostGIS (a GeoPackage has no schema to migrate)
        urls["spatial"] = str(spatial_url)
        known.append("spatial")
    for name in components or known:
        if name not in known:
            raise typer.BadParameter(f"unknown component {name!r}; one of {', '.join(known)}")
        migrate(name, urls[name])
        typer.echo(f"{name}: at head ({make_url(urls[name]).render_as_string(hide_password=True)})")


@cli.command("load")
def load_cli(
    connector: Annotated[str, typer.Argument(help="credit, license, video or spatial (PostGIS).")],
    source: Annotated[
        Path,
        typer.Option(
            "--from", help="CSV (UTF-8 or GB18030), GeoJSON or NDJSON; spatial: GeoPackage, Shapefile, GeoJSON."
        ),
    ],
    to: Annotated[str, typer.Option("--to", help="Target database URL (SQLite or PostgreSQL; migrated first).")],
    table: Annotated[
        str | None, typer.Option(help="Target table (default: the file's name stem); spatial: the layer.")
    ] = None,
    on_error: Annotated[
        str, typer.Option("--on-error", help="refuse: load nothing if a row is bad; skip: load the good rows.")
    ] = "refuse",
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 5000,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Continue after this file's last committed batch.")
    ] = True,
) -> None:
    """Check a department's export row by row and load it (exit 1: bad rows, 2: usage, 3: failed part-way)."""
    from connectors.load import load_command

    raise typer.Exit(load_command(connector, source, to, table, on_error, batch_size, resume))


@cli.command()
def sdl() -> None:
    """Print the schema (SDL) of the enabled connectors, with classification directives."""
    settings = Settings()
    built = build_schema(enable(settings.connectors, settings.data_dir), _limits(settings))
    typer.echo(str(built.schema))


@stream_cli.command("verify")
def stream_verify(
    url: Annotated[str, typer.Argument(help="The stream URL as the player presented it.")],
) -> None:
    """Check a signed stream URL (signature, target, expiry); exit 0 and print its grant, or 1 and why."""
    from connectors.video.connector import VideoConnector
    from connectors.video.streams import StreamRejected

    settings = Settings()
    connector = VideoConnector.from_config(settings.connectors.get("video", {}), settings.data_dir)
    try:
        grant = connector.signer.verify(url)
    except StreamRejected as exc:
        typer.echo(f"rejected: {exc}", err=True)
        raise typer.Exit(1) from None
    expires = datetime.fromtimestamp(grant.expires_at, UTC).isoformat()
    fields = ("path", "subject", "department", "purpose", "case_ref", "grant_id")
    typer.echo(orjson.dumps({**{f: getattr(grant, f) for f in fields}, "expires_at": expires}).decode())


@audit_cli.command("verify")
def audit_verify(
    url: Annotated[str | None, typer.Option(help="Audit database URL (default from config).")] = None,
) -> None:
    """Walk the hash chain; exit 1 and name the first broken record if any was edited or deleted."""
    from audit.cli import verify_command

    raise typer.Exit(verify_command(url or Settings().audit_url))


@audit_cli.command("export")
def audit_export(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    out: Annotated[Path | None, typer.Option(help="Output file (default: standard output).")] = None,
    url: Annotated[str | None, typer.Option(help="Audit database URL (default from config).")] = None,
    subject: Annotated[str | None, typer.Option()] = None,
    department: Annotated[str | None, typer.Option()] = None,
    purpose: Annotated[str | None, typer.Option()] = None,
    case_ref: Annotated[str | None, typer.Option()] = None,
    record_key: Annotated[str | None, typer.Option(help="Records that returned this key (USCC, record id...).")] = None,
    since: Annotated[datetime | None, typer.Option("--from", help="From this time (RFC 3339).")] = None,
    until: Annotated[datetime | None, typer.Option("--to", help="Up to this time (RFC 3339).")] = None,
) -> None:
    """Export the audit trail (oldest first), e.g. who read enterprise X's records, when and why."""
    from audit import AuditQuery
    from audit.cli import export_command

    if fmt not in ("jsonl", "csv"):
        raise typer.BadParameter("--format must be jsonl or csv")
    zone = [t.replace(tzinfo=t.tzinfo or UTC) if t else None for t in (since, until)]
    criteria = AuditQuery(subject, department, purpose, case_ref, record_key, zone[0], zone[1])
    target = url or Settings().audit_url
    if out is None:
        raise typer.Exit(export_command(target, criteria, fmt, sys.stdout))
    with out.open("w", encoding="utf-8", newline="") as handle:
        raise typer.Exit(export_command(target, criteria, fmt, handle))


configure_logging()

__all__ = ["Gateway", "cli", "create_app"]


if __name__ == "__main__":
    cli()
