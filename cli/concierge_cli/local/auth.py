"""The local side of API Gateway's JWT authorizer: a signing key, tokens, and the check.

In AWS, API Gateway verifies the caller's token before the api function runs and passes its
claims in the event (`requestContext.authorizer.jwt.claims`, every value a string); a request
without a valid token never reaches the function. Locally, `Authorizer` plays that part for
the local server and for `concierge ask` in-process, in one of two modes (`CONCIERGE_AUTH`):

- `off` (the default): no token is needed. A request without one is the local user (`local`,
  an admin). A request with one is that token's user, read WITHOUT verifying it: a way to try
  several users on a laptop, never a check (anyone can write such a token).
- `local`: every route but `GET /health` and CORS preflights (OPTIONS) needs a token, verified
  as API Gateway verifies it: RS256 signature against the issuer's JWKS (by `kid`), issuer,
  audience (`aud`, or `client_id` when there is no `aud`), `exp`, `nbf` and `iat`. Anything
  else is a 401.

The issuer is this machine: an RSA key (RS256, as Cognito signs) made on first need in
`.concierge/auth/` — the private key (`private-key.pem`, mode 0600) and the public key set
(`jwks.json`, its `kid` the key's thumbprint) — and `mint` signs tokens shaped like Cognito's
ID tokens with it (`concierge token --user NAME`). Only the checks load PyJWT: minting needs
`cryptography` alone, so `concierge ask --user` through a running server stays quick.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from concierge.models.identity import LOCAL_USER
from concierge_cli.support import WORK_DIR

if TYPE_CHECKING:
    import jwt

AuthMode = Literal["off", "local"]
AUTH_MODES: tuple[AuthMode, ...] = ("off", "local")

# The local issuer, in one place: what `mint` writes and `Verifier` demands by default.
ISSUER = "https://localhost/concierge"
AUDIENCE = "concierge-local"
ALGORITHM = "RS256"
# Where Cognito puts a user's groups, and the group that makes an admin.
GROUPS_CLAIM = "cognito:groups"
ADMIN_GROUP = "admin"

# The local issuer's keys, below the repository root.
KEYS_DIR = WORK_DIR / "auth"
PRIVATE_KEY_NAME = "private-key.pem"
JWKS_NAME = "jwks.json"
_KEY_BITS = 2048

# A user name becomes the token's `sub`: letters, digits and . _ @ + -, at most 128.
_USER_NAME = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
# How long the local user's implicit identity (auth off, no token) says it lasts.
_IMPLICIT_TTL_SECONDS = 3600
# Routes API Gateway serves without the authorizer (template.yaml).
_PUBLIC_ROUTES = frozenset({("GET", "/health")})
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


class TokenRejected(Exception):
    """A token API Gateway would refuse; the message says why in a few words."""


class KeyFileError(Exception):
    """The local private key cannot be read: the message says which file and what to do."""


# --- the key ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey


class LocalKeys:
    """The local issuer's key pair in one folder, made on first need and reused afterwards.

    Creation is safe against another process doing the same at the same moment: the private
    key is written to a temporary file and linked into place only if none is there yet (the
    first one wins, the other process uses it), and the JWKS, derived from that key, is
    replaced whole."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def of(cls, root: Path) -> LocalKeys:
        """The keys of the repository at `root` (`.concierge/auth/`)."""
        return cls(root / KEYS_DIR)

    @property
    def private_key_path(self) -> Path:
        return self.directory / PRIVATE_KEY_NAME

    @property
    def jwks_path(self) -> Path:
        return self.directory / JWKS_NAME

    def signing_key(self) -> SigningKey:
        """The private key (made now if there is none) and its `kid`; the JWKS is written
        next to it when it is missing."""
        created = False
        try:
            pem = self.private_key_path.read_bytes()
        except FileNotFoundError:
            pem, created = self._create()
        try:
            # The key this module made (its file is the user's alone): checking its numbers
            # again would cost more than the rest of `concierge ask --user`.
            loaded = serialization.load_pem_private_key(
                pem, password=None, unsafe_skip_rsa_key_validation=True
            )
        except (ValueError, TypeError):
            loaded = None
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise KeyFileError(
                f"{self.private_key_path} is not an unencrypted RSA private key: delete "
                f"{self.directory} to make a new key (tokens made before stop being valid)"
            )
        key = SigningKey(kid=key_id(loaded.public_key()), private_key=loaded)
        if created or not self.jwks_path.is_file():
            _write_replacing(self.jwks_path, json.dumps(jwks_of(key), indent=2).encode())
        return key

    def _create(self) -> tuple[bytes, bool]:
        """A new private key in place, unless another process put one there first: (the PEM
        in place, whether it is this call's)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        temporary = self.directory / f".{PRIVATE_KEY_NAME}.{os.getpid()}.{uuid.uuid4().hex}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
            os.link(temporary, self.private_key_path)  # fails if a key is there already
        except FileExistsError:
            return self.private_key_path.read_bytes(), False
        finally:
            temporary.unlink(missing_ok=True)
        return pem, True


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """The key's RFC 7638 thumbprint: the same key always has the same `kid`."""
    jwk = _public_jwk(public_key)
    canonical = json.dumps(
        {name: jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True
    )
    return _base64url(hashlib.sha256(canonical.encode()).digest())


def jwks_of(key: SigningKey) -> dict[str, Any]:
    """The public key set API Gateway would fetch from the issuer's `jwks_uri`."""
    jwk = {**_public_jwk(key.private_key.public_key()), "kid": key.kid}
    return {"keys": [{**jwk, "use": "sig", "alg": ALGORITHM}]}


def _public_jwk(public_key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {"kty": "RSA", "n": _base64url_int(numbers.n), "e": _base64url_int(numbers.e)}


def _base64url_int(value: int) -> str:
    return _base64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _write_replacing(path: Path, data: bytes) -> None:
    """Whole or absent, never half-written, for a reader at the same moment."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# --- tokens -------------------------------------------------------------------------------
def check_user_name(user: str) -> str:
    if not _USER_NAME.fullmatch(user):
        raise ValueError(
            f"a user name is 1 to 128 letters, digits or . _ @ + - (not {user!r}): "
            "it becomes the token's sub"
        )
    return user


def token_claims(
    user: str,
    *,
    admin: bool = False,
    ttl_seconds: int,
    issued_at: int,
    audience: str = AUDIENCE,
    issuer: str = ISSUER,
) -> dict[str, Any]:
    """The claims of a token for `user`, as Cognito writes an ID token's (an admin is in the
    `admin` group), with `client_id` as an access token's would carry it."""
    claims: dict[str, Any] = {
        "sub": user,
        "cognito:username": user,
        "iss": issuer,
        "aud": audience,
        "client_id": audience,
        "token_use": "id",
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    if admin:
        claims[GROUPS_CLAIM] = [ADMIN_GROUP]
    return claims


def mint(
    user: str,
    *,
    admin: bool = False,
    ttl_seconds: int,
    key: SigningKey,
    audience: str = AUDIENCE,
    issuer: str = ISSUER,
    now: float | None = None,
) -> str:
    """A signed token (RS256, `kid` in its header) for `user`, valid for `ttl_seconds` from
    `now` (default: the current time).

    It is the JWS compact form written out with `cryptography` rather than by PyJWT, whose
    import alone would double the time of `concierge ask --user` through a running server;
    PyJWT reads and verifies it (`Verifier`), and the tests hold the two together."""
    if ttl_seconds <= 0:
        raise ValueError("a token must live at least a second")
    claims = token_claims(
        check_user_name(user),
        admin=admin,
        ttl_seconds=ttl_seconds,
        issued_at=int(time.time() if now is None else now),
        audience=audience,
        issuer=issuer,
    )
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": "JWT"}
    signing_input = f"{_base64url(_compact_json(header))}.{_base64url(_compact_json(claims))}"
    signature = key.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_base64url(signature)}"


def _compact_json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class Verifier:
    """Checks tokens as API Gateway's JWT authorizer does, against the local JWKS.

    The JWKS is read again when its file changes (a new local key), as API Gateway fetches
    the issuer's keys again."""

    def __init__(
        self,
        keys: LocalKeys,
        *,
        issuer: str = ISSUER,
        audiences: tuple[str, ...] = (AUDIENCE,),
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audiences = audiences
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._public: dict[str, jwt.PyJWK] = {}

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; `TokenRejected` saying why API Gateway would refuse it."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenRejected("it is not a JWT") from None
        if header.get("alg") != ALGORITHM:
            raise TokenRejected(f"it must be signed with {ALGORITHM}, not {header.get('alg')!r}")
        key = self._public_keys().get(str(header.get("kid")))
        if key is None:
            raise TokenRejected("its kid names no key of the issuer's JWKS")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                options={
                    "require": ["exp", "iss"],
                    "verify_aud": False,  # aud, or client_id without aud: checked below
                    "verify_sub": False,
                    "verify_jti": False,
                },
            )
        except jwt.InvalidTokenError as error:
            raise TokenRejected(_reason(error, self.issuer)) from None
        self._check_audience(claims)
        return claims

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        # API Gateway reads client_id only when there is no aud.
        audience = claims.get("aud")
        if audience is None:
            if claims.get("client_id") not in self.audiences:
                raise TokenRejected(f"its client_id (no aud) is not {_either(self.audiences)}")
            return
        given = [audience] if isinstance(audience, str) else audience
        if not isinstance(given, list) or not any(a in self.audiences for a in given):
            raise TokenRejected(f"its audience is not {_either(self.audiences)}")

    def _public_keys(self) -> dict[str, jwt.PyJWK]:
        try:
            status = self.keys.jwks_path.stat()
        except FileNotFoundError:
            return {}
        stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._public, self._stamp = _read_jwks(self.keys.jwks_path), stamp
            return self._public


def _read_jwks(path: Path) -> dict[str, jwt.PyJWK]:
    import jwt

    try:
        document = json.loads(path.read_bytes())
        entries = document["keys"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries if isinstance(entries, list) else []:
        try:
            if entry.get("kty") == "RSA" and entry.get("kid"):
                keys[str(entry["kid"])] = jwt.PyJWK(entry, algorithm=ALGORITHM)
        except (jwt.PyJWKError, jwt.InvalidKeyError, AttributeError, ValueError):
            continue
    return keys


def _reason(error: jwt.InvalidTokenError, issuer: str) -> str:
    import jwt

    if isinstance(error, jwt.ExpiredSignatureError):
        return "it has expired"
    if isinstance(error, jwt.ImmatureSignatureError):
        return "it is not valid yet"
    if isinstance(error, jwt.InvalidIssuerError):
        return f"its issuer is not {issuer}"
    if isinstance(error, jwt.InvalidSignatureError):
        return "its signature does not match the issuer's key"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"it has no {error.claim} claim"
    return f"it is not valid ({error})"


def _either(values: tuple[str, ...]) -> str:
    return " or ".join(values)


def read_unverified(token: str) -> dict[str, Any]:
    """A token's claims, without any check: auth `off` only."""
    import jwt

    try:
        return jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise TokenRejected("it is not a JWT") from None


# --- API Gateway's part -------------------------------------------------------------------
def gateway_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """The claims as API Gateway passes them to the function: every value a string."""
    return {str(name): _claim_text(value) for name, value in claims.items()}


def _claim_text(value: Any) -> str:
    # Strings as they are, numbers as their decimal text and arrays as "[a b]" are what API
    # Gateway is seen to send. Its arrays are Go's fmt of a slice, so true/false, objects
    # ("map[k:v]") and null ("<nil>") follow the same rules; those are not documented.
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, str | int | float):
        text = str(value)
    elif isinstance(value, list):
        text = "[" + " ".join(_claim_text(item) for item in value) + "]"
    elif isinstance(value, dict):
        text = "map[" + " ".join(f"{k}:{_claim_text(v)}" for k, v in sorted(value.items())) + "]"
    else:
        text = "<nil>" if value is None else str(value)
    return text


def bearer_token(headers: Mapping[str, Any] | None) -> str | None:
    """The token of the Authorization header (any case), with or without its `Bearer ` prefix
    as API Gateway takes it; None without one."""
    for name, value in (headers or {}).items():
        if str(name).lower() == "authorization":
            text = str(value or "").strip()
            if text[:7].lower() == "bearer ":
                text = text[7:].strip()
            return text or None
    return None


class Unauthorized(Exception):
    """The request is refused before the function runs; `response` is API Gateway's 401,
    in the API's error shape."""

    def __init__(self, message: str, request_id: str, challenge: str) -> None:
        super().__init__(message)
        document = {"error": {"code": "unauthorized", "message": message, "request_id": request_id}}
        self.response: dict[str, Any] = {
            "statusCode": 401,
            "headers": {
                "content-type": "application/json",
                "x-request-id": request_id,
                "www-authenticate": challenge,
            },
            "body": json.dumps(document),
            "isBase64Encoded": False,
        }


class Authorizer:
    """API Gateway's JWT authorizer in front of the local api function (see the module)."""

    def __init__(self, mode: AuthMode, keys: LocalKeys) -> None:
        if mode not in AUTH_MODES:
            raise ValueError(f"the auth mode is one of {', '.join(AUTH_MODES)}, not {mode!r}")
        self.mode = mode
        self.keys = keys
        self._verifier: Verifier | None = None
        if mode == "local":
            # The key exists before any token is asked for, so the tokens made from now on
            # are signed by the key this authorizer trusts.
            keys.signing_key()
            self._verifier = Verifier(keys)

    def authorize(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The event with the caller's claims where API Gateway puts them; `Unauthorized`
        (with the 401 response) when the request may not reach the function."""
        context = event.get("requestContext") or {}
        http = context.get("http") or {}
        method = str(http.get("method", "")).upper()
        path = str(event.get("rawPath") or http.get("path") or "")
        if method == "OPTIONS" or (method, path) in _PUBLIC_ROUTES:
            return dict(event)  # no authorizer on these routes: no claims either
        token = bearer_token(event.get("headers"))
        request_id = _request_id(context)
        if token is None and self._verifier is not None:
            raise Unauthorized(
                "A bearer token is required (Authorization: Bearer <token>); "
                "`concierge token --user NAME` makes one.",
                request_id,
                "Bearer",
            )
        try:
            if token is None:
                claims = local_user_claims()
            elif self._verifier is None:
                claims = read_unverified(token)
            else:
                claims = self._verifier.verify(token)
        except TokenRejected as rejected:
            description = _header_safe(f"the token was refused: {rejected}")
            raise Unauthorized(
                f"The bearer token was refused: {rejected}.",
                request_id,
                f'Bearer error="invalid_token", error_description="{description}"',
            ) from None
        authorizer = {"jwt": {"claims": gateway_claims(claims), "scopes": None}}
        return {**event, "requestContext": {**context, "authorizer": authorizer}}

    def describe(self) -> str:
        """What the local server says at start about who its callers are."""
        if self.mode == "off":
            return (
                f"auth off: a request is the local user `{LOCAL_USER}` (an admin), or the user "
                "of its bearer token, NOT verified; CONCIERGE_AUTH=local verifies tokens as "
                "API Gateway does"
            )
        return (
            "auth local: a bearer token is required and verified as API Gateway does "
            f"(issuer {ISSUER}, audience {AUDIENCE}, keys {self.keys.jwks_path}); "
            "`concierge token --user NAME [--admin]` makes one"
        )


def as_local_user(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as auth off makes a request without a token: the local user's, with the
    claims where API Gateway puts them (for callers of the api function in-process)."""
    context = event.get("requestContext") or {}
    authorizer = {"jwt": {"claims": gateway_claims(local_user_claims()), "scopes": None}}
    return {**event, "requestContext": {**context, "authorizer": authorizer}}


def local_user_claims(now: float | None = None) -> dict[str, Any]:
    """Who a request without a token is when auth is off: what a token minted for the local
    user, an admin, would carry."""
    return token_claims(
        LOCAL_USER,
        admin=True,
        ttl_seconds=_IMPLICIT_TTL_SECONDS,
        issued_at=int(time.time() if now is None else now),
    )


def _header_safe(text: str) -> str:
    """Text for a quoted header parameter: printable ASCII, no double quote."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "'" for c in text)


def _request_id(context: Mapping[str, Any]) -> str:
    """The request id the api function would use (its execution-name-safe form)."""
    safe = _UNSAFE_ID_CHARS.sub("", str(context.get("requestId") or ""))[:64]
    return safe or uuid.uuid4().hex
