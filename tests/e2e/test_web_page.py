"""The web chat page in a real browser (the system Chromium, driven by Playwright) against the
local server: ask, follow up, open a source, rate, forget, errors in plain words, markup in an
answer shown as text, a phone-sized screen, the keyboard, and both ways of signing in (a pasted
local token; the hosted UI's authorization code flow with PKCE, against a stand-in on loopback).

One runtime for the module (the sample knowledge base plus one document whose text carries an
HTML image with an event handler), one browser, a fresh browser context and empty tables for
each test. Without Chromium the module is skipped, on one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.browser_support import HostedUi, chromium_or_skip, hosted_ui, launch_arguments
from e2e.http_support import ChatApi, empty_tables, items_of, serving, turns_of

from concierge.adapters.retrieval.local_index import write_index
from concierge_cli.ingestion import build_index
from concierge_cli.local.auth import Authorizer, LocalKeys, mint
from concierge_cli.local.runtime import LocalRuntime
from concierge_cli.local.web import WebSite

CHROMIUM = chromium_or_skip()

from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright  # noqa: E402

# Generous: a chain takes well under a second here; this only stops a hung test.
expect.set_options(timeout=20_000)

# The page's requests go through the chain: each user may spend this much a day, and a request
# reserves this much until it settles (a first-turn miss spends about 850 to 1,000 tokens), so
# a test asking three questions is never refused, and the fifth or sixth question is.
DAILY_TOKEN_LIMIT = 4_000
REQUEST_TOKEN_RESERVE = 1_500

# A document of the module's knowledge base: an answer citing it quotes an HTML image with an
# event handler. Its `src` is a path of the site itself, which the answer's link check allows
# (an image of a foreign host would be removed before it reaches the page). One copy in each
# category, so that whichever the question is classified in, retrieval finds one.
INJECTED = "<img src=/x onerror=\"document.title='injected'\">"
CATEGORIES = ("products", "pricing", "policies", "support", "company")
GIFT_WRAPPING = """---
title: Gift wrapping <b>service</b>
category: {category}
language: en
---
# Gift wrapping

We wrap gifts in recycled paper for free ({category} desk).
{sentence}
"""
# One line: the offline model quotes whole sentences, and a line break ends one.
SENTENCE = "Gift wrapping works with a label like {injected} on every parcel we wrap."
GIFT_QUESTION = "Do you offer a gift wrapping service?"
WARRANTY_QUESTION = "How long is the warranty on tents?"


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def web_runtime(
    repo_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalRuntime]:
    extra = tmp_path_factory.mktemp("web-kb")
    for category in CATEGORIES:
        sentence = SENTENCE.format(injected=INJECTED)
        document = GIFT_WRAPPING.format(category=category, sentence=sentence)
        (extra / f"en-gift-wrapping-{category}.md").write_text(document, encoding="utf-8")
    index = build_index([repo_root / "knowledge" / "sample", extra])
    path = tmp_path_factory.mktemp("web-index") / "index.json"
    write_index(index, path)
    environ = {
        "CONCIERGE_DAILY_TOKEN_LIMIT": str(DAILY_TOKEN_LIMIT),
        "CONCIERGE_REQUEST_TOKEN_RESERVE": str(REQUEST_TOKEN_RESERVE),
    }
    with LocalRuntime(repo_root, path, index.kb_version, environ=environ) as local:
        yield local


@pytest.fixture(scope="module")
def site(web_runtime: LocalRuntime) -> Iterator[ChatApi]:
    """`concierge serve` as `make run` starts it: auth off, the page at /."""
    with serving(web_runtime) as api:
        yield api


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> LocalKeys:
    return LocalKeys(tmp_path_factory.mktemp("web-auth") / "keys")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    playwright: Playwright
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=launch_arguments()
        )
        yield launched
        launched.close()


class Tab:
    """A page in a fresh browser context, with what went wrong in it: uncaught errors and
    Content-Security-Policy violations."""

    def __init__(self, page: Page, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.add_init_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation',"
            " (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )

    def open(self) -> Page:
        self.page.goto(self.base + "/")
        return self.page

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__violations")
        return found

    def ask(self, question: str) -> None:
        """Type a question and send it with Enter; wait until the chain has answered (or the
        page shows an error)."""
        answers = self.page.locator(".answer").count()
        self.page.fill("#question", question)
        self.page.press("#question", "Enter")
        expect(self.page.locator("#progress")).to_be_hidden()
        expect(self.page.locator("#send")).to_have_text("Ask")
        if self.page.locator("#error").is_hidden():
            expect(self.page.locator(".answer")).to_have_count(answers + 1)


@pytest.fixture
def tab(browser: Browser, site: ChatApi, web_runtime: LocalRuntime) -> Iterator[Tab]:
    empty_tables(web_runtime)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield Tab(context.new_page(), f"http://{site.host}:{site.port}")
    finally:
        context.close()


def posted(page: Page, action: Any) -> dict[str, Any]:
    """The JSON body of the POST /chat that `action` makes the page send."""
    with page.expect_request(lambda r: r.url.endswith("/chat") and r.method == "POST") as request:
        action()
    body: dict[str, Any] = json.loads(request.value.post_data or "{}")
    return body


def last_answer(page: Page) -> Any:
    return page.locator(".answer").last


# -- asking --------------------------------------------------------------------------------
# What the page looks like whenever its progress line appears (routing a request in Playwright
# turns the browser's cache off, which sends `Cache-Control: no-cache`: the chain is watched,
# not held, so that a question asked again is answered from the cache as it would be).
WATCH_PROGRESS = """
window.__progress = [];
new MutationObserver(() => {
  const progress = document.getElementById('progress');
  if (!progress || progress.hidden) return;
  window.__progress.push({
    question: document.getElementById('question').disabled,
    send: document.getElementById('send').disabled,
    label: document.getElementById('send').textContent,
    busy: document.getElementById('conversation').getAttribute('aria-busy'),
  });
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['hidden']});
"""


def test_an_answer_shows_its_sources_language_cost_and_cache_marker(tab: Tab) -> None:
    # Given the page, watched while it works
    tab.page.add_init_script(WATCH_PROGRESS)
    page = tab.open()

    # When a question is sent
    tab.ask(WARRANTY_QUESTION)

    # Then while the chain ran the page said so and took no other question
    shown = page.evaluate("window.__progress")
    assert shown
    assert shown[0] == {"question": True, "send": True, "label": "Asking…", "busy": "true"}

    # And the answer arrives with its language, its cost and its sources, not from the cache
    answer = last_answer(page)
    expect(answer.locator(".answer-text")).to_have_text(re.compile(r"\w{3,}"))
    expect(answer.locator(".language")).to_have_text("Language: English (en)")
    expect(answer.locator(".cost")).to_have_text(re.compile(r"Cost: \$0 \(\d model calls?\)"))
    expect(answer.locator(".sources h3")).to_have_text(re.compile(r"Sources \(\d\)"))
    expect(answer.locator(".sources summary").first).to_have_text(re.compile(r"\w+"))
    expect(answer.locator(".cached")).to_have_count(0)
    expect(page.locator("#progress")).to_be_hidden()
    expect(page.locator("#question")).to_be_focused()

    # When the same question is asked in a new conversation
    page.click("#new-conversation")
    expect(page.locator(".turn")).to_have_count(0)
    tab.ask(WARRANTY_QUESTION)

    # Then it is served from the cache, and the page says so
    expect(last_answer(page).locator(".cached")).to_have_text("From cache")
    assert tab.errors == []
    assert tab.violations() == []


def test_a_follow_up_goes_in_the_same_session(tab: Tab, web_runtime: LocalRuntime) -> None:
    # Given a first answer
    page = tab.open()
    first = posted(page, lambda: tab.ask("What do you sell?"))
    expect(page.locator(".answer")).to_have_count(1)

    # When a follow-up is asked
    page.fill("#question", "Which of them is cheapest?")
    follow_up = posted(page, lambda: page.press("#question", "Enter"))
    expect(page.locator(".answer")).to_have_count(2)

    # Then the first went without a session and the follow-up named the session it got
    assert "session_id" not in first
    (session,) = {s for s in [follow_up.get("session_id")] if s}
    assert turns_of(web_runtime, "local", session) == [
        "What do you sell?",
        "Which of them is cheapest?",
    ]
    expect(last_answer(page).locator(".answer-text")).to_contain_text("€")


def test_a_source_opens_to_its_snippet(tab: Tab) -> None:
    # Given an answer with sources, closed
    page = tab.open()
    tab.ask(WARRANTY_QUESTION)
    source = last_answer(page).locator(".sources details").first
    expect(source.locator(".snippet")).to_be_hidden()

    # When its title is clicked
    source.locator("summary").click()

    # Then its snippet and its file show
    expect(source.locator(".snippet")).to_be_visible()
    expect(source.locator(".snippet")).to_have_text(re.compile(r"\w+ \w+ \w+"))
    expect(source.locator(".file")).to_have_text(re.compile(r"^en-[\w-]+\.md$"))

    # And a marker in the answer's text opens its source too
    source.locator("summary").click()
    expect(source.locator(".snippet")).to_be_hidden()
    last_answer(page).locator("a.marker").first.click()
    expect(source.locator(".snippet")).to_be_visible()
    expect(source.locator("summary")).to_be_focused()


def test_a_rating_with_a_comment_is_stored(tab: Tab, web_runtime: LocalRuntime) -> None:
    # Given an answer
    page = tab.open()
    tab.ask(WARRANTY_QUESTION)
    answer = last_answer(page)
    request_id = answer.locator(".request-id").inner_text().removeprefix("Request id: ")

    # When it is rated down with a comment
    answer.get_by_role("button", name="No").click()
    expect(answer.get_by_label("Comment (optional)")).to_be_focused()
    answer.get_by_label("Comment (optional)").fill("Too vague")
    answer.get_by_role("button", name="Send rating").click()

    # Then the page thanks the user, and the rating is stored with its comment
    expect(answer.locator(".rating-status")).to_have_text("Thank you: rated not helpful.")
    expect(answer.get_by_role("button", name="No")).to_have_attribute("aria-pressed", "true")
    expect(answer.get_by_role("button", name="Yes")).to_be_disabled()
    (rating,) = items_of(web_runtime, "local")["FeedbackTable"]
    assert rating["request_id"]["S"] == request_id
    assert rating["rating"]["S"] == "down"
    assert rating["comment"]["S"] == "Too vague"


def test_forgetting_deletes_the_conversation_and_clears_the_view(
    tab: Tab, web_runtime: LocalRuntime
) -> None:
    # Given a conversation of two turns
    page = tab.open()
    first = posted(page, lambda: tab.ask("What do you sell?"))
    assert "session_id" not in first
    follow_up = posted(page, lambda: tab.ask("Which of them is cheapest?"))
    session = follow_up["session_id"]
    assert len(turns_of(web_runtime, "local", session)) == 2

    # When the user forgets it, and confirms
    page.get_by_role("button", name="Forget this conversation").click()
    expect(page.locator("#forget-dialog")).to_be_visible()
    page.get_by_role("button", name="Forget", exact=True).click()

    # Then it is gone from the service and from the page
    expect(page.locator("#notice")).to_contain_text("forgotten")
    expect(page.locator(".turn")).to_have_count(0)
    assert turns_of(web_runtime, "local", session) == []
    expect(page.get_by_role("button", name="Forget this conversation")).to_be_disabled()

    # And the next question starts a new conversation
    assert "session_id" not in posted(page, lambda: tab.ask(WARRANTY_QUESTION))


def test_keeping_the_conversation_deletes_nothing(tab: Tab, web_runtime: LocalRuntime) -> None:
    # Given a conversation
    page = tab.open()
    tab.ask(WARRANTY_QUESTION)

    # When the user opens "Forget" and keeps it, with the keyboard
    page.get_by_role("button", name="Forget this conversation").click()
    page.keyboard.press("Escape")

    # Then nothing is deleted and focus returns to the button
    expect(page.locator("#forget-dialog")).to_be_hidden()
    expect(page.locator(".turn")).to_have_count(1)
    assert len(turns_of(web_runtime, "local")) == 1
    expect(page.get_by_role("button", name="Forget this conversation")).to_be_focused()


# -- safety --------------------------------------------------------------------------------
def test_markup_in_an_answer_is_shown_as_text(tab: Tab) -> None:
    # Given a document whose text carries an image with an event handler
    page = tab.open()

    # When an answer quotes it
    tab.ask(GIFT_QUESTION)

    # Then the tag is text on the page: no element was made of it, nothing ran
    answer = last_answer(page)
    expect(answer.locator(".answer-text")).to_contain_text(INJECTED)
    assert answer.locator("img").count() == 0
    assert page.locator("img").count() == 0
    assert page.title() == "Concierge"
    # And the markup in the source's title and snippet is text as well
    source = answer.locator(".sources details").first
    expect(source.locator("summary")).to_have_text("Gift wrapping <b>service</b>")
    assert answer.locator("b").count() == 0
    source.locator("summary").click()
    expect(source.locator(".snippet")).to_contain_text("<img src=/x")
    assert tab.errors == []
    assert tab.violations() == []


def test_html_sinks_are_refused_by_the_policy(tab: Tab) -> None:
    # Given the page under its Content-Security-Policy
    page = tab.open()
    expect(page.locator("#question")).to_be_enabled()

    # When a script of the page tries to write HTML from a string
    outcome = page.evaluate(
        "() => { try { document.body.insertAdjacentHTML('beforeend', '<b>x</b>');"
        " return 'written'; } catch (error) { return error.name; } }"
    )

    # Then Trusted Types refuse it
    assert outcome == "TypeError"
    assert page.locator("b").count() == 0


# -- errors --------------------------------------------------------------------------------
ERRORS = {
    400: ("invalid_request", "The question could not be sent as it is"),
    401: ("unauthorized", "sign in again"),
    413: ("payload_too_large", "too long to send"),
    429: ("throttled", "Too many questions at once"),
    500: ("internal_error", "Something went wrong on our side"),
    502: ("model_error", "could not answer this request"),
    503: ("model_unavailable", "unavailable right now"),
    504: ("timeout", "took too long"),
}


def answering(status: int, code: str, request_id: str) -> Callable[[Route], None]:
    """A route handler that answers with an error of the API's shape."""
    body = {"error": {"code": code, "message": f"{code} details", "request_id": request_id}}

    def fulfil(route: Route) -> None:
        route.fulfill(status=status, json=body, headers={"x-request-id": request_id})

    return fulfil


def test_errors_read_as_sentences_with_the_request_id(tab: Tab) -> None:
    # Given the page
    page = tab.open()
    for status, (code, words) in ERRORS.items():
        request_id = f"req-{status}"
        page.route("**/chat", answering(status, code, request_id))

        # When the service answers a question with that error
        tab.ask(f"A question answered with {status}")

        # Then the page says what happened in a sentence, with the request id
        expect(page.locator("#error")).to_be_visible()
        expect(page.locator("#error-text")).to_contain_text(words)
        expect(page.locator("#error-id")).to_have_text(f"Request id: {request_id}")
        expect(page.locator("#question")).to_have_value(f"A question answered with {status}")
        page.unroute("**/chat")
    assert page.locator(".turn").count() == 0


def test_a_spent_budget_says_when_to_ask_again(tab: Tab) -> None:
    # Given a user whose daily allowance runs out after a few questions
    page = tab.open()
    questions = [
        "What do you sell?",
        "How long is the warranty on tents?",
        "How much does shipping to Austria cost?",
        "How do I return an order?",
        "Which payment methods do you accept?",
        "Where is your shop in Innsbruck?",
        "Do you rent gear to companies?",
    ]

    # When they keep asking until the service refuses
    for question in questions:
        page.click("#new-conversation")
        tab.ask(question)
        if page.locator("#error").is_visible():
            break

    # Then the page says the allowance is used up, when they can ask again, and the request id
    expect(page.locator("#error-text")).to_contain_text("used up today's allowance")
    expect(page.locator("#error-text")).to_contain_text(
        re.compile(r"You can ask again at \d{1,2}:\d{2}")
    )
    expect(page.locator("#error-id")).to_have_text(re.compile(r"Request id: \S+"))


# -- screen and keyboard -------------------------------------------------------------------
def test_the_page_works_375_pixels_wide(
    browser: Browser, site: ChatApi, web_runtime: LocalRuntime
) -> None:
    # Given a phone-sized screen
    empty_tables(web_runtime)
    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True)
    try:
        page = context.new_page()
        tab = Tab(page, f"http://{site.host}:{site.port}")
        tab.open()

        # When a question with sources and a long unbroken word is answered
        tab.ask(GIFT_QUESTION)
        last_answer(page).locator(".sources summary").first.click()
        tab.ask("x" * 300)

        # Then nothing scrolls sideways, and every control is on the screen and usable
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375
        for name in ("New conversation", "Forget this conversation", "Ask", "Yes", "No"):
            control = page.get_by_role("button", name=name, exact=True).first
            control.scroll_into_view_if_needed()
            box = control.bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 375
            assert box["height"] >= 40  # a finger's size
        page.get_by_role("button", name="Yes").first.click()
        expect(page.get_by_label("Comment (optional)").first).to_be_visible()
    finally:
        context.close()


def test_the_keyboard_reaches_everything_in_order(tab: Tab) -> None:
    # Given the page with one answer
    page = tab.open()
    tab.ask(WARRANTY_QUESTION)
    page.locator(".skip").focus()

    # When the user moves through it with Tab from the top
    order = ["Skip to the question"]
    for _ in range(12):
        page.keyboard.press("Tab")
        order.append(
            page.evaluate(
                "(() => { const e = document.activeElement;"
                " return e.id || e.getAttribute('aria-label') || e.textContent.trim(); })()"
            )
        )

    # Then it meets, in reading order, the skip link, the toolbar, the answer's marker and
    # sources, its rating, then the question and the Ask button
    assert order[0] == "Skip to the question"
    assert order[1:3] == ["new-conversation", "forget"]
    assert order[3] == "source 1"
    rest = order[4:]
    assert rest.index("Yes") < rest.index("No") < rest.index("question") < rest.index("send")

    # And the skip link jumps to the question
    page.locator(".skip").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#question")).to_be_focused()


def test_every_control_has_a_name(tab: Tab) -> None:
    # Given the page with an answer, its rating form open
    page = tab.open()
    tab.ask(WARRANTY_QUESTION)
    last_answer(page).get_by_role("button", name="Yes").click()

    # When its controls are read as a screen reader reads them
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('button, textarea, input, summary, a')]
            .filter((e) => e.offsetParent !== null)
            .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                           && !e.textContent.trim())
            .map((e) => e.outerHTML)"""
    )

    # Then every one of them has a name (a label, or its text)
    assert unnamed == []
    expect(page.get_by_label("Your question")).to_be_visible()


# -- signing in ----------------------------------------------------------------------------
def test_a_pasted_local_token_signs_in_and_sign_out_forgets_it(
    browser: Browser, web_runtime: LocalRuntime, keys: LocalKeys
) -> None:
    # Given the server verifying tokens (CONCIERGE_AUTH=local) and a token for alice
    empty_tables(web_runtime)
    with serving(web_runtime, Authorizer("local", keys)) as api:
        context = browser.new_context()
        try:
            tab = Tab(context.new_page(), f"http://{api.host}:{api.port}")
            page = tab.open()
            expect(page.locator("#who")).to_have_text("Not signed in")
            expect(page.locator("#question")).to_be_disabled()

            # When a token that is not the issuer's is pasted and a question asked
            page.get_by_label("Access token").fill("not-a-token")
            page.get_by_role("button", name="Use this token").click()
            tab.ask(WARRANTY_QUESTION)

            # Then the page asks to sign in again, with the request id, and offers it
            expect(page.locator("#error-text")).to_contain_text("sign in again")
            expect(page.locator("#error-id")).to_have_text(re.compile(r"Request id: \S+"))
            expect(page.locator("#who")).to_have_text("Not signed in")
            expect(page.get_by_label("Access token")).to_be_visible()

            # When alice's token is pasted instead
            token = mint("alice", ttl_seconds=600, key=keys.signing_key())
            page.get_by_label("Access token").fill(token)
            page.get_by_role("button", name="Use this token").click()
            tab.ask(WARRANTY_QUESTION)

            # Then she is signed in, and her question is hers
            expect(page.locator("#who")).to_have_text("Signed in as alice")
            assert turns_of(web_runtime, "alice") == [WARRANTY_QUESTION]
            assert page.evaluate("localStorage.length + sessionStorage.length") == 0
            assert page.evaluate("document.cookie") == ""

            # When she signs out
            page.get_by_role("button", name="Sign out").click()

            # Then the conversation and the token are gone from the page
            expect(page.locator(".turn")).to_have_count(0)
            expect(page.locator("#who")).to_have_text("Not signed in")
            expect(page.locator("#question")).to_be_disabled()
            expect(page.get_by_label("Access token")).to_have_value("")
            assert tab.errors == []
        finally:
            context.close()


def test_the_hosted_ui_signs_in_with_pkce_and_out_again(
    browser: Browser, web_runtime: LocalRuntime, keys: LocalKeys, repo_root: Path
) -> None:
    # Given the page configured for a user pool's hosted UI, which signs bob in
    empty_tables(web_runtime)
    ui = HostedUi(key=keys.signing_key(), user="bob")
    with hosted_ui(ui):
        website = WebSite.of(repo_root, "cognito", cognito_domain=ui.origin, client_id=ui.client_id)
        with serving(web_runtime, Authorizer("local", keys), website) as api:
            ui.page_origin = f"http://{api.host}:{api.port}"
            context = browser.new_context()
            try:
                tab = Tab(context.new_page(), ui.page_origin)
                page = tab.open()
                expect(page.locator("#who")).to_have_text("Not signed in")
                expect(page.locator("#question")).to_be_disabled()

                # When bob signs in (the hosted UI opens in a window of its own)
                with page.expect_popup() as popup:
                    page.get_by_role("button", name="Sign in").click()
                popup.value.wait_for_event("close")

                # Then the code was traded with the verifier of the challenge, once
                expect(page.locator("#who")).to_have_text("Signed in as bob")
                assert ui.refused == []
                (exchange,) = ui.exchanges
                assert exchange["redirect_uri"] == f"{ui.page_origin}/callback.html"
                assert len(exchange["code_verifier"]) >= 43

                # And he can ask; his token stays in the page's memory only
                tab.ask(WARRANTY_QUESTION)
                assert turns_of(web_runtime, "bob") == [WARRANTY_QUESTION]
                assert page.evaluate("localStorage.length + sessionStorage.length") == 0
                assert page.evaluate("document.cookie") == ""

                # When he signs out
                with page.expect_navigation():
                    page.get_by_role("button", name="Sign out").click()

                # Then his refresh token is revoked, the hosted UI's session ended, and the
                # page is back, signed out and empty
                assert len(ui.revoked) == 1
                (logout,) = ui.logouts
                assert logout == {"client_id": ui.client_id, "logout_uri": f"{ui.page_origin}/"}
                expect(page.locator("#who")).to_have_text("Not signed in")
                expect(page.locator(".turn")).to_have_count(0)
                assert tab.errors == []
                assert tab.violations() == []
            finally:
                context.close()
