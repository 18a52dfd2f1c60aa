"""Gateway settings: ``citygraph.toml``, overridden by ``CITYGRAPH_*`` environment variables.

Nested keys use ``__`` in the environment, e.g. ``CITYGRAPH_AUTH__MODE=jwks``. Secrets are
never written in the file: the dev HMAC secret comes from ``CITYGRAPH_AUTH__SECRET`` or is
generated once into the git-ignored data folder.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE = Path(os.environ.get("CITYGRAPH_CONFIG", "citygraph.toml"))


class AuthSettings(BaseModel):
    """Bearer-token verification. ``dev``: HS256 with a local secret; ``jwks``: RS256/ES256 keys."""

    mode: Literal["dev", "jwks"] = "dev"
    secret: SecretStr | None = None
    jwks_url: str | None = None
    jwks_file: Path | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    issuer: str = "citygraph-dev"
    audience: str = "citygraph"
    leeway_s: int = 30


class DecisionLogSettings(BaseModel):
    """OPA-format decision logs (policies/decisionlog.py); off unless ``file`` or ``url`` is set."""

    file: Path | None = None  # e.g. var/decisions.jsonl
    max_bytes: int = 100_000_000
    backups: int = 5
    url: str | None = None  # an OPA-compatible /logs endpoint
    token: SecretStr | None = None  # sent as a bearer token; from CITYGRAPH_POLICY__DECISION_LOG__TOKEN
    batch_size: int = 100
    flush_interval_s: float = 5.0
    max_queue: int = 10_000
    instance_id: str | None = None  # labels.id; default a uuid4 per process
    mask: bool = True  # apply data.system.log.mask from the policy folder


class OpaServerSettings(BaseModel):
    """An OPA server as the policy engine (``policy.engine = "opa"``); see policies/opa.py."""

    url: str = "http://127.0.0.1:8181"
    token_env: str | None = None  # the NAME of the variable holding the bearer token
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout_s: float = 0.5
    max_connections: int = 32
    breaker_failures: int = 5
    breaker_open_s: float = 10.0


class PolicySettings(BaseModel):
    """Which engine decides, the bundle folder, and the per-decision timeout."""

    engine: Literal["embedded", "opa"] = "embedded"
    opa: OpaServerSettings = Field(default_factory=OpaServerSettings)
    rego_dir: Path = Path("policies/rego")
    timeout_s: float = 0.5
    #: Poll the folder for changes this often (seconds); 0 turns file watching off.
    watch_interval_s: float = 2.0
    #: Cache decisions this long per process (seconds; 0 = off). See policies/cache.py.
    cache_ttl_s: float = 30.0
    decision_log: DecisionLogSettings = Field(default_factory=DecisionLogSettings)


class AuditSettings(BaseModel):
    """Where the hash-chained audit trail is written (any SQLAlchemy async URL)."""

    url: str | None = None
    #: PostgreSQL: an append waiting longer for another replica's write lock fails (closed).
    lock_timeout_s: float = 30.0
    #: PostgreSQL: the server ends a write transaction idle this long (a frozen replica), freeing the lock.
    idle_timeout_s: float = 10.0


class LimitSettings(BaseModel):
    """Request ceilings; over any of them a request is refused."""

    max_body_bytes: int = 1_000_000
    max_depth: int = 10
    max_aliases: int = 15
    max_cost: int = 50_000
    max_tokens: int = 2_000
    max_page_size: int = 500


class ExecutionSettings(BaseModel):
    """How operations execute; ``compiled`` lists are identical in result, only faster."""

    compiled: bool = True


class Settings(BaseSettings):
    """All gateway settings; see ``citygraph.toml`` for the documented defaults."""

    model_config = SettingsConfigDict(env_prefix="CITYGRAPH_", env_nested_delimiter="__", extra="forbid")

    dev: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("var")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    #: uvicorn's plain-text line per HTTP request. Off by default: the audit trail records every
    #: sensitive read with its request id, /metrics counts requests, and the line costs about 2.5%
    #: of a small request's CPU. Turn it on where no proxy in front keeps an access log; its lines
    #: are info lines, so they need log_level info or debug.
    access_log: bool = False
    auth: AuthSettings = Field(default_factory=AuthSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    connectors: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {
            "credit": dict[str, Any](),
            "license": dict[str, Any](),
            "spatial": dict[str, Any](),
            "video": dict[str, Any](),
        }
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=CONFIG_FILE)
        return (init_settings, env_settings, toml)

    @property
    def audit_url(self) -> str:
        """The audit database URL (default: a SQLite file in the data folder)."""
        return self.audit.url or f"sqlite+aiosqlite:///{self.data_dir / 'audit.sqlite'}"

    def dev_secret(self) -> str:
        """The HS256 secret for dev tokens: configured, or generated once into the data folder."""
        if self.auth.secret is not None:
            return self.auth.secret.get_secret_value()
        path = self.data_dir / "dev-jwt-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside, then linked into place (fails if present): replicas starting together
            # on one data folder agree on the first secret and never read a half-written one.
            draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text().strip()


__all__ = ["CONFIG_FILE", "AuditSettings", "AuthSettings", "LimitSettings", "PolicySettings", "Settings"]
