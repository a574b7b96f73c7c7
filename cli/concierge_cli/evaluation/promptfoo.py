"""`make eval-promptfoo`: the eval cases through promptfoo (eval/promptfooconfig.yaml) — a
`concierge serve` on the sample knowledge base with the offline models (unless the environment
names others) and eval/config.toml's variants, then `promptfoo eval` against it. The results
stay in promptfoo's store: `eval/node_modules/.bin/promptfoo view` opens its viewer.

    .venv/bin/python -m concierge_cli.evaluation.promptfoo [promptfoo eval options...]
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from concierge_cli.evaluation.run import CONFIG, EVAL_DIR, load_config
from concierge_cli.evaluation.targets import variants_toml

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT_S:
        if process.poll() is not None:
            raise SystemExit("concierge serve stopped before it answered")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:  # noqa: S310 - our own local server
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"concierge serve did not answer in {START_TIMEOUT_S:.0f} s")


def main(argv: list[str]) -> int:
    promptfoo = ROOT / EVAL_DIR / "node_modules" / ".bin" / "promptfoo"
    if not promptfoo.is_file():
        print("promptfoo is not installed: run `make eval-promptfoo`", file=sys.stderr)
        return 2
    config = load_config(ROOT / CONFIG)
    python = Path(sys.executable)
    with tempfile.TemporaryDirectory(prefix="concierge-promptfoo-") as work:
        variants = Path(work) / "variants.toml"
        variants.write_text(variants_toml("dev", config["variants"]), encoding="utf-8")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        environ = {
            **os.environ,
            "CONCIERGE_VARIANTS_FILE": str(variants),
            "CONCIERGE_PROMPT_LABEL": "dev",
        }
        index = Path(work) / "index.json"
        subprocess.run(
            [
                str(python.with_name("concierge")),
                "--root",
                str(ROOT),
                "ingest",
                "--index",
                str(index),
            ],
            check=True,
            capture_output=True,
        )
        serve = [
            str(python.with_name("concierge")),
            "--root",
            str(ROOT),
            "serve",
            "--port",
            str(port),
        ]
        serve += ["--index", str(index), "--state", str(Path(work) / "tables.sqlite3"), "--quiet"]
        server = subprocess.Popen(
            serve, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait_for(url, server)
            bin_dir = promptfoo.parent
            run_env = {
                **os.environ,
                # The npm `node` package's Node 22 first: promptfoo needs a newer Node than many
                # machines have.
                "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                "PROMPTFOO_PYTHON": str(python),
                "PROMPTFOO_DISABLE_TELEMETRY": "1",
                "PROMPTFOO_DISABLE_UPDATE": "1",
                "CONCIERGE_EVAL_URL": url,
            }
            command = [str(promptfoo), "eval", "-c", "promptfooconfig.yaml", *argv]
            return subprocess.run(command, cwd=ROOT / EVAL_DIR, env=run_env, check=False).returncode
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
