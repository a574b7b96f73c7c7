"""Who is asking, over HTTP, in both modes of the local server: without a token and with tokens
API Gateway would refuse; sessions of the same name in two users' spaces; admin routes and
`bypass_cache` sent by a user; erasing a user.

Each test runs twice (`users` is parametrized by the auth mode). With auth `local` the server
verifies tokens as API Gateway's JWT authorizer does. With auth `off` (the default of
`concierge serve`) nothing is verified: a request without a token is the local user, an admin,
and a token is read WITHOUT any check, so an expired, foreign or forged token is its user.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from e2e.http_support import (
    UsersService,
    assert_chat_reply,
    assert_error_reply,
    items_of,
    model_steps,
    sources,
    steps_run,
    table_items,
    turns_of,
)

from concierge.models.identity import LOCAL_USER
from concierge_cli.local.auth import SigningKey

FIRST = "What do you sell?"
FOLLOW_UP = "Which of them is cheapest?"
OTHER = "How long is the warranty on backpacks?"


@cache
def _other_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def refused_token(users: UsersService, kind: str, user: str) -> str:
    """A token for `user` that API Gateway would refuse, for the reason `kind`."""
    if kind == "expired":
        # Issued two hours ago, valid for one.
        return users.token(user, now=time.time() - 7200, ttl_seconds=3600)
    if kind == "wrong-audience":
        return users.token(user, audience="another-app")
    # Forged: it names the issuer's key, but another key signed it.
    forged = SigningKey(kid=users.key.kid, private_key=_other_private_key())
    return users.token(user, admin=True, key=forged)


def stored_users(users: UsersService) -> set[str]:
    return {item["user_id"]["S"] for item in table_items(users.runtime, "HistoryTable")}


# -- no token, refused tokens ----------------------------------------------------------------
def test_a_request_without_a_token_is_the_local_admin_with_auth_off_and_401_with_auth_local(
    users: UsersService,
) -> None:
    # When a question is asked and the caller's usage read, without any token
    chat = users.api.chat(FIRST, session_id="anonymous")
    usage = users.api.request("GET", "/me/usage")

    if users.mode == "off":
        # Then with auth off both are the local user's: answered, and the turn stored as theirs
        assert_chat_reply(chat)
        assert usage.status == 200
        assert usage.json()["user_id"] == LOCAL_USER
        assert turns_of(users.runtime, LOCAL_USER, "anonymous") == [FIRST]
    else:
        # Then with auth local both are refused before the api function, as API Gateway does,
        # with the challenge and the error shape; nothing is stored
        for reply in (chat, usage):
            assert_error_reply(reply, 401, "unauthorized")
            assert reply.headers["www-authenticate"] == "Bearer"
        assert stored_users(users) == set()


def test_health_needs_no_token_in_either_mode(users: UsersService) -> None:
    # When the health route is called without a token
    reply = users.api.request("GET", "/health")

    # Then it answers, as API Gateway serves it without the authorizer
    assert reply.status == 200


@pytest.mark.parametrize("kind", ["expired", "wrong-audience", "another-key"])
def test_a_token_api_gateway_would_refuse_is_401_with_auth_local_and_its_user_with_auth_off(
    users: UsersService, kind: str
) -> None:
    # Given a token for mallory that is expired, for another audience, or forged
    mallory = users.api.with_token(refused_token(users, kind, "mallory"))

    # When mallory asks a question and reads her usage
    chat = mallory.chat(FIRST, session_id="sneaky")
    usage = mallory.request("GET", "/me/usage")

    if users.mode == "local":
        # Then with auth local both are refused as an invalid token; nothing is stored
        for reply in (chat, usage):
            assert_error_reply(reply, 401, "unauthorized")
            assert 'error="invalid_token"' in reply.headers["www-authenticate"]
        assert stored_users(users) == set()
    else:
        # Then with auth off the token is NOT verified: she is its user, whatever is wrong
        # with it, and her turn is stored as hers
        assert_chat_reply(chat)
        assert usage.status == 200
        assert usage.json()["user_id"] == "mallory"
        assert turns_of(users.runtime, "mallory", "sneaky") == [FIRST]


# -- another user's session ------------------------------------------------------------------
def test_another_users_session_of_the_same_name_is_a_fresh_conversation(
    users: UsersService,
) -> None:
    # Given alice's session "trail", which asked what the shop sells
    alice, bob = users.as_user("alice"), users.as_user("bob")
    alice.ask(FIRST, session_id="trail")

    # When bob asks a follow-up on a session he also calls "trail"
    bobs = bob.ask(FOLLOW_UP, session_id="trail")

    # Then bob's question is a first turn in his own space: classified, never condensed
    # against alice's history
    assert bobs["session_id"] == "trail"
    assert steps_run(users.runtime, bobs["request_id"]) == ["classify", "answer"]
    # And each user's session holds their own turn only
    assert turns_of(users.runtime, "alice", "trail") == [FIRST]
    assert turns_of(users.runtime, "bob", "trail") == [FOLLOW_UP]
    # And alice's follow-up is still understood against her own history
    alices = alice.ask(FOLLOW_UP, session_id="trail")
    assert model_steps(users.runtime, alices["request_id"]) == ["condense", "answer"]
    assert "en-price-list.md" in sources(alices)
    assert "Pika" in alices["answer"]


def test_deleting_another_users_session_is_404_and_leaves_it_intact(
    users: UsersService,
) -> None:
    # Given alice's session "trail", whose answer is cached, and bob with no session at all
    alice, bob = users.as_user("alice"), users.as_user("bob")
    alice.ask(FIRST, session_id="trail")
    before = items_of(users.runtime, "alice")

    # When bob deletes a session "trail"
    reply = bob.request("DELETE", "/sessions/trail")

    # Then he has no such session: 404, as for one that never existed
    assert_error_reply(reply, 404, "not_found")
    # And alice's turn and cache entry are intact
    assert items_of(users.runtime, "alice") == before
    assert turns_of(users.runtime, "alice", "trail") == [FIRST]
    # And alice herself can delete it, and is told what it held
    mine = alice.request("DELETE", "/sessions/trail")
    assert mine.status == 200
    assert mine.json() == {"session_id": "trail", "turns": 1, "cache_entries": 1}


def test_deleting_a_session_both_users_named_the_same_deletes_the_callers_only(
    users: UsersService,
) -> None:
    # Given alice's and bob's sessions, both called "trail"
    alice, bob = users.as_user("alice"), users.as_user("bob")
    alice.ask(FIRST, session_id="trail")
    bob.ask(OTHER, session_id="trail")

    # When bob deletes "trail"
    reply = bob.request("DELETE", "/sessions/trail")

    # Then his turn and the entry his question produced go, and alice's session stays whole
    assert reply.status == 200
    assert reply.json() == {"session_id": "trail", "turns": 1, "cache_entries": 1}
    assert turns_of(users.runtime, "bob") == []
    assert turns_of(users.runtime, "alice", "trail") == [FIRST]
    assert len(items_of(users.runtime, "alice")["CacheTable"]) == 1


# -- admin routes and bypass_cache -----------------------------------------------------------
ADMIN_ROUTES = {
    "erase-a-user": ("DELETE", "/users/alice", None),
    "flush-all": ("POST", "/admin/cache/flush", b'{"all": true}'),
    "flush-a-version": ("POST", "/admin/cache/flush", b'{"kb_version": "1"}'),
}


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES.values(), ids=ADMIN_ROUTES)
def test_an_admin_route_called_as_a_user_is_403_and_changes_nothing(
    users: UsersService, method: str, path: str, body: bytes | None
) -> None:
    # Given alice's stored turn and cached answer
    users.as_user("alice").ask(FIRST, session_id="trail")
    before = items_of(users.runtime, "alice")
    headers = {"content-type": "application/json"} if body else None

    # When bob, who is not an admin, calls an admin route
    reply = users.as_user("bob").request(method, path, body, headers)

    # Then it is forbidden, and nothing of alice's is gone
    assert_error_reply(reply, 403, "forbidden")
    assert items_of(users.runtime, "alice") == before
    # And the same call by an admin is answered
    assert users.as_user("root", admin=True).request(method, path, body, headers).status == 200


def test_bypass_cache_sent_by_a_user_is_ignored_and_an_admins_is_honoured(
    users: UsersService,
) -> None:
    # Given a first-turn question whose answer is cached
    alice = users.as_user("alice")
    first = alice.ask(FIRST, session_id="first")

    # When alice, a user, asks it again asking to bypass the cache, in the body or the header
    in_body = alice.ask(FIRST, session_id="again", bypass_cache=True)
    in_header = alice.ask(FIRST, session_id="third", headers={"cache-control": "no-cache"})
    # And an admin asks it with the same request
    admins = users.as_user("root", admin=True).ask(FIRST, session_id="admin", bypass_cache=True)

    # Then alice is answered from the cache all the same, without any model call
    for body in (in_body, in_header):
        assert body["cached"] is True
        assert body["usage"]["llm_calls"] == 0
    # And her budget was charged for her first question only
    spent = first["usage"]["input_tokens"] + first["usage"]["output_tokens"]
    assert alice.usage()["tokens"] == spent
    # And the admin's bypass is honoured: answered afresh by the models
    assert admins["cached"] is False
    assert admins["usage"]["llm_calls"] >= 1


# -- erasure ---------------------------------------------------------------------------------
def _counts(items: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {
        "turns": len(items["HistoryTable"]),
        "cache_entries": len(items["CacheTable"]),
        "budget_days": len(items["BudgetTable"]),
        "feedback": len(items["FeedbackTable"]),
    }


def test_erasing_a_user_answers_what_was_stored_for_them_and_leaves_nothing(
    users: UsersService,
) -> None:
    # Given erin's two sessions (a first turn and its follow-up, then another first turn), which
    # cached answers and spent from her budget
    erin, frank = users.as_user("erin"), users.as_user("frank")
    erin.ask(FIRST, session_id="one")
    erin.ask(FOLLOW_UP, session_id="one")
    erin.ask(OTHER, session_id="two")
    # And frank, served one of erin's cached answers, with a cached answer of his own
    assert frank.ask(FIRST, session_id="mine")["cached"] is True
    frank.ask("Do you ship to Switzerland?", session_id="mine")
    stored = items_of(users.runtime, "erin")
    franks = items_of(users.runtime, "frank")
    assert _counts(stored)["turns"] == 3
    assert _counts(stored)["cache_entries"] >= 2
    assert _counts(stored)["budget_days"] == 1

    # When an admin erases erin
    reply = users.as_user("root", admin=True).request("DELETE", "/users/erin")

    # Then the answer counts what was stored for her: her turns, her entries, her budget days
    assert reply.status == 200
    assert reply.json() == {"user_id": "erin", **_counts(stored)}
    # And no table holds anything of hers any more
    assert _counts(items_of(users.runtime, "erin")) == {
        "turns": 0,
        "cache_entries": 0,
        "budget_days": 0,
        "feedback": 0,
    }
    # And frank's turns, entry and budget are untouched
    assert items_of(users.runtime, "frank") == franks
    # And her answers are no longer served from the cache
    assert frank.ask(FIRST, session_id="later")["cached"] is False


def test_erasing_a_user_with_nothing_stored_answers_zeros(users: UsersService) -> None:
    # When an admin erases a user who never asked anything
    reply = users.as_user("root", admin=True).request("DELETE", "/users/nobody")

    # Then there was nothing to erase
    assert reply.status == 200
    assert reply.json() == {
        "user_id": "nobody",
        "turns": 0,
        "cache_entries": 0,
        "budget_days": 0,
        "feedback": 0,
    }


def test_with_auth_off_the_local_user_is_an_admin(users: UsersService) -> None:
    # Given alice's stored turn
    users.as_user("alice").ask(FIRST, session_id="trail")

    # When a request without a token erases alice
    reply = users.api.request("DELETE", "/users/alice")

    # Then with auth off it is the local user, an admin, and alice is erased; with auth local
    # it never reaches the function
    if users.mode == "off":
        assert reply.status == 200
        assert reply.json()["turns"] == 1
        assert turns_of(users.runtime, "alice") == []
    else:
        assert_error_reply(reply, 401, "unauthorized")
        assert turns_of(users.runtime, "alice") == [FIRST]
