"""What `sam build` ships: files, bytes and zipped bytes of every function's code folder, of
the layer they share and of the `concierge` package in it."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bench.figures import reproduce, table

TITLE = "Build size: what `sam build` ships per function"
LAYER = "ConciergeLayer"
SAM = Path(__file__).resolve().parents[1] / ".venv-sam" / "bin" / "sam"
PACKAGE = "`concierge` package in the layer"


@dataclass(frozen=True)
class Size:
    files: int
    bytes: int
    zipped: int  # one deflate zip of the folder, as a deployment package

    @classmethod
    def of(cls, folder: Path, under: Path) -> Size:
        """Every file below `folder`, zipped with paths relative to `under`."""
        paths = sorted(path for path in folder.rglob("*") if path.is_file())
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in paths:
                archive.write(path, path.relative_to(under).as_posix())
        return cls(len(paths), sum(path.stat().st_size for path in paths), len(buffer.getvalue()))


@dataclass
class Build:
    checkout: Path
    seconds: float = 0.0
    sizes: dict[str, Size] = field(default_factory=dict)  # function, LAYER or PACKAGE -> size


@dataclass
class BuildResult:
    after: Build | None
    before: Build | None = None
    errors: list[str] = field(default_factory=list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--build-before",
        type=Path,
        metavar="CHECKOUT",
        help="build: also build this checkout (e.g. one made with `git archive <commit> | tar -x "
        "-C DIR`) and show it beside this one",
    )


def measure(checkout: Path, log: TextIO) -> Build:
    """`sam build` of a checkout's template in a temporary folder, and the size of its output."""
    result = Build(checkout.resolve())
    with tempfile.TemporaryDirectory(prefix="concierge-build-") as work:
        out = Path(work) / "build"
        command = [str(SAM), "build", "--template-file", str(checkout / "template.yaml")]
        command += ["--build-dir", str(out), "--cache-dir", str(Path(work) / "cache")]
        command += ["--config-file", str(checkout / "samconfig.toml")]
        print(f"  build: sam build of {result.checkout}", file=log)
        started = time.perf_counter()
        # cwd: SAM writes its dependency cache (.aws-sam/deps) into the working directory.
        done = subprocess.run(
            command,
            cwd=work,
            env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        result.seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"sam build failed ({done.returncode}):\n{done.stderr[-3000:]}")
        for folder in sorted(path for path in out.iterdir() if path.is_dir()):
            result.sizes[folder.name] = Size.of(folder, folder)
        package = out / LAYER / "python" / "concierge"
        result.sizes[PACKAGE] = Size.of(package, out / LAYER)
    return result


def run(args: argparse.Namespace, root: Path, log: TextIO) -> BuildResult:
    if not SAM.exists():
        return BuildResult(None, errors=[f"build not measured: no {SAM} (make .venv-sam)"])
    before = measure(args.build_before, log) if args.build_before else None
    return BuildResult(measure(root, log), before)


def render(result: BuildResult) -> str:
    if result.after is None:
        return "Not measured: " + "; ".join(result.errors)
    builds = [build for build in (result.before, result.after) if build is not None]
    names = list(dict.fromkeys(name for build in builds for name in build.sizes))
    # The layer and its package last, the functions in build order.
    names = [n for n in names if n not in (LAYER, PACKAGE)] + [LAYER, PACKAGE]
    headers, rows = ["artifact"], []
    labels = {LAYER: f"`{LAYER}` (every function's layer)", PACKAGE: PACKAGE}
    for label in ("before", "after") if result.before else ("",):
        headers += [f"{label} files".strip(), f"{label} bytes".strip(), f"{label} zipped".strip()]
    for name in names:
        row = [labels.get(name, f"`{name}`")]
        for build in builds:
            size = build.sizes.get(name)
            row += [f"{size.files:,}", f"{size.bytes:,}", f"{size.zipped:,}"] if size else ["-"] * 3
        rows.append(row)
    checkouts = "; ".join(f"{b.checkout.name}: sam build {b.seconds:.0f} s" for b in builds)
    before = ("--build-before", result.before and result.before.checkout, None)
    return "\n".join(
        [
            reproduce(TITLE, "build", before),
            "",
            f"Built: {checkouts}.",
            "",
            table(headers, rows),
        ]
    )
