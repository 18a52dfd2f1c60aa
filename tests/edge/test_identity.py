"""Token verification in both modes, including algorithm confusion and claim validation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from edge import identity
from edge.identity import InvalidToken, TokenVerifier, mint_dev_token
from edge.settings import AuthSettings

CLAIMS = {"sub": "officer-1", "dept": "police", "roles": ["investigator"], "districts": ["330203"], "clearance": 3}


def claims(**extra: object) -> dict[str, object]:
    now = int(time.time())
    return {**CLAIMS, "iss": "city-idp", "aud": "citygraph", "iat": now, "nbf": now, "exp": now + 300, **extra}


@pytest.fixture
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_verifier(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> TokenVerifier:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    keys = [
        {**json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "rsa-1", "alg": "RS256"},
        {**json.loads(ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "ec-1", "alg": "ES256"},
    ]
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    settings = AuthSettings(mode="jwks", jwks_file=path, issuer="city-idp", audience="citygraph")
    return TokenVerifier(settings)


def test_rs256_token_from_the_jwks_is_accepted(jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    principal = jwks_verifier.verify(token)
    assert (principal.subject, principal.department, principal.clearance) == ("officer-1", "police", 3)
    assert principal.districts == frozenset({"330203"}) and principal.roles == frozenset({"investigator"})


def test_hs256_signed_with_the_public_key_is_refused(jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The classic algorithm-confusion forgery: HMAC keyed with the (public) RSA key.
    import hashlib
    import hmac

    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(claims()).encode())
    signature = hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    forged = b".".join([header, payload, jwt.utils.base64url_encode(signature)]).decode()
    with pytest.raises(InvalidToken):
        jwks_verifier.verify(forged)


def test_alg_none_is_refused(jwks_verifier: TokenVerifier) -> None:
    with pytest.raises(InvalidToken):
        jwks_verifier.verify(jwt.encode(claims(), "", algorithm="none"))


def test_key_not_in_the_jwks_is_refused(jwks_verifier: TokenVerifier) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidToken):
        jwks_verifier.verify(jwt.encode(claims(), stranger, algorithm="RS256", headers={"kid": "rsa-1"}))


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"exp": 1}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not yet valid"),
        ({"iss": "elsewhere"}, "issuer"),
        ({"aud": "other"}, "audience"),
        ({"clearance": 0}, "clearance"),
        ({"clearance": True}, "clearance"),
        ({"roles": "admin"}, "roles"),
        ({"sub": "anonymous"}, "sub"),
    ],
)
def test_bad_claims_are_refused(
    jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, extra: dict[str, object], reason: str
) -> None:
    token = jwt.encode(claims(**extra), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    with pytest.raises(InvalidToken, match=reason):
        jwks_verifier.verify(token)


def test_missing_exp_is_refused(jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey) -> None:
    no_exp = {k: v for k, v in claims().items() if k != "exp"}
    with pytest.raises(InvalidToken):
        jwks_verifier.verify(jwt.encode(no_exp, rsa_key, algorithm="RS256", headers={"kid": "rsa-1"}))


def test_dev_mode_accepts_only_hs256_with_its_secret() -> None:
    secret = "dev-secret-0123456789-0123456789-abc" * 2
    settings = AuthSettings()
    verifier = TokenVerifier(settings, secret)
    token = mint_dev_token(
        secret, settings, subject="a", department="market_supervision", roles=["staff"], districts=[], clearance=2
    )
    assert verifier.verify(token).department == "market_supervision"
    with pytest.raises(InvalidToken):
        verifier.verify(jwt.encode(claims(iss=settings.issuer), secret, algorithm="HS512"))


def test_minting_refuses_what_the_gateway_would_refuse() -> None:
    with pytest.raises(InvalidToken):
        mint_dev_token("s" * 40, AuthSettings(), subject="a", department="d", roles=[], districts=["bad"], clearance=2)


def test_a_repeated_token_is_verified_once_and_never_honoured_past_its_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "dev-secret-0123456789-0123456789-abc" * 2
    settings = AuthSettings(leeway_s=0)
    verifier = TokenVerifier(settings, secret)
    token = jwt.encode(claims(iss=settings.issuer, exp=int(time.time()) + 2), secret, algorithm="HS256")
    decodes: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decodes.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    assert verifier.verify(token).subject == "officer-1"
    assert verifier.verify(token).subject == "officer-1"
    assert len(decodes) == 1  # the second came from the cache
    time.sleep(max(0.0, int(time.time()) + 3 - time.time()))  # past exp (whole seconds)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)
    assert len(decodes) == 2


def test_a_cached_verification_lasts_at_most_the_cache_lifetime(
    jwks_verifier: TokenVerifier, rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    jwks_verifier.verify(token)
    # The key is withdrawn from the JWKS: within VERIFIED_TTL_S the token stops being honoured.
    jwks_verifier._jwks = None
    later = time.time() + identity.VERIFIED_TTL_S + 1
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(InvalidToken, match="no matching signing key"):
        jwks_verifier.verify(token)


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity, "VERIFIED_MAX", 3)
    secret = "dev-secret-0123456789-0123456789-abc" * 2
    settings = AuthSettings()
    verifier = TokenVerifier(settings, secret)
    for n in range(5):
        verifier.verify(
            mint_dev_token(secret, settings, subject=f"s{n}", department="", roles=[], districts=[], clearance=1)
        )
    assert len(verifier._verified) == 3
