"""`concierge` — index the knowledge base, serve the chat API locally, ask from the shell.

    concierge index [PATH ...]             build .concierge/index.json (default: knowledge/sample)
    concierge serve [--port N]             the HTTP API at http://127.0.0.1:3000 (CONCIERGE_PORT)
    concierge ask "question" [--session ID] [--json]

Local runs keep history and cache in .concierge/state.json, so a session survives restarts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

DEFAULT_KB = Path("knowledge/sample")
WORK_DIR = Path(".concierge")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="concierge", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", type=Path, default=Path.cwd(), help="repository root (default: .)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="build the local index from documents")
    index.add_argument(
        "paths", nargs="*", type=Path, help="files or folders (default: knowledge/sample)"
    )
    index.add_argument("--out", type=Path, help="index file (default: .concierge/index.json)")

    serve = commands.add_parser("serve", help="serve the chat API on this machine")
    serve.add_argument("--host", default=os.environ.get("CONCIERGE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("CONCIERGE_PORT", "3000")))
    serve.add_argument("--index", type=Path, help="index file (default: .concierge/index.json)")
    serve.add_argument("--quiet", action="store_true", help="no access log")

    ask = commands.add_parser("ask", help="ask one question through the local chain")
    ask.add_argument("question")
    ask.add_argument("--session", help="continue this session (its history is kept)")
    ask.add_argument("--json", action="store_true", help="print the HTTP response body")
    ask.add_argument("--index", type=Path, help="index file (default: .concierge/index.json)")

    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        if args.command == "index":
            return _index(root, args.paths, args.out)
        if args.command == "serve":
            return _serve(root, args.index, args.host, args.port, not args.quiet)
        return _ask(root, args.index, args.question, args.session, args.json)
    except _UsageError as error:
        print(f"concierge: {error}", file=sys.stderr)
        return 2


class _UsageError(Exception):
    pass


def _index(root: Path, paths: list[Path], out: Path | None) -> int:
    from concierge.adapters.retrieval.local_index import write_index
    from concierge.ingest import build_index

    sources = [p if p.is_absolute() else root / p for p in (paths or [DEFAULT_KB])]
    missing = [str(p) for p in sources if not p.exists()]
    if missing:
        raise _UsageError(f"no such file or folder: {', '.join(missing)}")
    index = build_index(sources)
    if not index.chunks:
        raise _UsageError("no documents found (.md, .markdown, .txt)")
    target = out or root / WORK_DIR / "index.json"
    write_index(index, target)
    documents = len({chunk.source for chunk in index.chunks})
    languages = ", ".join(sorted({chunk.language for chunk in index.chunks}))
    print(
        f"indexed {documents} documents as {len(index.chunks)} chunks ({languages}); "
        f"knowledge-base version {index.kb_version} -> {target}"
    )
    return 0


def _runtime(root: Path, index_path: Path | None) -> Any:
    from concierge.knowledge import IndexFile
    from concierge.local.runtime import LocalRuntime

    if not (root / "template.yaml").is_file():
        raise _UsageError(
            f"{root} has no template.yaml: run from the repository root or pass --root"
        )
    path = index_path or root / WORK_DIR / "index.json"
    if not path.is_file():
        raise _UsageError(f"no index at {path}: run `concierge index` first (make run does)")
    kb_version = IndexFile.model_validate_json(path.read_bytes()).kb_version
    return LocalRuntime(root, path, kb_version, state_path=root / WORK_DIR / "state.json")


def _serve(root: Path, index_path: Path | None, host: str, port: int, access_log: bool) -> int:
    from concierge.local.server import LocalApiServer

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
