"""The test suite's own conventions: folders mark tests, and bodies read Given/When/Then."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
TEST_FILES = sorted(TESTS.rglob("test_*.py"))
_FOLDER_MARKERS = re.compile(r"pytest\.mark\.(unit|integration|e2e|infra)\b|^pytestmark\s*=", re.M)


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda path: str(path.relative_to(TESTS)))
def test_tests_are_marked_by_their_folder_only(path: Path) -> None:
    # Given a test module
    source = path.read_text(encoding="utf-8")

    # When its markers are looked for
    found = _FOLDER_MARKERS.findall(source)

    # Then it sets none of the folder markers itself: the root conftest marks every test by
    # the folder it lives in
    assert found == []


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda path: str(path.relative_to(TESTS)))
def test_every_test_says_what_it_checks(path: Path) -> None:
    # Given the test functions of a module
    lines = path.read_text(encoding="utf-8").splitlines()
    tests = [
        node
        for node in ast.walk(ast.parse("\n".join(lines)))
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]

    # When their bodies are read
    silent = [
        test.name
        for test in tests
        if not any(
            marker in line
            for line in lines[test.lineno - 1 : test.end_lineno]
            for marker in ("# Then", "# When / Then")
        )
    ]

    # Then each has its Then: what it checks, in words, next to the assertions
    assert silent == []
