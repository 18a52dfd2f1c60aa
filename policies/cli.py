"""``citygraph policy``: lint, test, eval, bundle and explain, for security officers."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import sys
import tarfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from graphql import GraphQLSchema

    from edge.settings import Settings
    from policies.embedded import EmbeddedEngine
    from policies.principal import Principal
    from resolvers.context import Runtime
    from schema.explain import Explanation

policy_cli = typer.Typer(help="Write, test and explain the access policies (Rego v1).", no_args_is_help=True)
REGO_DIR = Path("policies/rego")
RegoDir = Annotated[Path, typer.Option("--dir", help="The policy folder.")]


@policy_cli.command()
def lint(rego_dir: RegoDir = REGO_DIR) -> None:
    """Refuse what is not Rego v1 or what the embedded engine cannot evaluate safely."""
    from policies.lint import lint_bundle

    files = {str(p.relative_to(rego_dir)): p.read_text() for p in sorted(rego_dir.rglob("*.rego"))}
    issues = lint_bundle(files)
    for issue in issues:
        typer.echo(str(issue))
    typer.echo(f"{len(files)} files, {len(issues)} problems")
    raise typer.Exit(1 if issues or not files else 0)


@policy_cli.command()
def test(
    rego_dir: RegoDir = REGO_DIR,
    run: Annotated[str | None, typer.Option("--run", help="Only tests whose name matches this regex.")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Print every test, not just failures.")] = False,
) -> None:
    """Run the ``test_`` rules of ``*_test.rego`` like ``opa test``; exit 1 on failure or when none ran."""
    from policies.lint import lint_bundle
    from policies.regotest import run_tests

    # The linter refuses what crashes the embedded engine, so it runs first.
    issues = lint_bundle({str(p.relative_to(rego_dir)): p.read_text() for p in sorted(rego_dir.rglob("*.rego"))})
    if issues:
        for issue in issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(1)
    results = run_tests(rego_dir, run)
    for result in results:
        if verbose or result.status in ("FAIL", "ERROR"):
            detail = f" ({result.message})" if result.message else ""
            typer.echo(f"{result.full_name}: {result.status} ({result.duration * 1000:.1f}ms){detail}")
    counts = {s: sum(r.status == s for r in results) for s in ("PASS", "FAIL", "ERROR", "SKIP")}
    typer.echo("-" * 60)
    typer.echo(
        f"PASS: {counts['PASS']}/{len(results)}"
        + "".join(f", {k}: {v}" for k, v in counts.items() if v and k != "PASS")
    )
    ran = counts["PASS"] + counts["FAIL"] + counts["ERROR"]
    if ran == 0:
        typer.echo("no tests ran", err=True)
    raise typer.Exit(1 if counts["FAIL"] or counts["ERROR"] or ran == 0 else 0)


def _engine(rego_dir: Path) -> EmbeddedEngine:
    from policies.embedded import EmbeddedEngine

    engine = EmbeddedEngine(rego_dir)
    loaded = engine.load()
    if not loaded.ok:
        typer.echo("the policy bundle does not load:\n  " + "\n  ".join(loaded.errors), err=True)
        raise typer.Exit(2)
    return engine


@policy_cli.command("eval")
def eval_(
    input_file: Annotated[Path, typer.Option("--input", help="A JSON input document (see docs/policies.md).")],
    rego_dir: RegoDir = REGO_DIR,
) -> None:
    """Evaluate ``data.citygraph.authz.decision`` for an input document; prints the validated decision."""
    try:
        document = json.loads(input_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        typer.echo(f"cannot read {input_file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    engine = _engine(rego_dir)

    async def run() -> dict[str, object]:
        try:
            decision = await engine.decide(document)
        finally:
            await engine.aclose()
        return {"revision": engine.revision, "decision": _jsonable(asdict(decision))}

    typer.echo(json.dumps(asyncio.run(run()), ensure_ascii=False, indent=2))


def _jsonable(value: object) -> object:
    return json.loads(json.dumps(value, default=lambda v: dict(v) if hasattr(v, "items") else str(v)))


@policy_cli.command()
def bundle(
    rego_dir: RegoDir = REGO_DIR,
    out: Annotated[Path, typer.Option("--out", help="The bundle file to write.")] = Path("var/bundle.tar.gz"),
    revision: Annotated[
        str | None, typer.Option(help="Revision (default: the .manifest's, else a content hash).")
    ] = None,
) -> None:
    """Build an OPA bundle (tar.gz with ``.manifest``) after lint and tests pass: ``opa run --bundle`` loads it."""
    from policies.lint import lint_bundle
    from policies.regotest import run_tests

    files = {str(p.relative_to(rego_dir)): p.read_text() for p in sorted(rego_dir.rglob("*.rego"))}
    if lint_bundle(files) or any(r.status in ("FAIL", "ERROR") for r in run_tests(rego_dir)):
        typer.echo("refusing to bundle: run `citygraph policy lint` and `citygraph policy test`", err=True)
        raise typer.Exit(1)
    manifest_path = rego_dir / ".manifest"
    manifest = (
        json.loads(manifest_path.read_text()) if manifest_path.exists() else {"roots": ["citygraph"], "rego_version": 1}
    )
    data = rego_dir / "data.json"
    digest = hashlib.sha256()
    for name, text in sorted(files.items()):
        digest.update(name.encode() + b"\0" + text.encode() + b"\0")
    if data.exists():
        digest.update(data.read_bytes())
    manifest["revision"] = revision or manifest.get("revision") or f"sha256:{digest.hexdigest()[:12]}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        members = {".manifest": json.dumps(manifest, indent=2).encode()}
        members.update({f"/{name}": text.encode() for name, text in files.items() if not name.endswith("_test.rego")})
        if data.exists():
            members["/data.json"] = data.read_bytes()
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(payload), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(payload))
    typer.echo(f"wrote {out} (revision {manifest['revision']}, {len(members)} files)")


@policy_cli.command()
def contract(
    cases: Annotated[Path, typer.Option(help="Contract cases (OPA conformance-test YAML).")] = Path(
        "policies/contract/cases.yaml"
    ),
    url: Annotated[
        str | None, typer.Option(help="Replay against this OPA server instead of the embedded engine.")
    ] = None,
) -> None:
    """Replay the policy contract cases on the embedded engine, or against a real OPA server by URL."""
    from policies.contract.runner import contract_command

    raise typer.Exit(contract_command(cases, url))


def _principal_from_as(spec: str) -> Principal:
    """``dept,roles,districts,clearance`` with ``|`` between several roles or districts."""
    from edge.identity import InvalidToken, principal_from_claims

    parts = spec.split(",")
    if len(parts) != 4 or not parts[3].isdigit():
        raise typer.BadParameter(
            "--as wants dept,roles,districts,clearance e.g. market_supervision,staff|district_officer,330203,2"
        )
    claims = {
        "sub": "explain",
        "dept": parts[0],
        "roles": [r for r in parts[1].split("|") if r],
        "districts": [d for d in parts[2].split("|") if d],
        "clearance": int(parts[3]),
    }
    try:
        return principal_from_claims(claims)
    except InvalidToken as exc:
        raise typer.BadParameter(str(exc)) from exc


@policy_cli.command()
def explain(
    query_file: Annotated[Path, typer.Argument(help="A file holding the GraphQL operation.")],
    token: Annotated[str | None, typer.Option("--token", help="Explain for the principal of this token.")] = None,
    as_: Annotated[
        str | None, typer.Option("--as", help="Or for dept,roles,districts,clearance ('|' between several).")
    ] = None,
    purpose: Annotated[str | None, typer.Option(help="Declared purpose of use.")] = None,
    case_ref: Annotated[str | None, typer.Option(help="Case reference.")] = None,
    variables: Annotated[str | None, typer.Option(help="Variables as JSON.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Dry run: per coordinate allow / mask / deny, the row filter per type, reasons and revision. Reads no data."""
    from edge.identity import InvalidToken, TokenVerifier
    from edge.settings import Settings
    from policies.principal import PUBLIC, Purpose
    from schema.explain import ExplainError, explain as run_explain

    settings = Settings()
    principal = PUBLIC
    if token and as_:
        raise typer.BadParameter("give --token or --as, not both")
    if token:
        verifier = TokenVerifier(settings.auth, settings.dev_secret() if settings.auth.mode == "dev" else None)
        try:
            principal = verifier.verify(token)
        except InvalidToken as exc:
            raise typer.BadParameter(f"--token: {exc}") from exc
    elif as_:
        principal = _principal_from_as(as_)
    runtime, schema = _offline_runtime(settings)
    try:
        result = asyncio.run(
            run_explain(
                runtime,
                schema,
                query_file.read_text(),
                principal=principal,
                purpose=Purpose(purpose, case_ref),
                variables=json.loads(variables) if variables else None,
            )
        )
    except ExplainError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    finally:
        asyncio.run(runtime.engine.aclose())
    if as_json:
        typer.echo(json.dumps(_jsonable(asdict(result)), ensure_ascii=False, indent=2))
        return
    _print_explanation(result)


def _offline_runtime(settings: Settings) -> tuple[Runtime, GraphQLSchema]:
    """A runtime whose connectors are built but never opened: explain reads no department data."""
    from audit import AuditTrail
    from connectors.registry import enable
    from schema.builder import build_schema
    from schema.limits import Limits

    connectors = enable(settings.connectors, settings.data_dir)
    built = build_schema(connectors, Limits())
    engine = _engine(settings.policy.rego_dir)
    return built.runtime(connectors, engine, AuditTrail(settings.audit_url), {}), built.schema._schema


def _print_explanation(result: Explanation) -> None:
    console = Console(file=sys.stdout, width=160)
    console.print(f"policy revision {result.revision}; operation {result.operation or '(anonymous)'}")
    fields = Table("coordinate", "level", "decision", "action", "code / mask")
    for v in result.coordinates:
        fields.add_row(v.coordinate, f"L{v.level}", f"{v.connector}/{v.type}", v.action, v.code or v.mask or "")
    console.print(fields)
    types = Table("decision", "allow", "row filter", "obligations", "reasons")
    for t in result.types:
        types.add_row(
            f"{t.connector}/{t.type}",
            "yes" if t.allow else f"no ({t.code})",
            json.dumps(t.filter, ensure_ascii=False),
            json.dumps(dict(t.obligations), ensure_ascii=False),
            "; ".join(t.reasons),
        )
    console.print(types)


__all__ = ["policy_cli"]
