"""The local stand-in of API Gateway's JWT authorizer (concierge_cli.local.auth) and the
`concierge token` command: tokens, their checks, and the events the api function receives."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from concierge import wiring
from concierge_cli import main as cli
from concierge_cli.local import auth
from concierge_cli.local.auth import (
    AUDIENCE,
    ISSUER,
    Authorizer,
    LocalKeys,
    SigningKey,
    TokenRejected,
    Unauthorized,
    Verifier,
    gateway_claims,
    mint,
)
from concierge_cli.local.server import http_api_event

REPO_ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600


@pytest.fixture
def keys(tmp_path: Path) -> LocalKeys:
    return LocalKeys(tmp_path / "auth")


@pytest.fixture
def key(keys: LocalKeys) -> SigningKey:
    return keys.signing_key()


def chat_event(
    headers: dict[str, str] | None = None, method: str = "POST", path: str = "/chat"
) -> dict[str, Any]:
    """The event the local server makes of a request."""
    body = b'{"question": "What do you sell?"}' if method == "POST" else b""
    return http_api_event(
        method, path, {"content-type": "application/json", **(headers or {})}, body
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(event: dict[str, Any]) -> dict[str, str]:
    claims: dict[str, str] = event["requestContext"]["authorizer"]["jwt"]["claims"]
    return claims


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """header.payload of a token, without its signature."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def valid_claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + HOUR}
    return {**claims, **changes}


# --- the key ------------------------------------------------------------------------------
def test_the_key_is_made_once_private_and_published_in_a_jwks(keys: LocalKeys) -> None:
    # Given no local key yet

    # When the signing key is asked for twice, the second time by another reader
    first = keys.signing_key()
    second = LocalKeys(keys.directory).signing_key()

    # Then the same key is used both times
    assert second.kid == first.kid
    # And only its owner can read the private key
    assert stat.S_IMODE(os.stat(keys.private_key_path).st_mode) == 0o600
    # And the JWKS publishes its public half under its kid, for RS256 signatures
    [published] = json.loads(keys.jwks_path.read_text())["keys"]
    assert {k: published[k] for k in ("kty", "kid", "alg", "use")} == {
        "kty": "RSA",
        "kid": first.kid,
        "alg": "RS256",
        "use": "sig",
    }
    assert "d" not in published
    # And nothing else is left in the folder
    assert sorted(p.name for p in keys.directory.iterdir()) == ["jwks.json", "private-key.pem"]


def test_two_processes_making_the_key_at_once_end_with_one_key(keys: LocalKeys) -> None:
    # Given several readers that find no key at the same moment
    kids: list[str] = []
    start = threading.Barrier(4)

    def make() -> None:
        start.wait()
        kids.append(LocalKeys(keys.directory).signing_key().kid)

    # When each makes one
    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then they all sign with the one key the JWKS publishes
    published = {entry["kid"] for entry in json.loads(keys.jwks_path.read_text())["keys"]}
    assert set(kids) == published
    assert len(published) == 1


# --- mint and verify ----------------------------------------------------------------------
def test_a_minted_token_verifies_and_carries_the_user(keys: LocalKeys, key: SigningKey) -> None:
    # Given a token for an admin, valid for an hour
    token = mint("alice", admin=True, ttl_seconds=HOUR, key=key)

    # When it is verified as API Gateway would
    claims = Verifier(keys).verify(token)

    # Then it names the user, the local issuer and audience, and the admin group (a list, as
    # Cognito writes it), and it lasts an hour
    assert claims["sub"] == "alice"
    assert (claims["iss"], claims["aud"], claims["client_id"]) == (ISSUER, AUDIENCE, AUDIENCE)
    assert claims["token_use"] == "id"
    assert claims["cognito:groups"] == ["admin"]
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == HOUR
    # And its header names the algorithm and the key, as the JWKS does
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": key.kid, "typ": "JWT"}


def test_a_user_who_is_not_an_admin_has_no_groups(keys: LocalKeys, key: SigningKey) -> None:
    # When a token is made without --admin
    claims = Verifier(keys).verify(mint("bob", ttl_seconds=60, key=key))

    # Then it carries no group claim
    assert claims["sub"] == "bob"
    assert "cognito:groups" not in claims


def other_key(tmp_path: Path) -> SigningKey:
    return LocalKeys(tmp_path / "elsewhere").signing_key()


def refused_tokens(tmp_path: Path, key: SigningKey) -> dict[str, tuple[str, str]]:
    """Tokens API Gateway refuses, and the reason each is refused for."""
    now = time.time()
    stranger = other_key(tmp_path)
    # The classic confusion: an HMAC keyed with the public key, which anyone can download.
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs256 = unsigned({"alg": "HS256", "kid": key.kid, "typ": "JWT"}, valid_claims())
    hs256 += "." + b64(hmac.new(public_pem, hs256.encode(), hashlib.sha256).digest())
    return {
        "expired": (mint("alice", ttl_seconds=60, key=key, now=now - 120), "it has expired"),
        "not yet valid": (
            mint("alice", ttl_seconds=HOUR, key=key, now=now + 120),
            "it is not valid yet",
        ),
        "another issuer": (
            mint("alice", ttl_seconds=60, key=key, issuer="https://elsewhere"),
            f"its issuer is not {ISSUER}",
        ),
        "another audience": (
            mint("alice", ttl_seconds=60, key=key, audience="someone-else"),
            f"its audience is not {AUDIENCE}",
        ),
        "signed by another key under this kid": (
            mint("alice", ttl_seconds=60, key=SigningKey(key.kid, stranger.private_key)),
            "its signature does not match the issuer's key",
        ),
        "a kid the JWKS does not have": (
            mint("alice", ttl_seconds=60, key=stranger),
            "its kid names no key of the issuer's JWKS",
        ),
        "alg none": (
            unsigned({"alg": "none", "kid": key.kid}, valid_claims()) + ".",
            "it must be signed with RS256, not 'none'",
        ),
        "HS256 keyed with the public key": (hs256, "it must be signed with RS256, not 'HS256'"),
        "not a JWT": ("not-a-token", "it is not a JWT"),
        "no exp": (
            jwt.encode(
                {k: v for k, v in valid_claims().items() if k != "exp"},
                key.private_key,
                algorithm="RS256",
                headers={"kid": key.kid},
            ),
            "it has no exp claim",
        ),
    }


REFUSALS = [
    "expired",
    "not yet valid",
    "another issuer",
    "another audience",
    "signed by another key under this kid",
    "a kid the JWKS does not have",
    "alg none",
    "HS256 keyed with the public key",
    "not a JWT",
    "no exp",
]


@pytest.mark.parametrize("case", REFUSALS)
def test_tokens_api_gateway_refuses_are_refused_with_the_reason(
    tmp_path: Path, keys: LocalKeys, key: SigningKey, case: str
) -> None:
    # Given a token API Gateway would refuse
    token, reason = refused_tokens(tmp_path, key)[case]

    # When / Then it is refused, saying why
    with pytest.raises(TokenRejected) as refused:
        Verifier(keys).verify(token)
    assert str(refused.value) == reason


def signed(key: SigningKey, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def test_client_id_counts_only_when_there_is_no_aud(keys: LocalKeys, key: SigningKey) -> None:
    # Given an access-token-like token (client_id, no aud), and one whose aud is wrong but
    # whose client_id is right
    access = {k: v for k, v in valid_claims(client_id=AUDIENCE).items() if k != "aud"}
    wrong_aud = valid_claims(aud="someone-else", client_id=AUDIENCE)

    # When they are verified
    claims = Verifier(keys).verify(signed(key, access))
    with pytest.raises(TokenRejected) as refused:
        Verifier(keys).verify(signed(key, wrong_aud))

    # Then the first is accepted for its client_id, and the second refused for its aud
    assert claims["client_id"] == AUDIENCE
    assert str(refused.value) == f"its audience is not {AUDIENCE}"


def test_a_new_local_key_is_trusted_without_a_restart(tmp_path: Path, keys: LocalKeys) -> None:
    # Given a verifier that has read the JWKS of the first key
    verifier = Verifier(keys)
    verifier.verify(mint("alice", ttl_seconds=60, key=keys.signing_key()))

    # When the key folder is deleted and a new key made
    for path in keys.directory.iterdir():
        path.unlink()
    new_key = keys.signing_key()

    # Then a token of the new key verifies, as API Gateway fetches an issuer's new keys
    assert verifier.verify(mint("alice", ttl_seconds=60, key=new_key))["sub"] == "alice"


@pytest.mark.parametrize("user", ["", "two words", "a/b", "x" * 129, "ünï"])
def test_a_user_name_must_fit_a_sub(key: SigningKey, user: str) -> None:
    # When / Then a token for a name that is not a plain identifier is refused
    with pytest.raises(ValueError, match="a user name is 1 to 128"):
        mint(user, ttl_seconds=60, key=key)


# --- claims as API Gateway passes them ----------------------------------------------------
def test_claims_reach_the_function_as_strings_as_api_gateway_writes_them() -> None:
    # Given claims of every JSON type
    claims = {
        "sub": "alice",
        "exp": 1_700_000_000,
        "auth_time": 1_700_000_000.0,
        "ratio": 0.5,
        "cognito:groups": ["admin", "ops"],
        "email_verified": True,
        "none": [],
    }

    # When they are passed on
    passed = gateway_claims(claims)

    # Then every value is text: numbers in decimal, arrays as "[a b]", booleans in lower case
    assert passed == {
        "sub": "alice",
        "exp": "1700000000",
        "auth_time": "1700000000",
        "ratio": "0.5",
        "cognito:groups": "[admin ops]",
        "email_verified": "true",
        "none": "[]",
    }


# --- the authorizer -----------------------------------------------------------------------
def test_auth_local_passes_a_valid_token_s_claims_to_the_function(
    keys: LocalKeys, key: SigningKey
) -> None:
    # Given a server that verifies tokens, and a request with an admin's token
    authorizer = Authorizer("local", keys)
    event = chat_event(bearer(mint("alice", admin=True, ttl_seconds=60, key=key)))

    # When it is authorized
    authorized = authorizer.authorize(event)

    # Then the function gets the claims where API Gateway puts them, every value a string
    context = authorized["requestContext"]["authorizer"]["jwt"]
    assert context["scopes"] is None
    assert context["claims"]["sub"] == "alice"
    assert context["claims"]["cognito:groups"] == "[admin]"
    assert context["claims"]["exp"].isdigit()
    # And the rest of the event is as it was
    assert {k: v for k, v in authorized.items() if k != "requestContext"} == {
        k: v for k, v in event.items() if k != "requestContext"
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUTHORIZATION", "Bearer {token}"),  # any case of the header name
        ("authorization", "bearer {token}"),  # any case of the scheme
        ("authorization", "{token}"),  # no scheme: API Gateway takes the bare token too
    ],
)
def test_the_token_is_read_as_api_gateway_reads_it(
    keys: LocalKeys, key: SigningKey, name: str, value: str
) -> None:
    # Given a request whose token is written one way or another
    event = chat_event()
    event["headers"][name] = value.format(token=mint("alice", ttl_seconds=60, key=key))

    # When it is authorized in local mode
    authorized = Authorizer("local", keys).authorize(event)

    # Then its user is known
    assert claims_of(authorized)["sub"] == "alice"


def test_auth_local_refuses_a_request_without_a_token_with_the_api_s_401(
    keys: LocalKeys,
) -> None:
    # Given a request to POST /chat without a token
    event = chat_event()

    # When it is authorized in local mode
    with pytest.raises(Unauthorized) as refused:
        Authorizer("local", keys).authorize(event)

    # Then it is a 401 in the API's error shape, with the request id and a Bearer challenge
    response = refused.value.response
    request_id = event["requestContext"]["requestId"]
    assert response["statusCode"] == 401
    assert json.loads(response["body"]) == {
        "error": {
            "code": "unauthorized",
            "message": "A bearer token is required (Authorization: Bearer <token>); "
            "`concierge token --user NAME` makes one.",
            "request_id": request_id,
        }
    }
    assert response["headers"] == {
        "content-type": "application/json",
        "x-request-id": request_id,
        "www-authenticate": "Bearer",
    }


def test_auth_local_refuses_a_bad_token_saying_why(keys: LocalKeys, key: SigningKey) -> None:
    # Given a request with an expired token
    expired = mint("alice", ttl_seconds=60, key=key, now=time.time() - HOUR)

    # When it is authorized in local mode
    with pytest.raises(Unauthorized) as refused:
        Authorizer("local", keys).authorize(chat_event(bearer(expired)))

    # Then it is a 401 that says the token has expired, in the body and the challenge
    response = refused.value.response
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["message"] == (
        "The bearer token was refused: it has expired."
    )
    assert response["headers"]["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="the token was refused: it has expired"'
    )


@pytest.mark.parametrize(("method", "path"), [("GET", "/health"), ("OPTIONS", "/chat")])
@pytest.mark.parametrize("mode", ["local", "off"])
def test_health_and_preflights_need_no_token_and_carry_no_claims(
    keys: LocalKeys, method: str, path: str, mode: auth.AuthMode
) -> None:
    # Given a request to a route API Gateway serves without the authorizer
    event = chat_event(method=method, path=path)

    # When it is authorized
    authorized = Authorizer(mode, keys).authorize(event)

    # Then it goes through as it came, without claims
    assert authorized == event


def test_auth_off_makes_a_request_without_a_token_the_local_admin(keys: LocalKeys) -> None:
    # When a request without a token is authorized with auth off
    claims = claims_of(Authorizer("off", keys).authorize(chat_event()))

    # Then it is the local user, an admin, with the claims a token of the local issuer has
    assert claims["sub"] == "local"
    assert claims["cognito:groups"] == "[admin]"
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    # And no key was needed for it
    assert not keys.directory.exists()


def test_auth_off_takes_a_token_s_user_without_verifying_it(
    tmp_path: Path, keys: LocalKeys
) -> None:
    # Given tokens no verifier would accept: expired, and signed by a key nobody trusts
    stranger = other_key(tmp_path)
    expired = mint("bob", ttl_seconds=60, key=stranger, now=time.time() - HOUR)
    alg_none = unsigned({"alg": "none"}, valid_claims(sub="carol")) + "."

    # When requests carrying them are authorized with auth off
    authorizer = Authorizer("off", keys)
    users = [
        claims_of(authorizer.authorize(chat_event(bearer(t))))["sub"] for t in (expired, alg_none)
    ]

    # Then each acts as its token's user
    assert users == ["bob", "carol"]


def test_auth_off_still_refuses_what_is_not_a_token(keys: LocalKeys) -> None:
    # When a request with an Authorization header that holds no JWT is authorized, auth off
    with pytest.raises(Unauthorized) as refused:
        Authorizer("off", keys).authorize(chat_event({"Authorization": "Basic YWxpY2U6cHc="}))

    # Then it is a 401, not the local admin
    assert json.loads(refused.value.response["body"])["error"]["message"] == (
        "The bearer token was refused: it is not a JWT."
    )


def test_the_server_says_how_it_authorizes(keys: LocalKeys) -> None:
    # When each mode describes itself
    off = Authorizer("off", keys).describe()
    local = Authorizer("local", keys).describe()

    # Then off names the local user and that tokens are not verified, and how to verify them
    assert off.startswith("auth off: ")
    assert "`local` (an admin)" in off
    assert "NOT verified" in off
    assert "CONCIERGE_AUTH=local" in off
    # And local names what it checks and how to get a token
    assert local.startswith("auth local: ")
    assert ISSUER in local
    assert AUDIENCE in local
    assert "concierge token --user NAME" in local


# --- concierge token ----------------------------------------------------------------------
def run_cli(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(["--root", str(root), *argv])
    except SystemExit as exited:  # argparse's usage errors
        code = int(exited.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A folder `concierge` takes for a repository root."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "template.yaml").write_text("Resources: {}\n", encoding="utf-8")
    return root


def test_token_prints_the_token_alone(capsys: pytest.CaptureFixture[str], repository: Path) -> None:
    # When a token is asked for
    code, out, err = run_cli(capsys, repository, "token", "--user", "alice", "--admin")

    # Then stdout is the token and a newline, nothing else
    assert (code, err) == (0, "")
    token = out.removesuffix("\n")
    assert out == token + "\n"
    # And it is valid for an hour, for alice, an admin, signed by the repository's local key
    claims = Verifier(LocalKeys.of(repository)).verify(token)
    assert (claims["sub"], claims["cognito:groups"]) == ("alice", ["admin"])
    assert claims["exp"] - claims["iat"] == HOUR
    assert (repository / ".concierge" / "auth" / "private-key.pem").is_file()


@pytest.mark.parametrize(
    ("ttl", "seconds"), [("3600", 3600), ("90s", 90), ("15m", 900), ("1h", 3600), ("2h", 7200)]
)
def test_ttl_takes_seconds_or_a_number_with_s_m_or_h(
    capsys: pytest.CaptureFixture[str], repository: Path, ttl: str, seconds: int
) -> None:
    # When a token is asked for with a --ttl
    code, out, _ = run_cli(capsys, repository, "token", "--user", "alice", "--ttl", ttl)

    # Then it lasts that long
    assert code == 0
    claims = Verifier(LocalKeys.of(repository)).verify(out.strip())
    assert claims["exp"] - claims["iat"] == seconds


@pytest.mark.parametrize("ttl", ["0", "0h", "-5", "1d", "1.5h", "h", "", "1 h", "ten"])
def test_a_ttl_that_is_not_a_duration_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], repository: Path, ttl: str
) -> None:
    # When a token is asked for with a bad --ttl
    code, out, err = run_cli(capsys, repository, "token", "--user", "alice", "--ttl", ttl)

    # Then it is a usage error that says what a duration is, and no token is printed
    assert (code, out) == (2, "")
    assert "is not a duration" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["token"],  # no user
        ["token", "--user", "two words"],
        ["ask", "What do you sell?", "--user", "a/b"],
        ["ask", "What do you sell?", "--admin"],  # --admin without --user
    ],
)
def test_a_missing_or_bad_user_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], repository: Path, argv: list[str]
) -> None:
    # When a command is run without a user it needs, or with a name that cannot be a sub
    code, out, err = run_cli(capsys, repository, *argv)

    # Then it is a usage error, and nothing is printed on stdout
    assert (code, out) == (2, "")
    assert "user" in err


def test_token_outside_a_repository_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # When a token is asked for in a folder that is not the repository
    code, out, err = run_cli(capsys, tmp_path, "token", "--user", "alice")

    # Then it is a usage error, and no key is made there
    assert (code, out) == (2, "")
    assert "template.yaml" in err
    assert not (tmp_path / ".concierge").exists()


# --- concierge ask in-process -------------------------------------------------------------
@pytest.fixture
def auth_local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LocalKeys]:
    """CONCIERGE_AUTH=local for this test, with the repository's keys in a temporary folder."""
    monkeypatch.setenv("CONCIERGE_AUTH", "local")
    monkeypatch.setattr(auth, "KEYS_DIR", tmp_path / "keys")
    wiring.reset()
    yield LocalKeys(tmp_path / "keys")
    wiring.reset()


def test_ask_in_process_without_a_user_is_refused_before_the_chain_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, auth_local: LocalKeys
) -> None:
    # Given auth local, and no index at all (the chain could not start)
    argv = ["ask", "What do you sell?", "--in-process", "--index", str(tmp_path / "none.json")]

    # When a question is asked without --user
    code, out, err = run_cli(capsys, REPO_ROOT, *argv)

    # Then it is the 401 the server would answer, with a hint to pass --user
    assert (code, out) == (1, "")
    assert err.startswith("error 401: A bearer token is required")
    assert "ask with --user NAME" in err
