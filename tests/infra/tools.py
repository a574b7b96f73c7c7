"""Where the infra tests find the repository and its external tools, and how they run them.

A missing tool is never a skip: it fails the test with the command that installs it, so a green
run always means the checks ran.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
SAMCONFIG = REPO_ROOT / "samconfig.toml"
STATE_MACHINES = sorted((REPO_ROOT / "statemachine").glob("*.asl.json"))
ENVIRONMENTS = ("dev", "staging", "prod")


def _require(path: Path | None, tool: str, install: str) -> Path:
    if path is None or not path.exists():
        pytest.fail(
            f"{tool} is not installed (looked for {path or 'it on PATH'}); "
            f"install it with `{install}`",
            pytrace=False,
        )
    return path


def sam() -> Path:
    return _require(REPO_ROOT / ".venv-sam" / "bin" / "sam", "sam (aws-sam-cli)", "make .venv-sam")


def checkov() -> Path:
    return _require(
        REPO_ROOT / ".venv-checkov" / "bin" / "checkov", "checkov", "make .venv-checkov"
    )


def asl_validator() -> Path:
    return _require(
        REPO_ROOT / "node_modules" / ".bin" / "asl-validator", "asl-validator", "npm ci"
    )


def cfn_lint() -> Path:
    """cfn-lint of the running interpreter's environment (dev extras), else the one on PATH."""
    beside_python = Path(sys.executable).parent / "cfn-lint"
    if beside_python.exists():
        return beside_python
    found = shutil.which("cfn-lint")
    return _require(Path(found) if found else None, "cfn-lint", "make install")


def actionlint() -> Path:
    """actionlint of the running interpreter's environment (requirements/dev.txt)."""
    return _require(Path(sys.executable).parent / "actionlint", "actionlint", "make install")


def shellcheck() -> Path:
    """ShellCheck of the running interpreter's environment, which actionlint runs on `run:`."""
    return _require(Path(sys.executable).parent / "shellcheck", "shellcheck", "make install")


def run(
    args: list[str | Path],
    cwd: Path = REPO_ROOT,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion; SAM telemetry is off; `env` adds variables."""
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """A failed command's exit code and output, for an assertion message."""
    return (
        f"`{' '.join(result.args)}` exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


# Runs inside .venv-sam: SAM CLI's own reading of samconfig.toml and of `Key=Value` overrides.
# Quoting is where hand parsing goes wrong (`Key=` is rejected, unquoted JSON is cut at its first
# double quote), so the tests look at the values SAM CLI would send to CloudFormation.
_READ_OVERRIDES = """
import json, sys
from samcli.cli.types import CfnParameterOverridesType
from samcli.lib.config.samconfig import SamConfig

config = SamConfig(sys.argv[1], sys.argv[2])
result = {}
for env, command in json.loads(sys.argv[3]):
    raw = dict(config.get_all([command], "parameters", env=env).items()).get("parameter_overrides")
    result[env + "." + command] = CfnParameterOverridesType().convert(raw, None, None)
print(json.dumps(result))
"""


def sam_parameter_overrides(sections: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """`parameter_overrides` of samconfig sections (env, command) as SAM CLI parses them."""
    python = sam().parent / "python"
    result = run(
        [
            python,
            "-c",
            _READ_OVERRIDES,
            SAMCONFIG.parent,
            SAMCONFIG.name,
            json.dumps(sections),
        ]
    )
    assert result.returncode == 0, describe(result)
    parsed: dict[str, dict[str, str]] = json.loads(result.stdout)
    return parsed
