"""The web page as the local server serves it (`make run`): at `/`, with the right content types
and the security headers CloudFront adds in AWS, with its config.json, and without serving
anything else from the disk; the API's routes answer as before."""

from __future__ import annotations

import pytest
from e2e.http_support import ChatApi, assert_chat_reply, assert_error_reply

from concierge_cli.local.web import SECURITY_HEADERS, parse_policy

FILES = {
    "/": "text/html; charset=utf-8",
    "/index.html": "text/html; charset=utf-8",
    "/callback.html": "text/html; charset=utf-8",
    "/app.js": "text/javascript; charset=utf-8",
    "/callback.js": "text/javascript; charset=utf-8",
    "/style.css": "text/css; charset=utf-8",
    "/icon.svg": "image/svg+xml",
    "/config.json": "application/json",
}
# Paths that name no file of the page: they reach the API, which has no such route.
NOT_THE_PAGE = [
    "/../template.yaml",
    "/%2e%2e/template.yaml",
    "/web/index.html",
    "/.env",
    "/README.md",
    "/missing.js",
    "/app.js/",
]


@pytest.mark.parametrize(("path", "content_type"), FILES.items())
def test_each_file_has_its_type_and_the_security_headers(
    module_api: ChatApi, path: str, content_type: str
) -> None:
    # Given the local server
    # When a file of the page is asked for
    reply = module_api.request("GET", path)

    # Then it comes with its content type and the headers CloudFront adds
    assert reply.status == 200
    assert reply.headers["content-type"] == content_type
    assert reply.body
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers[name] == value
    policy = parse_policy(reply.headers["content-security-policy"])
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" not in reply.headers["content-security-policy"]
    assert policy["frame-ancestors"] == "'none'"
    assert policy["require-trusted-types-for"] == "'script'"


def test_the_page_loads_its_script_as_a_module(module_api: ChatApi) -> None:
    # Given the local server
    # When the page is asked for at /
    page = module_api.request("GET", "/").text

    # Then it is the chat page, its script a file of the site
    assert "<title>Concierge</title>" in page
    assert '<script type="module" src="app.js"></script>' in page


def test_config_tells_the_page_the_api_is_its_own_origin_without_sign_in(
    module_api: ChatApi,
) -> None:
    # Given the local server with auth off (as `make run`)
    # When the page reads its configuration
    reply = module_api.request("GET", "/config.json")

    # Then the API is the page's own origin and no sign-in is needed
    assert reply.json() == {"api_url": "", "auth": "off"}


@pytest.mark.parametrize("path", NOT_THE_PAGE)
def test_nothing_else_is_served_from_the_disk(module_api: ChatApi, path: str) -> None:
    # Given the local server
    # When a path that names no file of the page is asked for
    reply = module_api.request("GET", path)

    # Then the API answers it, with its not-found error
    assert_error_reply(reply, 404, "not_found")


def test_head_gives_the_headers_without_the_body(module_api: ChatApi) -> None:
    # Given the local server
    # When the page is asked for with HEAD
    reply = module_api.request("HEAD", "/")

    # Then its headers come, without a body
    assert reply.status == 200
    assert int(reply.headers["content-length"]) > 0
    assert reply.body == b""


def test_the_api_answers_next_to_the_page(api: ChatApi) -> None:
    # Given the local server serving the page
    # When the API's routes are called
    health = api.request("GET", "/health")
    answer = api.chat("What do you sell?")

    # Then they answer as before, without the page's headers
    assert health.status == 200
    assert_chat_reply(answer)
    assert "content-security-policy" not in answer.headers
