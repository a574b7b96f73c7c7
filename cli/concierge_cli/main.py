"""`concierge` — ingest the knowledge base, serve the chat API locally, ask from the shell.

    concierge ingest [PATH ...] [--target local|s3://bucket/prefix]
                                           index documents (default: knowledge/sample) into
                                           .concierge/index.json or S3; `index` is an alias
    concierge serve [--port N]             the HTTP API at http://127.0.0.1:3000 (CONCIERGE_PORT)
    concierge ask "question" [--session ID] [--json]
    concierge history delete --session ID  delete a session and the cache entries it produced
    concierge cache flush --all | --kb-version V
                                           delete cached answers (local run, or --cache-table)

Local runs keep history and cache in .concierge/state.json, so a session survives restarts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from concierge_cli import admin as admin_cli
from concierge_cli.support import WORK_DIR, UsageError, require_repository

DEFAULT_KB = Path("knowledge/sample")

# Each subcommand: a function that adds its parser and sets `run(root, args) -> exit code`.
Subcommands = Any  # argparse's private _SubParsersAction


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="concierge", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="repository root (default: .)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_ingest, _add_serve, _add_ask, admin_cli.add_commands):
        add(commands)

    args = parser.parse_args(argv)
    run: Callable[[Path, argparse.Namespace], int] = args.run
    try:
        return run(args.root.resolve(), args)
    except UsageError as error:
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
        "--knowledge-base-id",
        default=os.environ.get("CONCIERGE_KNOWLEDGE_BASE_ID") or None,
        help="S3 target: start an ingestion job of this Bedrock knowledge base "
        "(CONCIERGE_KNOWLEDGE_BASE_ID)",
    )
    ingest.add_argument(
        "--data-source-id",
        default=os.environ.get("CONCIERGE_DATA_SOURCE_ID") or None,
        help="S3 target: its data source (CONCIERGE_DATA_SOURCE_ID)",
    )
    ingest.set_defaults(run=_ingest)


def _ingest(root: Path, args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from concierge_cli.ingestion import (
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
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    target = _ingest_target(root, args)
    target_errors = (OSError, BotoCoreError, ClientError, IngestError)
    try:
        previous = target.load_manifest()
    except target_errors as error:
        raise _Failure(f"cannot read the manifest of {target}: {error}") from None
    progress = Progress(sys.stderr)
    try:
        result = ingest(sources, options, previous, progress, reuse=not args.full)
    except PathNotFoundError as error:
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
    for line in published:
        print(f"  {line}")
    return 0


def _ingest_target(root: Path, args: argparse.Namespace) -> Any:
    from concierge_cli.ingestion.local_target import LocalTarget

    if args.target == "local":
        index = args.index or WORK_DIR / "index.json"
        return LocalTarget(index if index.is_absolute() else root / index)
    if not args.target.startswith("s3://"):
        raise UsageError(f"--target must be local or s3://bucket/prefix, not {args.target!r}")
    if args.index is not None:
        raise UsageError("--index is for the local target; S3 gets <prefix>/index.json")

    from concierge.adapters.aws import aws_client
    from concierge_cli.ingestion.knowledge_base import KnowledgeBaseSync
    from concierge_cli.ingestion.s3_target import S3Target, parse_s3_uri

    try:
        parse_s3_uri(args.target)
    except ValueError as error:
        raise UsageError(str(error)) from None
    ids = (args.knowledge_base_id, args.data_source_id)
    if any(ids) and not all(ids):
        raise UsageError(
            "an ingestion job needs both --knowledge-base-id and --data-source-id "
            "(CONCIERGE_KNOWLEDGE_BASE_ID, CONCIERGE_DATA_SOURCE_ID)"
        )
    sync = KnowledgeBaseSync(*ids, aws_client("bedrock-agent")) if all(ids) else None
    return S3Target(args.target, aws_client("s3"), sync)


# --- serve and ask ------------------------------------------------------------------------
def _add_serve(commands: Subcommands) -> None:
    serve = commands.add_parser("serve", help="serve the chat API on this machine")
    serve.add_argument("--host", default=os.environ.get("CONCIERGE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CONCIERGE_PORT", "3000")))
    serve.add_argument("--index", type=Path, help="index file (default: .concierge/index.json)")
    serve.add_argument("--quiet", action="store_true", help="no access log")
    serve.set_defaults(
        run=lambda root, args: _serve(root, args.index, args.host, args.port, not args.quiet)
    )


def _add_ask(commands: Subcommands) -> None:
    ask = commands.add_parser("ask", help="ask one question through the local chain")
    ask.add_argument("question")
    ask.add_argument("--session", help="continue this session (its history is kept)")
    ask.add_argument("--json", action="store_true", help="print the HTTP response body")
    ask.add_argument("--index", type=Path, help="index file (default: .concierge/index.json)")
    ask.set_defaults(
        run=lambda root, args: _ask(root, args.index, args.question, args.session, args.json)
    )


def _runtime(root: Path, index_path: Path | None) -> Any:
    from concierge.knowledge import IndexFile
    from concierge_cli.local.runtime import LocalRuntime

    require_repository(root)
    path = index_path or root / WORK_DIR / "index.json"
    if not path.is_file():
        raise UsageError(f"no index at {path}: run `concierge ingest` first (make run does)")
    kb_version = IndexFile.model_validate_json(path.read_bytes()).kb_version
    return LocalRuntime(root, path, kb_version, state_path=root / WORK_DIR / "state.json")


def _serve(root: Path, index_path: Path | None, host: str, port: int, access_log: bool) -> int:
    from concierge_cli.local.server import LocalApiServer

    with _runtime(root, index_path) as runtime:
        server = LocalApiServer(runtime, host, port, access_log=access_log)
        print(
            f"Concierge local API on http://{host}:{server.server_port} (POST /chat, GET /health)"
        )
        print(
            "models: "
            + ", ".join(
                f"{step}={os.environ[f'CONCIERGE_{step.upper()}_MODEL']}"
                for step in ("classify", "condense", "answer")
            ),
            flush=True,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


def _ask(
    root: Path, index_path: Path | None, question: str, session: str | None, as_json: bool
) -> int:
    body = {"question": question, **({"session_id": session} if session else {})}
    event = {
        "version": "2.0",
        "rawPath": "/chat",
        "requestContext": {
            "http": {"method": "POST", "path": "/chat"},
            "requestId": uuid.uuid4().hex,
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
    with _runtime(root, index_path) as runtime:
        response = runtime.api(event)
        runtime.save_state()
    document = json.loads(response["body"])
    if as_json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    elif "error" in document:
        print(f"error {response['statusCode']}: {document['error']['message']}", file=sys.stderr)
    else:
        print(document["answer"])
        for number, citation in enumerate(document["citations"], start=1):
            print(f"  [{number}] {citation['title']} ({citation['source']})")
        calls = "cached" if document["cached"] else f"{document['usage']['llm_calls']} model calls"
        print(
            f"-- {document['category']}/{document['language']}, {calls}, session {document['session_id']}"
        )
    return 0 if response["statusCode"] == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
