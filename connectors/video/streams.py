"""Signed stream URLs: issued per principal, purpose and case; verified by media servers.

A URL names one stream (a camera's live stream, or one recording's playback) and carries who
it was issued to, why, until when, and an HMAC over all of it::

    https://media.example.invalid/hls/live/33020301001320000001/index.m3u8
        ?v=1&kid=1a2b3c4d&sub=alice&dept=public_security&purpose=case_investigation
        &case=NB-2026-0042&exp=1795000300&jti=5f0c...&sig=<64 hex>

``sig`` is HMAC-SM3 (GB/T 32905 in HMAC, RFC 2104) over the canonical form: the scheme, the host
and port, the path and every other parameter in the fixed order of :data:`PARAMS`, one per line.
Changing any of them (another camera, another host, a longer ``exp``, another subject) breaks the
signature. :meth:`StreamSigner.verify` is what a media server (or ``citygraph stream verify``)
calls; it raises :class:`StreamRejected` with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

#: The query parameters of a signed URL, in canonical order (``sig`` last, not signed).
PARAMS = ("v", "kid", "sub", "dept", "purpose", "case", "exp", "jti")
VERSION = "1"
#: Lifetime cap when the configuration gives none (seconds).
MAX_TTL_S = 300
#: Clock skew tolerated between the gateway and a media server (seconds).
SKEW_S = 30
_DOMAIN = "CG-STREAM-V1"


class StreamRejected(Exception):
    """A URL that must not be served; the message says why (expired, tampered, malformed)."""


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """What a verified (or just issued) URL grants: this stream, to this subject, until ``expires_at``."""

    url: str
    path: str
    subject: str
    department: str
    purpose: str
    case_ref: str
    expires_at: int  # Unix seconds
    grant_id: str


def _canonical(scheme: str, netloc: str, path: str, params: Mapping[str, str]) -> bytes:
    lines = [_DOMAIN, scheme.lower(), netloc.lower(), path, *(f"{k}={params[k]}" for k in PARAMS)]
    return "\n".join(lines).encode()


class StreamSigner:
    """Issues and verifies stream URLs with one secret key (at least 32 bytes)."""

    def __init__(self, key: bytes, *, max_ttl_s: int = MAX_TTL_S) -> None:
        if len(key) < 32:
            raise ValueError("the stream signing key must be at least 32 bytes")
        if not 1 <= max_ttl_s <= 3600:
            raise ValueError("max_ttl_s must be between 1 and 3600 seconds")
        self._key = key
        self.max_ttl_s = max_ttl_s
        #: Key id: names the key (for rotation) without revealing it.
        self.kid = hashlib.new("sm3", b"citygraph-stream-kid" + key).hexdigest()[:8]

    def _sig(self, message: bytes) -> str:
        return hmac.new(self._key, message, "sm3").hexdigest()

    def issue(
        self,
        base_url: str,
        path: str,
        *,
        subject: str,
        department: str,
        purpose: str,
        case_ref: str | None,
        ttl_s: int,
        now: float | None = None,
    ) -> StreamGrant:
        """A URL for ``path`` under ``base_url`` valid for ``ttl_s`` seconds (capped at ``max_ttl_s``)."""
        if ttl_s < 1:
            raise ValueError("ttl_s must be at least 1 second")
        base = urlsplit(base_url)
        if base.scheme not in ("http", "https", "rtsp", "rtsps") or not base.netloc or base.query:
            raise ValueError(f"stream base URL {base_url!r} must be http(s):// or rtsp(s):// with a host")
        full_path = base.path.rstrip("/") + "/" + quote(path.lstrip("/"), safe="/-._~")
        expires = int(now if now is not None else time.time()) + min(ttl_s, self.max_ttl_s)
        params = {
            "v": VERSION,
            "kid": self.kid,
            "sub": subject,
            "dept": department,
            "purpose": purpose,
            "case": case_ref or "",
            "exp": str(expires),
            "jti": secrets.token_hex(12),
        }
        sig = self._sig(_canonical(base.scheme, base.netloc, full_path, params))
        query = urlencode([*((k, params[k]) for k in PARAMS), ("sig", sig)])
        url = f"{base.scheme}://{base.netloc}{full_path}?{query}"
        return StreamGrant(url, full_path, subject, department, purpose, case_ref or "", expires, params["jti"])

    def verify(self, url: str, *, now: float | None = None) -> StreamGrant:
        """The grant of a URL this key signed, still valid at ``now``; else :class:`StreamRejected`."""
        try:
            parts = urlsplit(url)
            pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
        except ValueError as exc:
            raise StreamRejected("malformed URL") from exc
        if parts.fragment or not parts.netloc:
            raise StreamRejected("malformed URL: no host, or a fragment")
        names = [k for k, _ in pairs]
        if sorted(names) != sorted((*PARAMS, "sig")):
            raise StreamRejected("malformed URL: parameters must be exactly " + ", ".join((*PARAMS, "sig")))
        params = dict(pairs)
        if params["v"] != VERSION:
            raise StreamRejected(f"unsupported version {params['v'][:8]!r}")
        if params["kid"] != self.kid:
            raise StreamRejected("signed with another key (kid does not match)")
        expected = self._sig(_canonical(parts.scheme, parts.netloc, parts.path, params))
        if not hmac.compare_digest(expected, params["sig"]):
            raise StreamRejected("bad signature: the URL was altered or re-targeted")
        try:
            expires = int(params["exp"])
        except ValueError as exc:  # pragma: no cover - only a signed URL gets here
            raise StreamRejected("malformed expiry") from exc
        current = now if now is not None else time.time()
        if current >= expires:
            raise StreamRejected(f"expired {int(current) - expires} s ago")
        if expires > current + self.max_ttl_s + SKEW_S:
            raise StreamRejected("expiry is further away than the maximum lifetime allows")
        return StreamGrant(
            url,
            parts.path,
            params["sub"],
            params["dept"],
            params["purpose"],
            params["case"],
            expires,
            params["jti"],
        )


def load_key(env_name: str, key_file: Path) -> bytes:
    """The signing key: from the environment variable ``env_name`` (hex or text, >= 32 bytes), else
    from ``key_file``, generated (0600) on first use for development. Never from the repository."""
    value = os.environ.get(env_name)
    if value:
        return value.encode()
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    return key_file.read_text().strip().encode()


__all__ = ["MAX_TTL_S", "PARAMS", "SKEW_S", "StreamGrant", "StreamRejected", "StreamSigner", "load_key"]
