"""`concierge prompts`: the prompt library's versions and the labels that say which version each
environment serves (layers/concierge/concierge/prompts/).

    concierge prompts list                       every prompt, its versions, and which
                                                 environment serves which
    concierge prompts diff NAME V1 V2            what changed between two versions
    concierge prompts promote NAME VERSION --env ENV
                                                 point ENV's label at VERSION (edits
                                                 labels.toml: review and commit the change)
"""

from __future__ import annotations

import argparse
import difflib
import re
from pathlib import Path
from typing import Any

from concierge_cli.support import UsageError

ENVIRONMENTS = ("dev", "staging", "prod")


def add_commands(commands: Any) -> None:
    """Register `prompts` on the CLI's subparsers."""
    prompts = commands.add_parser("prompts", help="prompt versions and per-environment labels")
    actions = prompts.add_subparsers(dest="prompts_command", required=True)
    listing = actions.add_parser("list", help="every prompt, its versions, who serves which")
    listing.set_defaults(run=list_prompts)
    diff = actions.add_parser("diff", help="what changed between two versions of a prompt")
    diff.add_argument("name")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(run=diff_prompts)
    promote = actions.add_parser(
        "promote", help="point an environment's label at a version (edits labels.toml)"
    )
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--env", required=True, choices=ENVIRONMENTS)
    promote.set_defaults(run=promote_prompt)


def list_prompts(root: Path, args: argparse.Namespace) -> int:
    from concierge.prompt_library import labels, prompt_names, versions_of

    served = labels()
    for name in prompt_names():
        print(name)
        for version in versions_of(name):
            who = [env for env in ENVIRONMENTS if served.get(env, {}).get(name) == version]
            print(f"  {version:<24} {', '.join(who)}".rstrip())
    return 0


def diff_prompts(root: Path, args: argparse.Namespace) -> int:
    from concierge.prompt_library import PROMPTS_DIR, UnknownPromptError, load_prompt

    texts = []
    for version in (args.old, args.new):
        try:
            load_prompt(args.name, version)
        except UnknownPromptError as error:
            raise UsageError(str(error)) from None
        path = PROMPTS_DIR / args.name / f"{version}.toml"
        texts.append((path, path.read_text(encoding="utf-8").splitlines(keepends=True)))
    (old_path, old), (new_path, new) = texts
    print("".join(difflib.unified_diff(old, new, str(old_path.name), str(new_path.name))), end="")
    return 0


def promote_prompt(root: Path, args: argparse.Namespace) -> int:
    from concierge.prompt_library import (
        CHAIN_PROMPTS,
        LABELS_FILE,
        UnknownPromptError,
        labels,
        load_prompt,
    )

    if args.name not in CHAIN_PROMPTS:
        raise UsageError(f"only the chain's prompts have labels: {', '.join(CHAIN_PROMPTS)}")
    try:
        load_prompt(args.name, args.version)
    except UnknownPromptError as error:
        raise UsageError(str(error)) from None
    before = labels().get(args.env, {}).get(args.name)
    text = LABELS_FILE.read_text(encoding="utf-8")
    section = re.search(rf"(?ms)^\[{args.env}\]\n(.*?)(?=^\[|\Z)", text)
    if section is None:
        raise UsageError(f"{LABELS_FILE} has no [{args.env}] section")
    line = re.compile(rf'(?m)^{args.name}\s*=\s*"[^"]*"')
    body = section.group(1)
    replacement = f'{args.name} = "{args.version}"'
    body = line.sub(replacement, body, count=1) if line.search(body) else body + replacement + "\n"
    LABELS_FILE.write_text(
        text[: section.start(1)] + body + text[section.end(1) :], encoding="utf-8"
    )
    labels.cache_clear()
    if before == args.version:
        print(f"{args.env} already serves {args.name} {args.version}")
    else:
        print(
            f"{args.env}: {args.name} {before} -> {args.version} in {LABELS_FILE}\n"
            "Review and commit it; it takes effect with the next deploy of that environment "
            "(the version is part of the cache key: no answer of the old version is served)."
        )
    return 0
