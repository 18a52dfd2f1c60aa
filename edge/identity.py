"""Bearer tokens to ``Principal``: verified JWTs (PyJWT), never trusted unverified claims.

``dev`` mode verifies HS256 with a local secret; ``jwks`` mode verifies RS256/ES256 against keys
from a JWKS file or URL. The accepted algorithms are fixed by the mode, so ``alg: none`` and
algorithm confusion (an HS256 token signed with a public key) are refused. ``exp``, ``nbf``,
``iss`` and ``aud`` are checked; ``sub``, ``exp``, ``iss`` and ``aud`` are required.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import jwt
from jwt import PyJWKClient, PyJWKSet

from edge.settings import AuthSettings
from policies.principal import Principal

#: Verified tokens are kept by their exact text, so a client's repeated token is not verified again
#: on every request (signature and claim checks were ~4% of a small request's CPU). An entry lives
#: at most this long, so a key withdrawn from the JWKS stops being honoured within it, and never
#: past the token's own expiry (with the configured leeway, as a fresh verification would allow).
VERIFIED_TTL_S = 60.0
VERIFIED_MAX = 4096

_ADCODE = re.compile(r"^\d{6}$")
_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


class InvalidToken(Exception):
    """The token is missing parts, expired, badly signed or carries bad claims (-> 401)."""


class TokenVerifier:
    """Verifies bearer tokens for one configuration."""

    def __init__(self, settings: AuthSettings, dev_secret: str | None = None) -> None:
        self.settings = settings
        self._secret = dev_secret
        self._jwks_client: PyJWKClient | None = None
        self._jwks: PyJWKSet | None = None
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        if settings.mode == "dev":
            if not dev_secret:
                raise ValueError("dev mode needs a secret")
            self.algorithms = ["HS256"]
        else:
            self.algorithms = [a for a in settings.algorithms if a in ("RS256", "ES256", "PS256", "EdDSA")]
            if settings.jwks_file is not None:
                self._jwks = PyJWKSet.from_json(settings.jwks_file.read_text())
            elif settings.jwks_url:
                self._jwks_client = PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300)
            else:
                raise ValueError("jwks mode needs auth.jwks_file or auth.jwks_url")

    def _key(self, token: str) -> object:
        if self._secret is not None and self.settings.mode == "dev":
            return self._secret
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token header") from exc
        if self._jwks_client is not None:
            try:
                return self._jwks_client.get_signing_key_from_jwt(token).key
            except jwt.PyJWTError as exc:
                raise InvalidToken("no matching signing key") from exc
        for key in self._jwks.keys if self._jwks is not None else ():
            if kid is None or key.key_id == kid:
                return key.key
        raise InvalidToken("no matching signing key")

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; raises InvalidToken with a safe reason.

        A token verified in the last :data:`VERIFIED_TTL_S` seconds and not yet expired is
        answered from memory (event-loop use only: no locking).
        """
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            if now < cached[1]:
                return cached[0]
            del self._verified[token]
        principal = self._verify(token)
        until = min(now + VERIFIED_TTL_S, principal.token_expires_at + self.settings.leeway_s)
        if until > now:
            self._verified[token] = (principal, until)
            if len(self._verified) > VERIFIED_MAX:
                self._verified.popitem(last=False)  # the oldest verification goes first
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key=self._key(token),  # type: ignore[arg-type]
                algorithms=self.algorithms,
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise InvalidToken("token not yet valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token audience not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("token issuer not accepted") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("token invalid") from exc
        return principal_from_claims(claims)


def _strings(value: object, name: str, pattern: re.Pattern[str]) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) and pattern.match(v) for v in value):
        raise InvalidToken(f"claim {name} must be a list of codes")
    return frozenset(value)


def principal_from_claims(claims: Mapping[str, object]) -> Principal:
    """Map verified claims to a Principal, validating every claim the policies read."""
    subject, department, clearance = claims.get("sub"), claims.get("dept", ""), claims.get("clearance", 1)
    if not isinstance(subject, str) or not _NAME.match(subject) or subject == "anonymous":
        raise InvalidToken("claim sub is invalid")
    if not isinstance(department, str) or (department and not _NAME.match(department)):
        raise InvalidToken("claim dept is invalid")
    if not isinstance(clearance, int) or isinstance(clearance, bool) or not 1 <= clearance <= 4:
        raise InvalidToken("claim clearance must be an integer 1-4")
    exp = claims.get("exp")
    return Principal(
        subject=subject,
        department=department,
        roles=_strings(claims.get("roles"), "roles", _NAME),
        districts=_strings(claims.get("districts"), "districts", _ADCODE),
        clearance=clearance,
        issuer=str(claims.get("iss", "")),
        token_expires_at=exp if isinstance(exp, int) else 0,
    )


def mint_dev_token(
    secret: str,
    settings: AuthSettings,
    *,
    subject: str,
    department: str,
    roles: Sequence[str],
    districts: Sequence[str],
    clearance: int,
    ttl_s: int = 3600,
) -> str:
    """An HS256 development token with the claims ``principal_from_claims`` reads."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "dept": department,
        "roles": list(roles),
        "districts": list(districts),
        "clearance": clearance,
        "iss": settings.issuer,
        "aud": settings.audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
    }
    principal_from_claims(claims)  # refuse to mint what the gateway would refuse
    return jwt.encode(claims, secret, algorithm="HS256")


def jwks_json(keys: Sequence[Mapping[str, object]]) -> str:
    """Serialise JWKs as a JWKS document (used by tests and docs)."""
    return json.dumps({"keys": list(keys)})


__all__ = ["InvalidToken", "TokenVerifier", "jwks_json", "mint_dev_token", "principal_from_claims"]
