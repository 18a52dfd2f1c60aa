"""An OPA-REST-compatible test harness: OPA's Data API answered by regopy, in process.

No OPA binary can be installed here, so ``OpaEngine`` and the contract runner are tested against
this Starlette app, which serves a policy folder (read like the embedded engine reads it: every
non-test ``*.rego`` plus the top-level ``data.json``) the way ``opa run --server --bundle <dir>``
answers (OPA v1 REST API):

* ``POST /v1/data/{path}`` with ``{"input": ...}`` -> ``200 {"result": <raw value>}``; an undefined
  document -> ``200 {}`` (no ``result``); a missing or ``null`` input -> evaluated without input
  and ``"warning": {"code": "api_usage_warning", ...}`` added; ``?provenance`` (empty or ``true``)
  -> ``"provenance": {"version": ..., "bundles": {<dir as given>: {"revision": <.manifest revision>}}}``;
  a body that is not a JSON object -> ``400 {"code": "invalid_parameter"}``; an evaluation error
  (conflict, strict builtin error) -> ``500 {"code": "internal_error"}``.
* ``GET /health`` -> ``200 {}`` (the bundle is active from the start, so ``?bundles`` changes nothing).
* ``POST /v1/compile`` and ``/v1/compile/{path}`` -> ``501``: regopy has no partial evaluation.

Where it differs from OPA (test infrastructure, kept small): the raw value is what regopy returns
(see the engine differences in the research notes); inputs the embedded engine refuses
(``encode_input``: too deep, imprecise integers) get a 400 rather than risk crashing regopy;
paths whose segments are not Rego identifiers read as undefined; no ``decision_id``, ``metrics``
or ``explain``. Optional: a bearer token every ``/v1`` request must carry (401 otherwise), and
HTTPS with a client certificate demanded (``HarnessTLS``), to test the engine's TLS and mTLS.

``RawEvaluator`` is the evaluation part on its own (the contract runner uses it too). Test hooks:
``OpaHarness.calls`` counts ``POST /v1/data`` requests; ``OpaHarness.fault`` replaces evaluation
with a canned (optionally slow) answer. ``HarnessServer`` runs the app under uvicorn in a
background thread; ``kill()`` drops every connection at once to simulate OPA dying mid-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from regopy import Bundle, Interpreter
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from policies.embedded import InputRejected, encode_input
from policies.regotest import is_test_module, new_interpreter, read_sources, to_rego_json

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Bundles compiled for distinct paths are cached; past this many, new paths are refused.
MAX_PATHS = 64
HARNESS_VERSION = "citygraph-opa-harness"


@dataclass(frozen=True, slots=True)
class Fault:
    """A canned answer to ``POST /v1/data``, after ``delay_s`` seconds.

    ``body`` (JSON) or ``text`` (raw, ``text/plain``) replace evaluation; with neither, a 200 is
    evaluated normally after the delay and any other status gets OPA's error shape.
    """

    status: int = 200
    body: object = None
    text: str | None = None
    delay_s: float = 0.0


class EvaluationError(Exception):
    """regopy reported an error (``ok() == False``), or a path could not be compiled."""


class RawEvaluator:
    """OPA's view of a policy: the raw value of ``data.<path>`` for an input, undefined included.

    The embedded engine's machinery (one compiled ``Bundle`` shared by threads, one strict
    interpreter per thread, ``query_bundle_entrypoint``), but returning the value as the policy
    produced it rather than a validated ``Decision``. A bundle is compiled per requested path, on
    first use (a few milliseconds), and cached.
    """

    def __init__(self, modules: Mapping[str, str], data_json: str | None) -> None:
        """Compile ``modules`` (path -> text; ``*_test.rego`` are left out) with ``data_json``.

        Raises ``RegoError`` or ``ValueError`` when they do not load.
        """
        self._compiler = new_interpreter()  # builds bundles only, under _build_lock
        if data_json is not None:
            self._compiler.add_data_json(
                to_rego_json(json.loads(data_json))
            )  # re-encoded: regopy keeps \uXXXX literally
        for path in sorted(modules):
            if not is_test_module(path):
                self._compiler.add_module(path, modules[path])
        self._bundles: dict[str, Bundle | None] = {}
        self._build_lock = threading.Lock()
        self._local = threading.local()

    @classmethod
    def from_dir(cls, rego_dir: str | Path) -> RawEvaluator:
        """The policies under ``rego_dir``, read like the embedded engine reads them."""
        return cls(*read_sources(rego_dir))

    def _bundle(self, path: str) -> Bundle | None:
        """The bundle compiled for entrypoint ``path``; ``None`` if no such rule can exist."""
        with self._build_lock:
            if path not in self._bundles:
                if len(self._bundles) >= MAX_PATHS:
                    raise EvaluationError(f"at most {MAX_PATHS} distinct paths are served")
                valid = all(_IDENTIFIER.match(segment) for segment in path.split("/"))
                bundle = self._compiler.build(None, [path]) if valid else None
                if bundle is not None and not bundle.ok():
                    raise EvaluationError(f"bundle for {path} did not build")
                self._bundles[path] = bundle
            return self._bundles[path]

    def evaluate(self, path: str, input_json: str | None) -> tuple[bool, object]:
        """``(defined, value)`` of ``data.<path>`` (``a/b/c``) for the input (JSON text; ``None``: no input).

        Raises ``EvaluationError`` on evaluation errors; regopy's own exceptions pass through.
        """
        bundle = self._bundle(path)
        if bundle is None:
            return False, None
        rego = new_interpreter() if input_json is None else self._interpreter()  # a fresh one has no input
        try:
            if input_json is not None:
                rego.set_input_term(input_json)
            output = rego.query_bundle_entrypoint(bundle, path)
        except BaseException:
            self._local.rego = None  # do not reuse an interpreter that just failed
            raise
        if not output.ok():
            raise EvaluationError("policy evaluation error (conflict or strict builtin error)")
        expressions = output[0].expressions if str(output) != "undefined" and len(output) == 1 else []
        return (True, expressions[0]) if len(expressions) == 1 else (False, None)

    def _interpreter(self) -> Interpreter:
        """One interpreter per thread: a shared one segfaults, a shared Bundle does not."""
        rego: Interpreter | None = getattr(self._local, "rego", None)
        if rego is None:
            rego = self._local.rego = new_interpreter()
        return rego


class OpaHarness:
    """The Starlette app (``.app``) serving one policy folder OPA-style, with the test hooks."""

    def __init__(self, rego_dir: str | Path, *, bundle_name: str | None = None, token: str | None = None) -> None:
        """``token``: demand ``Authorization: Bearer <token>`` on ``/v1/*``, as an OPA run with
        ``--authentication=token --authorization=basic`` and a token-checking ``system.authz`` does."""
        self.evaluator = RawEvaluator.from_dir(rego_dir)
        self._token = token
        manifest_path = Path(rego_dir) / ".manifest"
        manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
        revision = manifest.get("revision", "") if isinstance(manifest, dict) else ""
        #: As ``opa run --bundle <dir>`` names it in ``provenance``: the directory as given.
        self.bundle_name = bundle_name or str(rego_dir)
        self.revision = revision if isinstance(revision, str) else ""
        #: ``POST /v1/data`` requests received, faulted ones included.
        self.calls = 0
        #: When set, answers every ``POST /v1/data`` instead of the policy.
        self.fault: Fault | None = None
        self._killed = asyncio.Event()  # binds to the serving loop on first use
        self.app = Starlette(
            routes=[
                Route("/v1/data/{path:path}", self._data, methods=["POST"]),
                Route("/health", self._health, methods=["GET"]),
                Route("/v1/compile", self._compile, methods=["POST"]),
                Route("/v1/compile/{path:path}", self._compile, methods=["POST"]),
            ]
        )

    @property
    def killed(self) -> bool:
        """Whether ``HarnessServer.kill()`` has reset every connection."""
        return self._killed.is_set()

    # --- endpoints -----------------------------------------------------------------------

    def _unauthorized(self, request: Request) -> Response | None:
        if self._token is None:
            return None
        supplied = request.headers.get("authorization", "")
        if hmac.compare_digest(supplied.encode(), f"Bearer {self._token}".encode()):
            return None
        return _error(401, "unauthorized", "request rejected by administrative policy")

    async def _data(self, request: Request) -> Response:
        self.calls += 1
        if (refused := self._unauthorized(request)) is not None:
            return refused
        try:
            raw = await request.body()  # read first: a slow fault must not outlive the client's body
        except ClientDisconnect:
            return Response(status_code=499)
        fault = self.fault
        if fault is not None:
            if fault.delay_s:
                # Wait on the kill event rather than sleep, so a killed server's handlers end quietly
                # instead of being cancelled (which uvicorn logs as an ASGI exception).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._killed.wait(), fault.delay_s)
                if self.killed:
                    return Response(status_code=503)  # never delivered: the connection is gone
            if fault.text is not None:
                return PlainTextResponse(fault.text, status_code=fault.status)
            if fault.body is not None:
                return JSONResponse(fault.body, status_code=fault.status)
            if fault.status != 200:
                return _error(fault.status, "internal_error", "injected fault")
        try:
            body = json.loads(raw or b"{}")  # an empty body is a request without input, as in OPA
        except ValueError as exc:
            return _error(400, "invalid_parameter", f"body is not JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "invalid_parameter", "body must be a JSON object")
        value = body.get("input")
        input_json: str | None = None
        if value is not None:  # OPA reads "input": null as a missing input too
            try:
                encode_input({"input": value})  # the embedded engine's checks; the input may be any JSON value
            except InputRejected as exc:
                return _error(400, "invalid_parameter", f"input refused by the harness: {exc}")
            input_json = to_rego_json(value)
        path = request.path_params["path"].strip("/")
        if not path:
            return _error(400, "invalid_parameter", "the harness serves rule paths only, not all of data")
        try:
            defined, result = await run_in_threadpool(self.evaluator.evaluate, path, input_json)
        except EvaluationError as exc:
            return _error(500, "internal_error", str(exc))
        except Exception as exc:  # RegoError, undecodable engine output: OPA's 500 shape, not a traceback
            return _error(500, "internal_error", f"policy engine error: {type(exc).__name__}")
        answer: dict[str, object] = {}
        if defined:
            answer["result"] = result
        if input_json is None:
            answer["warning"] = {"code": "api_usage_warning", "message": "'input' key missing from the request"}
        if _bool_param(request, "provenance"):
            answer["provenance"] = {
                "version": HARNESS_VERSION,
                "bundles": {self.bundle_name: {"revision": self.revision}},
            }
        return JSONResponse(answer)

    async def _health(self, request: Request) -> Response:
        return JSONResponse({})

    async def _compile(self, request: Request) -> Response:
        if (refused := self._unauthorized(request)) is not None:
            return refused
        return _error(501, "not_implemented", "the OPA test harness has no Compile API (no partial evaluation)")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _bool_param(request: Request, name: str) -> bool:
    """OPA's reading of a boolean query parameter: present and empty, or ``true`` (any case)."""
    values = request.query_params.getlist(name)
    return values == [""] or any(value.lower() == "true" for value in values)


class _Server(uvicorn.Server):
    """uvicorn's server, remembering its event loop so ``kill()`` can reach its connections."""

    loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)


@dataclass(frozen=True, slots=True)
class HarnessTLS:
    """Serve HTTPS with this certificate; with ``client_ca``, demand a client certificate it signed (mTLS)."""

    certfile: Path
    keyfile: Path
    client_ca: Path | None = None


class HarnessServer:
    """An ``OpaHarness`` served by uvicorn in a background thread (also a context manager)."""

    def __init__(
        self,
        rego_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        tls: HarnessTLS | None = None,
    ) -> None:
        self.harness = OpaHarness(rego_dir, token=token)
        self._host = host
        self._port = port
        self._tls = tls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        """Bind (``port=0``: a free port), serve, and return the base URL once it accepts requests."""
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        host, port = sock.getsockname()[:2]
        tls = self._tls
        config = uvicorn.Config(
            self.harness.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            ssl_certfile=tls.certfile if tls else None,
            ssl_keyfile=tls.keyfile if tls else None,
            ssl_ca_certs=str(tls.client_ca) if tls and tls.client_ca else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if tls and tls.client_ca else ssl.CERT_NONE,
        )
        server = _Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="opa-harness", daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                server.should_exit = True
                sock.close()
                raise RuntimeError("OPA harness did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
        return self.url

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (2 s at most), and join the thread."""
        self._shutdown(abrupt=False)

    def kill(self) -> None:
        """Stop at once, like a crashed OPA: connections in flight are reset, new ones refused."""
        self._shutdown(abrupt=True)

    def _shutdown(self, *, abrupt: bool) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = None  # the thread stays referenced, so ``running`` tells if it really ended
        if abrupt and server.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closing
                server.loop.call_soon_threadsafe(_abort_connections, server, self.harness)
            server.force_exit = True
        server.should_exit = True
        thread.join(timeout=10)

    def __enter__(self) -> HarnessServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _abort_connections(server: uvicorn.Server, harness: OpaHarness) -> None:
    """On the server's loop: reset every connection, then let slow handlers give up."""
    for connection in list(server.server_state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()  # RST, not FIN: the client sees the connection die mid-request
    harness._killed.set()


@contextlib.contextmanager
def serve_harness(rego_dir: str | Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``rego_dir`` OPA-style until the block ends; yields the base URL (``http://host:port``).

    Use ``HarnessServer`` directly for the test hooks (``harness.calls``, ``harness.fault``, ``kill()``).
    """
    with HarnessServer(rego_dir, host, port) as server:
        yield server.url


__all__ = [
    "HARNESS_VERSION",
    "MAX_PATHS",
    "EvaluationError",
    "Fault",
    "HarnessServer",
    "HarnessTLS",
    "OpaHarness",
    "RawEvaluator",
    "serve_harness",
]
