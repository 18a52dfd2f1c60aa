"""``OpaEngine``: the ``PolicyEngine`` backed by an OPA server's Data API.

Each decision is one ``POST /v1/data/citygraph/authz/decision?provenance=true`` with body
``{"input": <input document>}``, sent through opa-python-client's ``AsyncOpaClient.query_rule``
(aiohttp). The contract, every failure a deny, never an exception:

* ``POLICY_UNAVAILABLE`` (OPA could not answer): connection refused or reset, TLS failure, timeout
  (``OpaSettings.timeout_s`` bounds the whole call, waiting for a pooled connection included), any
  status other than 200 (redirects are not followed), a body that is not a JSON object, a response
  carrying ``warning.code == "api_usage_warning"`` (OPA did not see our input, so its answer is not
  about this request), and every call refused by the open circuit breaker;
* ``FORBIDDEN`` (OPA answered, the answer grants nothing): an undefined result (no ``result`` key),
  an input document the embedded engine would refuse too (``policies.embedded.encode_input``: too
  deep, imprecise integers, NaN, non-JSON values; so both engines accept the same inputs), and
  whatever ``parse_decision`` refuses or the policy denies.

Circuit breaker: ``breaker_failures`` consecutive ``POLICY_UNAVAILABLE`` outcomes open it for
``breaker_open_s`` seconds, during which decisions deny at once without calling OPA. Then one trial
call goes through (half-open; concurrent calls keep being denied): success closes the breaker,
failure opens it again. An answered request (undefined or malformed decisions included) counts as
a success: OPA is up, the policy is what is wrong.

Revision: OPA reports the active bundle revisions inline when asked with ``?provenance=true``
(``provenance.bundles.<name>.revision``, or ``provenance.revision`` for a legacy single bundle).
``GET /health?bundles`` only says whether bundles are active, and ``GET /v1/status`` needs OPA's
status plugin, so every decision asks for provenance and ``status()`` reports the revision of the
latest answer, ``"opa:unknown"`` before the first one (``probe()`` fetches it eagerly).

One engine per event loop: its aiohttp session is created on first use, in the running loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from opa_client.opa_async import AsyncOpaClient

from policies.decision import Decision, parse_decision
from policies.embedded import InputRejected, encode_input
from policies.engine import ENTRYPOINT, EngineStatus

logger = logging.getLogger(__name__)

#: Reported as the revision until OPA has told us one.
UNKNOWN_REVISION = "opa:unknown"
#: The environment variable the CLI reads the bearer token from (``OpaSettings.token_env``).
DEFAULT_TOKEN_ENV = "CITYGRAPH_OPA_TOKEN"  # noqa: S105  # a variable name, not a secret
_UNAVAILABLE = "POLICY_UNAVAILABLE"
_PACKAGE, _, _RULE = ENTRYPOINT.rpartition("/")


class OpaConfigError(ValueError):
    """The OPA settings cannot work (raised at construction, never by ``decide``)."""


@dataclass(frozen=True, slots=True)
class OpaSettings:
    """Where OPA is and how to talk to it.

    ``token_env`` names the environment variable holding the bearer token (OPA's
    ``--authentication=token``); the token itself never appears in settings. ``ca_file`` verifies
    OPA's certificate against a private CA (system CAs otherwise); ``client_cert`` and
    ``client_key`` together enable mTLS (``--authentication=tls``). Both need ``scheme="https"``.
    """

    host: str = "127.0.0.1"
    port: int = 8181
    scheme: Literal["http", "https"] = "http"
    token_env: str | None = None
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout_s: float = 0.5
    max_connections: int = 32
    breaker_failures: int = 5
    breaker_open_s: float = 10.0

    def __post_init__(self) -> None:
        if self.scheme not in ("http", "https"):
            raise OpaConfigError(f"scheme must be http or https, not {self.scheme!r}")
        if not self.host or "/" in self.host:
            raise OpaConfigError(f"host must be a host name or address, not {self.host!r}")
        if not 0 < self.port < 65536:
            raise OpaConfigError(f"port {self.port} out of range")
        if (self.client_cert is None) != (self.client_key is None):
            raise OpaConfigError("client_cert and client_key go together (mTLS)")
        if self.scheme == "http" and (self.ca_file or self.client_cert):
            raise OpaConfigError("ca_file and client certificates need scheme https")
        if self.timeout_s <= 0 or self.breaker_open_s <= 0:
            raise OpaConfigError("timeout_s and breaker_open_s must be positive")
        if self.max_connections < 1 or self.breaker_failures < 1:
            raise OpaConfigError("max_connections and breaker_failures must be at least 1")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> OpaSettings:
        """Settings for ``http(s)://host:port`` (no path), plus any other field by keyword."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
            raise OpaConfigError(f"OPA URL must look like http(s)://host:port, not {url!r}")
        scheme: Literal["http", "https"] = "https" if parts.scheme == "https" else "http"
        port = parts.port or (443 if scheme == "https" else 8181)
        return cls(host=parts.hostname, port=port, scheme=scheme, **options)

    @property
    def base_url(self) -> str:
        """``scheme://host:port``, for messages."""
        return f"{self.scheme}://{self.host}:{self.port}"


class OpaHttpError(Exception):
    """OPA answered with something other than a plain 200."""

    def __init__(self, status: int, redirected: bool = False) -> None:
        super().__init__(f"OPA answered HTTP {status}" + (" after a redirect" if redirected else ""))
        self.status = status


async def _require_200(response: aiohttp.ClientResponse) -> None:
    """aiohttp ``raise_for_status`` hook: only a direct 200 is an answer from OPA."""
    if response.status != 200 or response.history:
        raise OpaHttpError(response.status, redirected=bool(response.history))


def _ssl_context(settings: OpaSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.client_cert is not None and settings.client_key is not None:
        context.load_cert_chain(str(settings.client_cert), str(settings.client_key))
    return context


class _CityOpaClient(AsyncOpaClient):  # type: ignore[misc]  # opa_client ships no type hints
    """``AsyncOpaClient`` with the session CityGraph needs; requests still go through the library.

    opa-python-client 3.0.0 builds its aiohttp session in ``_init_session`` with
    ``ssl.create_default_context()`` (system CAs only, no private CA file), aiohttp's default pool
    of 100 connections, and no status check beyond ``query_rule``'s ``raise_for_status()``, which
    lets 2xx/3xx answers through and follows redirects. Overriding only ``_init_session`` gives a
    private CA, mTLS, a bounded pool and a session-wide hook that refuses anything but a direct 200
    (aiohttp closes the connection of a refused response, so the pool slot is freed).
    """

    def __init__(self, settings: OpaSettings, token: str | None) -> None:
        # retries=0: the library would retry connection errors with 0.3 s + 0.6 s sleeps, far past
        # a decision's budget; the breaker handles an OPA that is down.
        super().__init__(
            host=settings.host,
            port=settings.port,
            ssl=settings.scheme == "https",
            token=token,
            retries=0,
            timeout=settings.timeout_s,
        )
        self._city_settings = settings

    async def _init_session(self) -> None:
        settings = self._city_settings
        self._connector = aiohttp.TCPConnector(
            limit=settings.max_connections,
            ssl=_ssl_context(settings) if settings.scheme == "https" else True,
        )
        self._session = aiohttp.ClientSession(
            headers=self.headers,
            connector=self._connector,
            timeout=aiohttp.ClientTimeout(total=settings.timeout_s),
            raise_for_status=_require_200,
        )


class OpaEngine:
    """The OPA-backed ``PolicyEngine`` (see the module docstring for the full contract)."""

    def __init__(self, settings: OpaSettings) -> None:
        """Read the token now, so a missing variable fails at startup (``OpaConfigError``)."""
        token: str | None = None
        if settings.token_env is not None:
            token = os.environ.get(settings.token_env) or None
            if token is None:
                raise OpaConfigError(f"environment variable {settings.token_env} (OPA bearer token) is not set")
        self._settings = settings
        self._token = token
        self._client: _CityOpaClient | None = None
        self._client_lock = asyncio.Lock()
        self._closed = False
        self._failures = 0
        self._open_until: float | None = None  # set while open or half-open
        self._trial_running = False
        self._revision = UNKNOWN_REVISION
        self._last_error = ""

    @property
    def settings(self) -> OpaSettings:
        """The settings this engine was built with."""
        return self._settings

    # --- deciding ------------------------------------------------------------------------

    async def decide(self, input_doc: Mapping[str, object]) -> Decision:
        """Ask OPA for ``ENTRYPOINT``; every failure is a deny, nothing raises."""
        if self._closed:
            return Decision.deny("policy engine closed", code=_UNAVAILABLE)
        try:
            payload = json.loads(encode_input(input_doc))  # plain JSON, checked like the embedded engine
        except InputRejected as exc:
            return Decision.deny(f"input rejected: {exc}")
        admitted = self._admit()
        if admitted is None:
            return Decision.deny("OPA circuit breaker open", code=_UNAVAILABLE)
        try:
            decision, answered = await self._ask(payload)
        finally:  # a cancelled trial must not leave the breaker waiting for it forever
            if admitted == "trial":
                self._trial_running = False
        self._record(answered)
        return decision

    async def _ask(self, payload: object) -> tuple[Decision, bool]:
        """The decision, and whether OPA really answered (what the breaker counts)."""
        try:
            body = await self._query(payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # connection, TLS, timeout, status, JSON: all mean no answer
            return self._unavailable(_describe(exc)), False
        if not isinstance(body, Mapping):
            return self._unavailable("response body is not a JSON object"), False
        if _usage_warning(body):
            # OPA evaluated without our input: whatever it returned is not about this request.
            return self._unavailable("api_usage_warning: OPA did not see the input"), False
        self._note_revision(body.get("provenance"))
        if "result" not in body:
            return Decision.deny("policy result undefined"), True
        return parse_decision(body["result"]), True

    def _unavailable(self, reason: str) -> Decision:
        self._last_error = reason
        return Decision.deny(f"OPA unavailable: {reason}", code=_UNAVAILABLE)

    async def _query(self, payload: object) -> object:
        async with asyncio.timeout(self._settings.timeout_s):
            client = await self._session()
            body: object = await client.query_rule(
                input_data=payload, package_path=_PACKAGE, rule_name=_RULE, query_params={"provenance": "true"}
            )
            return body

    async def _session(self) -> _CityOpaClient:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    client = _CityOpaClient(self._settings, self._token)
                    await client._init_session()
                    self._client = client
        return self._client

    # --- circuit breaker -----------------------------------------------------------------

    def _admit(self) -> Literal["call", "trial"] | None:
        """Whether a call may go to OPA now (``None``: no); claims the half-open trial slot when it is due."""
        if self._open_until is None:
            return "call"
        if self._trial_running or time.monotonic() < self._open_until:
            return None
        self._trial_running = True
        return "trial"

    def _record(self, success: bool) -> None:
        if success:
            if self._open_until is not None:
                logger.info("OPA at %s answers again: circuit breaker closed", self._settings.base_url)
            self._failures = 0
            self._open_until = None
            self._last_error = ""
            return
        self._failures += 1
        if self._failures >= self._settings.breaker_failures:
            if self._open_until is None or time.monotonic() >= self._open_until:
                logger.warning(
                    "OPA at %s failed %d times in a row (%s): circuit breaker open for %gs",
                    self._settings.base_url,
                    self._failures,
                    self._last_error,
                    self._settings.breaker_open_s,
                )
            self._open_until = time.monotonic() + self._settings.breaker_open_s

    @property
    def breaker_open(self) -> bool:
        """Whether decisions are currently denied without asking OPA (half-open counts as open)."""
        return self._open_until is not None

    # --- reporting -----------------------------------------------------------------------

    def _note_revision(self, provenance: object) -> None:
        revision = _revision_of(provenance)
        if revision is not None and revision != self._revision:
            logger.info("OPA at %s serves policy revision %s", self._settings.base_url, revision)
            self._revision = revision

    @property
    def revision(self) -> str:
        """The bundle revision OPA last reported, ``"opa:unknown"`` until it has."""
        return self._revision

    def status(self) -> EngineStatus:
        parts = [f"OPA {self._settings.base_url}"]
        if self._closed:
            parts.append("closed")
        if self._open_until is not None:
            parts.append(f"circuit breaker open after {self._failures} failures")
        if self._last_error:
            parts.append(f"last error: {self._last_error}")
        ready = not self._closed and self._open_until is None
        return EngineStatus(ready=ready, revision=self._revision, detail="; ".join(parts))

    async def probe(self) -> EngineStatus:
        """Ask OPA once (``{"input": {}}``, which every CityGraph bundle denies) to learn its revision.

        Bypasses the breaker and leaves it as it is; for startup and readiness checks.
        """
        if not self._closed:
            try:
                body = await self._query({})
            except Exception as exc:  # a probe reports, it never raises
                self._last_error = _describe(exc)
            else:
                if isinstance(body, Mapping):
                    self._note_revision(body.get("provenance"))
        return self.status()

    async def aclose(self) -> None:
        """Deny from now on and close the HTTP session."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.close_connection()


def _usage_warning(body: object) -> bool:
    if not isinstance(body, Mapping):
        return False
    warning = body.get("warning")
    return isinstance(warning, Mapping) and warning.get("code") == "api_usage_warning"


def _revision_of(provenance: object) -> str | None:
    """The revision in OPA's ``provenance``: one bundle's, ``name=rev`` pairs for several, or legacy."""
    if not isinstance(provenance, Mapping):
        return None
    bundles = provenance.get("bundles")
    if isinstance(bundles, Mapping) and bundles:
        revisions = {
            str(name): info["revision"]
            for name, info in bundles.items()
            if isinstance(info, Mapping) and isinstance(info.get("revision"), str)
        }
        if len(revisions) == 1:
            return next(iter(revisions.values())) or None
        if revisions:
            return ",".join(f"{name}={revision}" for name, revision in sorted(revisions.items()))
    legacy = provenance.get("revision")
    return legacy if isinstance(legacy, str) and legacy else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


__all__ = [
    "DEFAULT_TOKEN_ENV",
    "UNKNOWN_REVISION",
    "OpaConfigError",
    "OpaEngine",
    "OpaHttpError",
    "OpaSettings",
]
