"""`concierge` — ingest the knowledge base, serve the chat API locally, ask from the shell.

    concierge ingest [PATH ...] [--target local|s3://bucket/prefix]
                                           index documents (default: knowledge/sample) into
                                           .concierge/index.json or S3; `index` is an alias
    concierge serve [--port N] [--auth off|local]
                                           the HTTP API at http://127.0.0.1:3000 (CONCIERGE_PORT);
                                           tokens verified as API Gateway does with
                                           CONCIERGE_AUTH=local, not needed with off (default)
    concierge ask "question" [--session ID] [--user NAME [--admin]] [--json]
                  [--url URL | --in-process]
                                           through the running `serve` if there is one,
                                           else in this process
    concierge token --user NAME [--admin] [--ttl 1h]
                                           print a token for a local user, signed by the
                                           local key (.concierge/auth/)
    concierge history delete --session ID  delete a session and the cache entries it produced
    concierge cache flush --all | --kb-version V
                                           delete cached answers (local run, or --cache-table)
    concierge screen TEXT... [--json]      the injection screen's verdict on each text
    concierge eval [--gate] [--env ENV | --url URL] [--judge SPEC]
                                           answer quality per case and variant (eval/)
    concierge prompts list | diff NAME V1 V2 | promote NAME VERSION --env ENV
                                           prompt versions and which environment serves which

Local runs keep history and cache in .concierge/tables.sqlite3 (`--state`), item by item, so a
session survives restarts and a large history costs nothing at start or per request.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from concierge.errors import ConfigurationError
from concierge_cli import admin as admin_cli
from concierge_cli import prompts_cli, screening, search_cli
from concierge_cli.evaluation import command as evaluation
from concierge_cli.support import (
    WORK_DIR,
    ServerRecord,
    UsageError,
    default_store,
    require_repository,
)

if TYPE_CHECKING:
    from concierge_cli.local.auth import AuthMode, Authorizer

DEFAULT_KB = Path("knowledge/sample")

# Each subcommand: a function that adds its parser and sets `run(root, args) -> exit code`.
Subcommands = Any  # argparse's private _SubParsersAction


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="concierge", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="repository root (default: .)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        _add_ingest,
        _add_serve,
        _add_ask,
        _add_token,
        admin_cli.add_commands,
        screening.add_commands,
        evaluation.add_commands,
        prompts_cli.add_commands,
        search_cli.add_commands,
    ):
        add(commands)

    args = parser.parse_args(argv)
    run: Callable[[Path, argparse.Namespace], int] = args.run
    try:
        return run(args.root.resolve(), args)
    except (UsageError, ConfigurationError) as error:
        print(f"concierge: {error}", file=sys.stderr)
        return 2
    except _Failure as error:
        print(f"concierge: {error}", file=sys.stderr)
        return 1


class _Failure(Exception):
    """The command ran and failed: exit code 1."""


# --- ingest -------------------------------------------------------------------------------
def _add_ingest(commands: Subcommands) -> None:
    ingest = commands.add_parser(
        "ingest",
        aliases=["index"],
        help="index documents into the knowledge base (local file or S3)",
        description="Read Markdown, text, HTML and PDF files, chunk them and publish the index. "
        "Only files that changed since the last run are read again. See docs/ingestion.md.",
    )
    ingest.add_argument(
        "paths", nargs="*", type=Path, help="files or folders (default: knowledge/sample)"
    )
    ingest.add_argument("--target", default="local", help="local (default) or s3://bucket/prefix")
    ingest.add_argument(
        "--index",
        "--out",
        dest="index",
        type=Path,
        help="local target: the index file (default: .concierge/index.json)",
    )
    ingest.add_argument(
        "--category", help="category of documents that declare none (before their folder name)"
    )
    ingest.add_argument(
        "--default-category",
        default="general",
        help="category when neither the document, --category nor a folder gives one",
    )
    ingest.add_argument(
        "--max-file-mb", type=float, default=10.0, help="skip larger files (default: 10)"
    )
    ingest.add_argument(
        "--chunk-chars", type=int, default=1_500, help="longest chunk (default: 1500)"
    )
    ingest.add_argument(
        "--overlap",
        type=int,
        default=150,
        help="characters repeated between the pieces of a long section (default: 150)",
    )
    ingest.add_argument(
        "--full", action="store_true", help="read every file again, ignoring the manifest"
    )
    ingest.add_argument(
        "--strict",
        action="store_true",
        help="skip documents that carry instructions for an assistant (injected text the "
        "screen finds); without it they are ingested and listed",
    )
    ingest.add_argument(
        "--no-vectors",
        action="store_true",
        help="leave the dense vectors out of the index (search is then lexical only); "
        "without the dense extra they are left out anyway",
    )
    ingest.add_argument(
        "--knowledge-base-id",
        help="S3 target: start an ingestion job of this Bedrock knowledge base "
        "(CONCIERGE_KNOWLEDGE_BASE_ID)",
    )
    ingest.add_argument(
        "--data-source-id",
        help="S3 target: its data source (CONCIERGE_DATA_SOURCE_ID)",
    )
    ingest.set_defaults(run=_ingest)


def _ingest(root: Path, args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from concierge_cli.ingestion import (
        CategoryFileError,
        IngestError,
        IngestOptions,
        PathNotFoundError,
        Progress,
        ingest,
    )

    sources = [p if p.is_absolute() else root / p for p in (args.paths or [DEFAULT_KB])]
    try:
        options = IngestOptions(
            max_chunk_chars=args.chunk_chars,
            overlap_chars=args.overlap,
            max_file_bytes=int(args.max_file_mb * 1024 * 1024),
            category=args.category,
            default_category=args.default_category,
            strict=args.strict,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    target = _ingest_target(root, args)
    target_errors = (OSError, BotoCoreError, ClientError, IngestError)
    try:
        previous = target.load_manifest()
    except target_errors as error:
        raise _Failure(f"cannot read the manifest of {target}: {error}") from None
    embedder, previous_index = _dense_embedder(args), None
    if embedder is not None:
        try:
            previous_index = target.load_index()
        except target_errors as error:
            raise _Failure(f"cannot read the index of {target}: {error}") from None
    progress = Progress(sys.stderr)
    try:
        result = ingest(
            sources,
            options,
            previous,
            progress,
            reuse=not args.full,
            embedder=embedder,
            previous_index=previous_index,
        )
    except (PathNotFoundError, CategoryFileError) as error:
        raise UsageError(str(error)) from None
    finally:
        progress.clear()

    for line in result.report.lines():
        print(line)
    if not result.index.chunks:
        print(
            f"concierge: nothing could be ingested from {', '.join(map(str, sources))} "
            f"(see above); {target} is unchanged",
            file=sys.stderr,
        )
        return 1
    try:
        published = target.publish(result)
    except target_errors as error:
        raise _Failure(
            f"publishing to {target} failed: {error}. The index there is still the previous "
            "one or already the whole new one, never a mix; run the ingest again."
        ) from None
    print(result.report.summary())
    print(f"  {result.report.vectors_line()}")
    for line in published:
        print(f"  {line}")
    return 0


def _dense_embedder(args: argparse.Namespace) -> Any:
    """The dense model for the index's vectors; None (said on stderr) without the extra."""
    if args.no_vectors:
        return None
    from concierge import wiring
    from concierge.adapters.embeddings.static import DenseUnavailableError

    try:
        return wiring.dense_embedder()
    except DenseUnavailableError as error:
        print(f"concierge: no dense vectors: {error}", file=sys.stderr)
        return None


def _ingest_target(root: Path, args: argparse.Namespace) -> Any:
    from concierge_cli.ingestion.local_target import LocalTarget

    if args.target == "local":
        index = args.index or WORK_DIR / "index.json"
        return LocalTarget(index if index.is_absolute() else root / index)
    if not args.target.startswith("s3://"):
        raise UsageError(f"--target must be local or s3://bucket/prefix, not {args.target!r}")
    if args.index is not None:
        raise UsageError("--index is for the local target; S3 gets <prefix>/index.json")

    from concierge import wiring
    from concierge.config import KnowledgeBaseSettings
    from concierge_cli.ingestion.knowledge_base import KnowledgeBaseSync
    from concierge_cli.ingestion.s3_target import S3Target, parse_s3_uri

    try:
        parse_s3_uri(args.target)
    except ValueError as error:
        raise UsageError(str(error)) from None
    configured = wiring.settings(KnowledgeBaseSettings)
    ids = (
        args.knowledge_base_id or configured.knowledge_base_id,
        args.data_source_id or configured.data_source_id,
    )
    if any(ids) and not all(ids):
        raise UsageError(
            "an ingestion job needs both --knowledge-base-id and --data-source-id "
            "(CONCIERGE_KNOWLEDGE_BASE_ID, CONCIERGE_DATA_SOURCE_ID)"
        )
    knowledge_base_id, data_source_id = ids
    sync = (
        KnowledgeBaseSync(knowledge_base_id, data_source_id, wiring.aws_client("bedrock-agent"))
        if knowledge_base_id and data_source_id
        else None
    )
    return S3Target(args.target, wiring.aws_client("s3"), sync)


# --- serve and ask ------------------------------------------------------------------------
# A chat request runs the whole chain (the state machine allows 27 s); this only stops a hang.
_CHAT_TIMEOUT_S = 60.0
# A server that takes longer than this to say it is up is not used: ask runs in-process.
_HEALTH_TIMEOUT_S = 1.0
# How long the token `concierge ask --user` sends is valid: one question, with room to spare.
_ASK_TOKEN_TTL_S = 300  # --user's help says "5 minutes"


def _add_serve(commands: Subcommands) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the chat API on this machine",
        description="Serve the chat API on this machine. While it runs, `concierge ask` sends "
        "its questions to it (the record is .concierge/server.json, next to the tables).",
    )
    serve.add_argument("--host", help="address to listen on (default: $CONCIERGE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $CONCIERGE_PORT, 3000)")
    serve.add_argument("--index", type=Path, help="index file (default: .concierge/index.json)")
    _state_option(serve)
    serve.add_argument("--quiet", action="store_true", help="no access log")
    serve.add_argument(
        "--auth",
        choices=["off", "local"],
        help="off: no token needed, a request is the local user (an admin) or the user of its "
        "bearer token, unverified; local: tokens from `concierge token` are verified as API "
        "Gateway does, others get 401 (default: $CONCIERGE_AUTH, off)",
    )
    serve.set_defaults(run=_serve)


def _add_ask(commands: Subcommands) -> None:
    ask = commands.add_parser(
        "ask",
        help="ask one question through the local chain",
        description="Ask one question through the local chain. When a `concierge serve` "
        "(`make run`) is running on the same tables and index, the question goes to it over "
        "HTTP, which skips starting the chain here; otherwise the chain runs in this process. "
        "The output and the exit code are the same either way.",
    )
    ask.add_argument("question")
    ask.add_argument("--session", help="continue this session (its history is kept)")
    ask.add_argument(
        "--user",
        type=_user_name,
        metavar="NAME",
        help="ask as this user: send a token for NAME (valid 5 minutes), signed by the local key "
        "(needed when the API verifies tokens, CONCIERGE_AUTH=local; without it, with auth "
        "off, the question is the local user's)",
    )
    ask.add_argument("--admin", action="store_true", help="with --user: the user is an admin")
    ask.add_argument("--json", action="store_true", help="print the HTTP response body")
    ask.add_argument("--index", type=Path, help="index file (default: .concierge/index.json)")
    _state_option(ask)
    where = ask.add_mutually_exclusive_group()
    where.add_argument(
        "--url",
        help="send the question to the API at this URL (e.g. http://127.0.0.1:3000), "
        "running or not; --index and --state are then the server's business",
    )
    where.add_argument(
        "--in-process",
        action="store_true",
        help="run the chain in this process even when a server is running",
    )
    ask.set_defaults(run=_ask)


def _state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        type=Path,
        help="the local run's history and cache tables, a SQLite file "
        "(default: .concierge/tables.sqlite3)",
    )


def _local_paths(root: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """The index and the store a local command uses, absolute."""
    index = args.index or WORK_DIR / "index.json"
    store = args.state or default_store(root)
    return (
        (index if index.is_absolute() else root / index).resolve(),
        (store if store.is_absolute() else root / store).resolve(),
    )


def _runtime(root: Path, index_path: Path, store: Path) -> Any:
    from concierge.knowledge import IndexFile
    from concierge_cli.local.runtime import LocalRuntime

    require_repository(root)
    if not index_path.is_file():
        raise UsageError(f"no index at {index_path}: run `concierge ingest` first (make run does)")
    kb_version = IndexFile.model_validate_json(index_path.read_bytes()).kb_version
    return LocalRuntime(root, index_path, kb_version, state_path=store)


def _serve(root: Path, args: argparse.Namespace) -> int:
    from concierge import wiring
    from concierge.config import ServeSettings
    from concierge_cli.local.server import LocalApiServer

    configured = wiring.settings(ServeSettings)
    args.host = args.host or configured.host
    args.port = configured.port if args.port is None else args.port
    index, store = _local_paths(root, args)
    authorizer = _authorizer(root, args.auth or configured.auth)
    with _runtime(root, index, store) as runtime:
        server = LocalApiServer(
            runtime, args.host, args.port, access_log=not args.quiet, authorizer=authorizer
        )
        record = ServerRecord(
            url=f"http://{_client_host(args.host)}:{server.server_port}",
            pid=os.getpid(),
            store=store,
            index=index,
        )
        print(
            f"Concierge local API on http://{args.host}:{server.server_port} "
            "(POST /chat, GET /health; the web chat page at /)"
        )
        print(
            "models: "
            + ", ".join(
                f"{step}={wiring.model_specs(step)[0]}"
                for step in ("classify", "condense", "answer")
            )
        )
        print(authorizer.describe(), flush=True)
        record.write()
        previous_handler = _stop_on_sigterm()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            record.remove()
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, previous_handler)
            server.server_close()
    return 0


def _client_host(host: str) -> str:
    """Where a client on this machine reaches a server listening on `host`."""
    return "127.0.0.1" if host in {"", "0.0.0.0"} else host  # noqa: S104 - compared, not bound


def _stop_on_sigterm() -> Any:
    """`kill` stops the server as Ctrl-C does, so that it removes its record on the way out."""
    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set handlers (a server started by a test)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _ask(root: Path, args: argparse.Namespace) -> int:
    if args.admin and args.user is None:
        raise UsageError("--admin goes with --user NAME")
    token = _token_for(root, args.user, args.admin, _ASK_TOKEN_TTL_S) if args.user else None
    body = {"question": args.question, **({"session_id": args.session} if args.session else {})}
    if args.url:
        reply = _ask_server(args.url, body, token)
        if reply is None:
            raise _Failure(f"no Concierge API answers at {args.url}")
        return _answer(reply, args)
    index, store = _local_paths(root, args)
    if not args.in_process and (url := _running_server(store, index)) is not None:
        reply = _ask_server(url, body, token)
        if reply is not None:
            return _answer(reply, args)
        # It stopped since it said it was up, before taking the question: ask here instead.
    return _answer(_ask_in_process(root, index, store, body, token), args)


def _answer(reply: tuple[int, dict[str, Any]], args: argparse.Namespace) -> int:
    code = _print_reply(*reply, as_json=args.json)
    if reply[0] == 401 and args.user is None:
        print(
            "concierge: the API wants a bearer token: ask with --user NAME to send one for NAME, "
            "signed by the local key (what a server with CONCIERGE_AUTH=local verifies)",
            file=sys.stderr,
        )
    return code


def _running_server(store: Path, index: Path) -> str | None:
    """The URL of a `concierge serve` that serves this store with this index and is up."""
    record = ServerRecord.read(store)
    if record is None or record.store != store or record.index != index:
        return None
    if not record.process_alive():
        return None
    return record.url if _answers_health(record.url) else None


def _connection(url: str, timeout: float) -> Any:
    from http.client import HTTPConnection, HTTPSConnection
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UsageError(f"--url must be http://host[:port] or https://…, not {url!r}")
    kind = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    return kind(parts.hostname, parts.port, timeout=timeout), parts.path.rstrip("/")


def _answers_health(url: str) -> bool:
    try:
        connection, prefix = _connection(url, _HEALTH_TIMEOUT_S)
    except UsageError:
        return False  # a record no server wrote
    try:
        connection.request("GET", f"{prefix}/health")
        response = connection.getresponse()
        response.read()
    except OSError:
        return False
    finally:
        connection.close()
    return bool(response.status == 200)


def _ask_server(
    url: str, body: dict[str, str], token: str | None
) -> tuple[int, dict[str, Any]] | None:
    """(status, body) of POST /chat at `url`; None when nothing listens there (so the question
    was not taken)."""
    connection, prefix = _connection(url, _CHAT_TIMEOUT_S)
    try:
        connection.request(
            "POST", f"{prefix}/chat", body=json.dumps(body).encode("utf-8"), headers=_headers(token)
        )
        response = connection.getresponse()
        data = response.read()
    except ConnectionRefusedError:
        return None
    except OSError as error:
        raise _Failure(f"the API at {url} did not answer: {error}") from None
    finally:
        connection.close()
    try:
        document: dict[str, Any] = json.loads(data)
    except ValueError:
        raise _Failure(f"the API at {url} answered {response.status} without JSON") from None
    return response.status, document


def _headers(token: str | None) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return headers


def _ask_in_process(
    root: Path, index: Path, store: Path, body: dict[str, str], token: str | None = None
) -> tuple[int, dict[str, Any]]:
    from concierge import wiring
    from concierge.config import ServeSettings
    from concierge_cli.local.auth import Unauthorized
    from concierge_cli.local.server import http_api_event

    # The event the local server would make of the same request, authorized as it would be
    # (CONCIERGE_AUTH), so the answer is the same.
    event = http_api_event("POST", "/chat", _headers(token), json.dumps(body).encode("utf-8"))
    try:
        event = _authorizer(root, wiring.settings(ServeSettings).auth).authorize(event)
    except Unauthorized as refused:
        response = refused.response  # refused before the chain would start
    else:
        with _runtime(root, index, store) as runtime:
            response = runtime.api(event)
    return int(response["statusCode"]), json.loads(response["body"])


# --- tokens -------------------------------------------------------------------------------
_DEFAULT_TTL = "1h"
_TTL = re.compile(r"([0-9]{1,9})([smh]?)")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def _add_token(commands: Subcommands) -> None:
    token = commands.add_parser(
        "token",
        help="print a token for a local user",
        description="Print a token for NAME, and nothing else, on stdout: an RS256 JWT signed "
        "by the local key (.concierge/auth/, made on first need), shaped like a Cognito ID "
        "token (sub = NAME; cognito:groups = [admin] with --admin). A server with "
        "CONCIERGE_AUTH=local verifies it as API Gateway would. Use it as "
        '`curl -H "Authorization: Bearer $(concierge token --user alice)" …`.',
    )
    token.add_argument(
        "--user", required=True, type=_user_name, metavar="NAME", help="the user (the sub claim)"
    )
    token.add_argument(
        "--admin", action="store_true", help="the user is an admin (cognito:groups = [admin])"
    )
    token.add_argument(
        "--ttl",
        type=_ttl_seconds,
        default=_DEFAULT_TTL,
        help=f"how long it is valid: seconds, or a number with s, m or h (default: {_DEFAULT_TTL})",
    )
    token.set_defaults(run=_token)


def _token(root: Path, args: argparse.Namespace) -> int:
    print(_token_for(root, args.user, args.admin, args.ttl))
    return 0


def _ttl_seconds(text: str) -> int:
    """`3600`, `90s`, `15m` or `1h`, in seconds."""
    match = _TTL.fullmatch(text.strip())
    seconds = int(match[1]) * _TTL_UNITS[match[2]] if match else 0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a positive number of seconds, or a number with s, m or "
            "h (90s, 15m, 1h)"
        )
    return seconds


def _user_name(text: str) -> str:
    from concierge_cli.local.auth import check_user_name

    try:
        return check_user_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _token_for(root: Path, user: str, admin: bool, ttl_seconds: int) -> str:
    """A token for `user`, signed by the local key of the repository at `root`."""
    from concierge_cli.local.auth import KeyFileError, LocalKeys, mint

    require_repository(root)
    try:
        key = LocalKeys.of(root).signing_key()
    except (KeyFileError, OSError) as error:
        raise _Failure(f"cannot use the local signing key: {error}") from None
    return mint(user, admin=admin, ttl_seconds=ttl_seconds, key=key)


def _authorizer(root: Path, mode: AuthMode) -> Authorizer:
    """The local stand-in of API Gateway's JWT authorizer, for the server and `ask`."""
    from concierge_cli.local.auth import Authorizer, KeyFileError, LocalKeys

    require_repository(root)
    try:
        return Authorizer(mode, LocalKeys.of(root))
    except (KeyFileError, OSError) as error:
        raise _Failure(f"cannot use the local signing key: {error}") from None


def _print_reply(status: int, document: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    elif "error" in document:
        print(f"error {status}: {document['error']['message']}", file=sys.stderr)
    elif status != 200:
        # Refused before the api function saw it (an HTTP server's own limits).
        print(f"error {status}: {document.get('message', '')}", file=sys.stderr)
    else:
        print(document["answer"])
        for number, citation in enumerate(document["citations"], start=1):
            print(f"  [{number}] {citation['title']} ({citation['source']})")
        calls = "cached" if document["cached"] else f"{document['usage']['llm_calls']} model calls"
        print(
            f"-- {document['category']}/{document['language']}, {calls}, session {document['session_id']}"
        )
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
