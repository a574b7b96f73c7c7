"""Routes other than POST /chat: health, unknown paths, wrong methods."""

from __future__ import annotations

import pytest
from e2e.http_support import ChatApi, assert_error_reply, assert_json_without_internals


def test_health_answers_200_with_a_json_object(api: ChatApi) -> None:
    # When the health route is called
    reply = api.request("GET", "/health")

    # Then it is up and says so in JSON
    assert reply.status == 200
    assert_json_without_internals(reply)
    assert isinstance(reply.json(), dict)


@pytest.mark.parametrize(
    ("method", "path"),
    # GET / is the web page (tests/e2e/test_web_static.py); a POST there is no route.
    [("GET", "/nowhere"), ("POST", "/chats"), ("POST", "/chat/extra"), ("POST", "/")],
)
def test_an_unknown_path_is_404_with_the_error_shape(api: ChatApi, method: str, path: str) -> None:
    # When a path that is not a route is called
    reply = api.request(method, path, b"{}" if method == "POST" else None)

    # Then it is a 404 in the error shape
    assert_error_reply(reply, 404)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_chat_with_a_method_other_than_post_is_405(api: ChatApi, method: str) -> None:
    # When /chat is called with the wrong method
    reply = api.request(method, "/chat")

    # Then it is a 405 in the error shape
    assert_error_reply(reply, 405)
