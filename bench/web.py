"""The web chat page's first load over loopback, in the system Chromium (Playwright): what it
weighs, how long until the question box can be used, and which requests the page makes - on
load and through one chat (ask, follow up, rate, forget) - against `concierge serve`.

`--web-screenshot PATH` also saves a screenshot of a conversation (docs/web-chat.png is one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from bench.figures import Summary, goals, ms, reproduce, table
from bench.local_server import BenchError, serving

TITLE = "Web page: first load, weight, time to interactive, requests"
LOADS = 20
WEIGHT_GOAL_BYTES = 100 * 1024
TTI_GOAL_MS = 500.0
# What a checkout needs to be `--root` of `concierge serve`, the page included.
ROOT_ENTRIES = ("template.yaml", "functions", "statemachine", "layers", "web")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--no-first-run",
    "--no-default-browser-check",
]
# The page's own files and the API calls a chat needs: anything else is reported as extra.
PAGE_FILES = {"/", "/app.js", "/style.css", "/icon.svg", "/config.json"}
CHAT_CALLS = {("POST", "/chat"), ("POST", "/feedback"), ("DELETE", "/sessions/{id}")}
QUESTIONS = ("How long is the warranty on tents?", "And on sleeping bags?")


@dataclass(frozen=True)
class Load:
    tti_ms: float  # navigation start to the question box enabled (performance.mark)
    dom_content_loaded_ms: float
    load_ms: float
    bytes_decoded: int  # uncompressed bodies of the document and every resource
    requests: list[str]  # "GET /path" of every request the load made


@dataclass
class WebResult:
    loads: list[Load]
    chat_requests: list[str] = field(default_factory=list)
    browser: str = ""
    files: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web-loads", type=int, default=LOADS, help=f"web: cold page loads (default {LOADS})"
    )
    parser.add_argument(
        "--web-screenshot", type=Path, help="web: also save a screenshot of a conversation here"
    )


def chromium() -> str:
    found = next(filter(None, (shutil.which(name) for name in CHROMIUM_NAMES)), None)
    if found is None:
        raise BenchError("web: no system Chromium (apt-get install chromium)")
    return found


def _work_root(root: Path, at: Path) -> Path:
    at.mkdir()
    for name in ROOT_ENTRIES:
        (at / name).symlink_to(root / name, target_is_directory=(root / name).is_dir())
    return at


@contextmanager
def _page_server(root: Path, work: Path) -> Any:
    from concierge.adapters.retrieval.local_index import write_index
    from concierge_cli.ingestion import build_index

    index = work / "index.json"
    write_index(build_index([root / "knowledge" / "sample"]), index)
    argv = ["--index", str(index), "--state", str(work / "tables.sqlite3"), "--quiet"]
    with serving(_work_root(root, work / "root"), argv, work / "serve.log") as server:
        yield server.url


def _path(url: str, method: str) -> str:
    path = urlsplit(url).path
    if method == "DELETE" and path.startswith("/sessions/"):
        path = "/sessions/{id}"
    return f"{method} {path}"


def _load(browser: Any, url: str) -> Load:
    context = browser.new_context()  # a fresh context: nothing cached
    try:
        page = context.new_page()
        seen: list[str] = []
        page.on("request", lambda r: seen.append(_path(r.url, r.method)))
        page.goto(url + "/")
        page.wait_for_selector("#question:enabled")
        page.wait_for_load_state("load")
        timing = page.evaluate(
            """() => {
              const nav = performance.getEntriesByType('navigation')[0];
              const mark = performance.getEntriesByName('concierge:interactive')[0];
              const resources = performance.getEntriesByType('resource');
              return {
                tti: mark ? mark.startTime : NaN,
                dcl: nav.domContentLoadedEventEnd,
                load: nav.loadEventEnd,
                bytes: nav.decodedBodySize + resources.reduce((n, r) => n + r.decodedBodySize, 0),
              };
            }"""
        )
        return Load(timing["tti"], timing["dcl"], timing["load"], int(timing["bytes"]), seen)
    finally:
        context.close()


def _chat(browser: Any, url: str, screenshot: Path | None) -> list[str]:
    """The requests one conversation makes after the load: two questions, a rating, forget."""
    context = browser.new_context(viewport={"width": 1000, "height": 1200})
    try:
        page = context.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#question:enabled")
        seen: list[str] = []
        page.on("request", lambda r: seen.append(_path(r.url, r.method)))
        for number, question in enumerate(QUESTIONS, start=1):
            page.fill("#question", question)
            page.press("#question", "Enter")
            page.wait_for_selector(f".turn:nth-child({number}) .answer")
            page.wait_for_selector("#question:enabled")
        first = page.locator(".answer").first
        first.locator(".sources summary").first.click()
        first.get_by_role("button", name="Yes").click()
        first.get_by_label("Comment (optional)").fill("Clear and short.")
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(screenshot))
        first.get_by_role("button", name="Send rating").click()
        page.wait_for_selector(".rating-status:has-text('Thank you')")
        page.click("#forget")
        page.click("#forget-dialog button[value=forget]")
        page.wait_for_selector("#notice:not([hidden])")
        return seen
    finally:
        context.close()


def run(args: argparse.Namespace, root: Path, log: TextIO) -> WebResult:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    executable = chromium()
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
    files = {f.name: f.stat().st_size for f in sorted((root / "web").iterdir()) if f.is_file()}
    with tempfile.TemporaryDirectory(prefix="bench-web-") as work, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=[*sandbox, *CHROMIUM_ARGS])
        try:
            with _page_server(root, Path(work)) as url:
                log.write(
                    f"web: {args.web_loads} cold loads of {url}/ in Chromium {browser.version}\n"
                )
                _load(browser, url)  # the server's first answers, not timed
                loads = [_load(browser, url) for _ in range(args.web_loads)]
                chat = _chat(browser, url, args.web_screenshot)
        finally:
            version = browser.version
            browser.close()
    result = WebResult(loads=loads, chat_requests=chat, browser=version, files=files)
    extra_on_load = sorted(
        {r for load in loads for r in load.requests if r.split(" ", 1)[1] not in PAGE_FILES}
    )
    calls = {tuple(r.split(" ", 1)) for r in chat}
    if extra_on_load:
        result.errors.append(f"requests beyond the page's files on load: {extra_on_load}")
    if not calls <= CHAT_CALLS:
        result.errors.append(f"requests beyond a chat's API calls: {sorted(calls - CHAT_CALLS)}")
    if max(load.bytes_decoded for load in loads) > WEIGHT_GOAL_BYTES:
        result.errors.append("the page weighs more than 100 KB")
    return result


def render(result: WebResult) -> str:
    tti = Summary.of([load.tti_ms / 1000 for load in result.loads])
    dcl = Summary.of([load.dom_content_loaded_ms / 1000 for load in result.loads])
    loaded = Summary.of([load.load_ms / 1000 for load in result.loads])
    weight = max(load.bytes_decoded for load in result.loads)
    on_load = sorted({r for load in result.loads for r in load.requests})
    counts: dict[str, int] = {}
    for request in result.chat_requests:
        counts[request] = counts.get(request, 0) + 1
    extra = [r for r in on_load if r.split(" ", 1)[1] not in PAGE_FILES]
    beyond_chat = [r for r in counts if tuple(r.split(" ", 1)) not in CHAT_CALLS]
    return "\n".join(
        [
            reproduce(TITLE, "web", ("--web-loads", len(result.loads), LOADS)),
            "",
            goals(
                (
                    "page weight, uncompressed (fonts: none)",
                    f"≤ {WEIGHT_GOAL_BYTES // 1024} KB",
                    f"{weight / 1024:.1f} KB",
                    weight <= WEIGHT_GOAL_BYTES,
                ),
                (
                    "time to interactive, p50 (navigation start → question box enabled)",
                    f"≤ {TTI_GOAL_MS:g} ms",
                    f"{ms(tti.p50_ms)} ms",
                    tti.p50_ms <= TTI_GOAL_MS,
                ),
                (
                    "requests beyond the page's files and a chat's API calls",
                    "none",
                    ", ".join(extra + beyond_chat) or "none",
                    not extra and not beyond_chat,
                ),
            ),
            "",
            f"### {len(result.loads)} cold loads over loopback (Chromium {result.browser}, "
            "a fresh browser context each)",
            "",
            table(
                ["milestone (from navigation start)", "n", "p50 ms", "p95 ms", "min ms", "max ms"],
                [
                    [name, str(s.n), ms(s.p50_ms), ms(s.p95_ms), ms(s.min_ms), ms(s.max_ms)]
                    for name, s in (
                        ("DOMContentLoaded", dcl),
                        ("question box enabled (time to interactive)", tti),
                        ("load event", loaded),
                    )
                ],
            ),
            "",
            "### What a load fetches, and what a chat calls",
            "",
            table(
                ["file of web/", "bytes"],
                [[name, f"{size:,}"] for name, size in result.files.items()],
            ),
            "",
            f"On load: {', '.join(on_load)}. Through one conversation (two questions, a rating, "
            "forget): " + ", ".join(f"{request} ({n})" for request, n in counts.items()) + ".",
        ]
    )
