"""CDS client JWT verification (CDS Hooks 2.0.1 security): what is accepted and what is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from cds_service.config import load_settings
from cds_service.security.jwt_auth import AuthError, JwtVerifier
from cds_service.store.db import Store
from tests.jwt_helpers import JwksServer, TestKey, bearer, claims, jwks, sign

EHR = "https://ehr.example.org"  # JWKS served over HTTP (loopback)
SANDBOX = "https://sandbox.cds-hooks.org"  # JWKS pinned in a local file, as clients.md suggests
EPIC = "https://fhir.epic.example/api/FHIR/R4"  # RS384, nbf + sub
AUD = "https://cds.example.org/cds-services/mm-next-line"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"

ES = TestKey("ec384", "ehr-es384")
SB = TestKey("ec384", "sandbox-es384")
RS = TestKey("rsa", "epic-rs384")
ROTATED = TestKey("ec384", "ehr-es384-2026")
ATTACKER = TestKey("ec384", "ehr-es384")  # same kid as the trusted EHR key, different key
ATTACKER2 = TestKey("ec384", "attacker-kid")


@pytest.fixture(scope="module")
def jwks_server():
    with JwksServer({"/ehr/jwks.json": jwks(ES), "/epic/jwks.json": jwks(RS),
                     "/attacker/jwks.json": jwks(ATTACKER2, ATTACKER)}) as srv:
        yield srv


@pytest.fixture
def sandbox_file(tmp_path: Path) -> Path:
    path = tmp_path / "sandbox-jwks.json"
    path.write_text(json.dumps(jwks(SB)))
    return path


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'auth.sqlite3'}")
    s.create_schema()
    return s


def make_verifier(jwks_server: JwksServer, sandbox_file: Path, store: Store, **config) -> JwtVerifier:
    cfg = {
        "AUTH_MODE": "jwt",
        "TRUSTED_ISSUERS": {EHR: jwks_server.url("/ehr/jwks.json"), SANDBOX: str(sandbox_file),
                            EPIC: jwks_server.url("/epic/jwks.json")},
    }
    min_refresh_s = config.pop("min_refresh_s", 30.0)
    cfg.update(config)
    return JwtVerifier(load_settings(cfg, environ={}), store, min_refresh_s=min_refresh_s)


@pytest.fixture
def verifier(jwks_server, sandbox_file, store) -> JwtVerifier:
    return make_verifier(jwks_server, sandbox_file, store)


def refused(verifier: JwtVerifier, token: str, aud: str = AUD) -> str:
    with pytest.raises(AuthError) as info:
        verifier.verify(bearer(token), [aud])
    return str(info.value)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ------------------------------------------------------------------ accepted


def test_valid_es384_from_http_jwks_is_accepted(verifier, jwks_server):
    c = claims(EHR, AUD)
    out = verifier.verify(bearer(sign(ES, c)), [AUD])
    assert out["jti"] == c["jti"] and out["iss"] == EHR
    assert jwks_server.hits.get("/ehr/jwks.json", 0) >= 1


def test_valid_es384_from_pinned_file_with_sandbox_jku_is_accepted_without_fetching_jku(verifier):
    token = sign(SB, claims(SANDBOX, AUD), headers={"jku": SANDBOX_JKU})
    assert verifier.verify(bearer(token), [AUD])["iss"] == SANDBOX
    assert verifier._jku_sources == {}  # the jku (not allow-listed) was never fetched


def test_file_url_jwks_is_accepted(jwks_server, sandbox_file, store):
    v = make_verifier(jwks_server, sandbox_file, store, TRUSTED_ISSUERS={SANDBOX: sandbox_file.as_uri()})
    assert v.verify(bearer(sign(SB, claims(SANDBOX, AUD))), [AUD])["iss"] == SANDBOX


def test_valid_rs384_epic_style_is_accepted(verifier):
    now = int(time.time())
    c = claims(EPIC, AUD, nbf=now, sub="epic-client-id")
    assert verifier.verify(bearer(sign(RS, c)), [AUD])["sub"] == "epic-client-id"


def test_audience_alias_list_and_trailing_slash_are_accepted(verifier):
    alias = "https://cds.example.org/cds-services"
    assert verifier.verify(bearer(sign(ES, claims(EHR, [alias, "other"]))), [AUD, alias])
    assert verifier.verify(bearer(sign(ES, claims(EHR, AUD + "/"))), [AUD])


def test_clock_skew_within_leeway_is_accepted(verifier):
    now = time.time()
    assert verifier.verify(bearer(sign(ES, claims(EHR, AUD, now=now - 310))), [AUD])  # expired 10 s ago
    assert verifier.verify(bearer(sign(ES, claims(EHR, AUD, now=now + 10))), [AUD])  # issued 10 s "ahead"


def test_token_without_kid_matches_the_issuers_key(verifier):
    assert verifier.verify(bearer(sign(ES, claims(EHR, AUD), kid=None)), [AUD])


def test_key_rotation_refreshes_on_unknown_kid(jwks_server, sandbox_file, store):
    v = make_verifier(jwks_server, sandbox_file, store, min_refresh_s=0)
    assert v.verify(bearer(sign(ES, claims(EHR, AUD))), [AUD])
    jwks_server.documents["/rot/jwks.json"] = jwks(ES)
    v2 = make_verifier(jwks_server, sandbox_file, store, min_refresh_s=0,
                       TRUSTED_ISSUERS={EHR: jwks_server.url("/rot/jwks.json")})
    assert v2.verify(bearer(sign(ES, claims(EHR, AUD))), [AUD])
    jwks_server.documents["/rot/jwks.json"] = jwks(ES, ROTATED)  # the issuer publishes a new key
    assert v2.verify(bearer(sign(ROTATED, claims(EHR, AUD))), [AUD])


def test_allow_listed_jku_bound_to_issuer_is_followed(jwks_server, sandbox_file, store):
    jku = jwks_server.url("/ehr-jku/jwks.json")
    jwks_server.documents["/ehr-jku/jwks.json"] = jwks(ROTATED)
    v = make_verifier(jwks_server, sandbox_file, store, JKU_ALLOWLIST=[f"{EHR} {jku}"])
    assert v.verify(bearer(sign(ROTATED, claims(EHR, AUD), headers={"jku": jku})), [AUD])
    assert jwks_server.hits["/ehr-jku/jwks.json"] == 1


def test_tenant_allow_list(jwks_server, sandbox_file, store):
    v = make_verifier(jwks_server, sandbox_file, store, TENANT_ALLOWLIST=["hospital-a"])
    assert v.verify(bearer(sign(ES, claims(EHR, AUD, tenant="hospital-a"))), [AUD])
    assert "tenant" in refused(v, sign(ES, claims(EHR, AUD, tenant="hospital-b")))
    assert "tenant" in refused(v, sign(ES, claims(EHR, AUD)))


# ------------------------------------------------------------------ refused


def test_forged_with_other_key_same_kid_is_refused(verifier):
    assert "signature" in refused(verifier, sign(ATTACKER, claims(EHR, AUD)))


def test_expired_is_refused(verifier):
    msg = refused(verifier, sign(ES, claims(EHR, AUD, now=time.time() - 400)))  # expired 100 s ago
    assert "Expired" in msg


def test_future_iat_is_refused(verifier):
    now = int(time.time())
    c = claims(EHR, AUD, now=now)
    c["iat"] = now + 120
    assert "iat" in refused(verifier, sign(ES, c)).lower() or "Immature" in refused(verifier, sign(ES, c))


def test_future_nbf_is_refused(verifier):
    now = int(time.time())
    assert "Immature" in refused(verifier, sign(ES, claims(EHR, AUD, now=now, nbf=now + 120)))


def test_wrong_audience_is_refused(verifier):
    assert "audience" in refused(verifier, sign(ES, claims(EHR, "https://other.example.org/cds-services/x")))
    other_endpoint = "https://cds.example.org/cds-services/mm-order-sign"
    assert "audience" in refused(verifier, sign(ES, claims(EHR, other_endpoint)))


def test_missing_audience_is_refused(verifier):
    c = claims(EHR, AUD)
    del c["aud"]
    assert "aud" in refused(verifier, sign(ES, c))


def test_untrusted_issuer_is_refused(verifier):
    assert "issuer" in refused(verifier, sign(ES, claims("https://evil.example.org", AUD)))


def test_issuer_key_cannot_sign_for_another_issuer(verifier):
    # the EHR's key is trusted for EHR only: a token it signs claiming to be the sandbox fails.
    assert "key" in refused(verifier, sign(ES, claims(SANDBOX, AUD)))


def test_unknown_kid_is_refused_and_refresh_is_rate_limited(jwks_server, sandbox_file, store):
    jwks_server.documents["/rl/jwks.json"] = jwks(ES)
    v = make_verifier(jwks_server, sandbox_file, store, TRUSTED_ISSUERS={EHR: jwks_server.url("/rl/jwks.json")})
    assert "kid" in refused(v, sign(ES, claims(EHR, AUD), kid="no-such-kid"))
    for i in range(20):
        refused(v, sign(ES, claims(EHR, AUD), kid=f"random-{i}"))
    assert jwks_server.hits["/rl/jwks.json"] == 1  # one load; no refresh storm within min_refresh_s


def test_tampered_payload_is_refused(verifier):
    token = sign(ES, claims(EHR, "https://other.example.org"))
    head, _payload, sig = token.split(".")
    forged_payload = _b64(json.dumps(claims(EHR, AUD)).encode())
    assert "signature" in refused(verifier, f"{head}.{forged_payload}.{sig}")


def test_tampered_signature_is_refused(verifier):
    token = sign(ES, claims(EHR, AUD))
    head, payload, sig = token.split(".")
    bad = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    refused(verifier, f"{head}.{payload}.{bad}")


def test_alg_none_is_refused(verifier):
    head = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": ES.kid}).encode())
    payload = _b64(json.dumps(claims(EHR, AUD)).encode())
    assert "algorithm" in refused(verifier, f"{head}.{payload}.")


def test_hmac_with_public_key_as_secret_is_refused(verifier):
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": ES.kid}).encode())
    payload = _b64(json.dumps(claims(EHR, AUD)).encode())
    sig = hmac.new(ES.public_pem(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    assert "algorithm" in refused(verifier, f"{head}.{payload}.{_b64(sig)}")


def test_foreign_jku_is_refused_and_never_fetched(verifier, jwks_server):
    jku = jwks_server.url("/attacker/jwks.json")
    before = jwks_server.hits.get("/attacker/jwks.json", 0)
    refused(verifier, sign(ATTACKER2, claims(EHR, AUD), headers={"jku": jku}))
    refused(verifier, sign(ATTACKER, claims(EHR, AUD), headers={"jku": jku}))  # trusted kid, attacker key
    assert jwks_server.hits.get("/attacker/jwks.json", 0) == before == 0


def test_allow_listed_jku_is_not_followed_for_another_issuer(jwks_server, sandbox_file, store):
    jku = jwks_server.url("/attacker/jwks.json")
    v = make_verifier(jwks_server, sandbox_file, store, JKU_ALLOWLIST=[f"{EPIC} {jku}"])
    refused(v, sign(ATTACKER2, claims(EHR, AUD), headers={"jku": jku}))
    assert jwks_server.hits.get("/attacker/jwks.json", 0) == 0


def test_bare_allow_listed_jku_needs_the_issuers_origin(jwks_server, sandbox_file, store):
    jku = jwks_server.url("/attacker/jwks.json")  # origin http://127.0.0.1:port, not the EHR's
    v = make_verifier(jwks_server, sandbox_file, store, JKU_ALLOWLIST=[jku])
    refused(v, sign(ATTACKER2, claims(EHR, AUD), headers={"jku": jku}))
    assert jwks_server.hits.get("/attacker/jwks.json", 0) == 0
    assert v.jku_allowed(jwks_server.base_url, jku) is False  # not a trusted issuer
    v2 = make_verifier(jwks_server, sandbox_file, store, JKU_ALLOWLIST=[SANDBOX_JKU])
    assert v2.jku_allowed(SANDBOX, SANDBOX_JKU) is True


def test_jti_less_token_is_refused(verifier):
    assert "jti" in refused(verifier, sign(ES, claims(EHR, AUD, jti=None)))


def test_replayed_token_is_refused_also_by_another_worker(verifier, jwks_server, sandbox_file, tmp_path):
    token = sign(ES, claims(EHR, AUD))
    assert verifier.verify(bearer(token), [AUD])
    assert "replay" in refused(verifier, token)
    other_worker = make_verifier(jwks_server, sandbox_file, Store(f"sqlite:///{tmp_path / 'auth.sqlite3'}"))
    assert "replay" in refused(other_worker, token)


def test_refused_token_does_not_burn_its_jti(verifier):
    c = claims(EHR, AUD)
    refused(verifier, sign(ES, c), aud="https://elsewhere.example.org")
    assert verifier.verify(bearer(sign(ES, c)), [AUD])


def test_disallowed_algorithm_by_configuration(jwks_server, sandbox_file, store):
    v = make_verifier(jwks_server, sandbox_file, store, JWT_ALGORITHMS="ES384")
    assert "algorithm" in refused(v, sign(RS, claims(EPIC, AUD)))


def test_algorithm_not_matching_the_key_is_refused(verifier):
    rs256_with_es_kid = sign(RS, claims(EHR, AUD), alg="RS256", kid=ES.kid)
    refused(verifier, rs256_with_es_kid)


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer not-a-jwt", "Bearer a.b.c"])
def test_missing_or_malformed_authorization_is_refused(verifier, header):
    with pytest.raises(AuthError):
        verifier.verify(header, [AUD])


def test_unreachable_jwks_refuses_without_raising_other_errors(sandbox_file, store):
    settings = load_settings({"TRUSTED_ISSUERS": {EHR: "http://127.0.0.1:9/jwks.json"}}, environ={})
    v = JwtVerifier(settings, store, fetch_timeout_s=1)
    with pytest.raises(AuthError):
        v.verify(bearer(sign(ES, claims(EHR, AUD))), [AUD])


# A token the real CDS Hooks sandbox minted (public, expired in 2020; quoted in a public GitHub
# script that verifies it): ES384, kid 44823f3d-…, jku to the sandbox, aud .../cds-services.
REAL_SANDBOX_TOKEN = (
    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6IjQ0ODIzZjNkLTBiMDEtNGE2Yy1hODBlLWI5ZDNlOGE3MjI2ZiIsImprdSI6Imh0dHBz"
    "Oi8vc2FuZGJveC5jZHMtaG9va3Mub3JnLy53ZWxsLWtub3duL2p3a3MuanNvbiJ9.eyJpc3MiOiJodHRwczovL3NhbmRib3guY2RzLWhvb2tzLm9y"
    "ZyIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODAwMC9jZHMtc2VydmljZXMiLCJleHAiOjE1OTQyMzA5MDAsImlhdCI6MTU5NDIzMDYwMCwianRp"
    "IjoiZWZiMzc3M2QtM2EyOC00M2UyLTlmYmMtYjkzNmE5YWUzODhiIn0.Cbey3n5NkDRoCLHZ2WMFc1z_RY8Rlq5oGxdAYfbrBPMiJXLCwjbYoU0av2"
    "CQj-Olhbnpe7Vs8vzJ5oHP5gc2-0ooc5J49t4Uz9iYKpiM9KLUrqaJe0umc_klM2-ynHAI"
)


def test_real_sandbox_token_verifies_against_the_builtin_pinned_key_set(store):
    """Signature checks precede claim checks in PyJWT: 'expired' proves the real signature verified."""
    v = JwtVerifier(load_settings({"TRUSTED_ISSUERS": {SANDBOX: "builtin:cds-hooks-sandbox"}}, environ={}), store)
    assert "Expired" in refused(v, REAL_SANDBOX_TOKEN, aud="http://127.0.0.1:8000/cds-services")
    head, payload, sig = REAL_SANDBOX_TOKEN.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert body["iss"] == SANDBOX and body["exp"] == 1594230900
    tampered = _b64(json.dumps(body | {"exp": int(time.time()) + 300}).encode())
    assert "signature" in refused(v, f"{head}.{tampered}.{sig}", aud="http://127.0.0.1:8000/cds-services")


def test_bad_builtin_name_refuses(store):
    v = JwtVerifier(load_settings({"TRUSTED_ISSUERS": {SANDBOX: "builtin:../../etc/passwd"}}, environ={}), store)
    assert "key" in refused(v, REAL_SANDBOX_TOKEN, aud="http://127.0.0.1:8000/cds-services")
