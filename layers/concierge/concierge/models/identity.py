"""Who is asking: the signed-in user, from the claims API Gateway's JWT authorizer verified.

API Gateway passes every claim as a string: an array claim such as Cognito's
`cognito:groups: ["admin", "ops"]` arrives as "[admin ops]". Other issuers may send a plain
string ("admin"), a comma-separated one, or (locally, or through another front) a real list;
all of them are read the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The user of a local run with auth off (and of `sam local invoke` events): an admin.
LOCAL_USER = "local"


@dataclass(frozen=True)
class User:
    user_id: str  # the token's `sub`
    admin: bool


def user_from_claims(
    claims: Mapping[str, object], admin_claim: str, admin_group: str
) -> User | None:
    """The user the claims name, or None when they name nobody (no `sub`)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        return None
    return User(user_id=subject, admin=admin_group in claim_values(claims.get(admin_claim)))


def claim_values(claim: object) -> set[str]:
    """The values of a claim that may hold several: a list, "[a b]", "a,b" or "a"."""
    if isinstance(claim, list | tuple | set):
        return {str(value) for value in claim}
    if not isinstance(claim, str):
        return set()
    text = claim.strip().removeprefix("[").removesuffix("]")
    return {value for value in text.replace(",", " ").split() if value}
