"""The prompt library's versions and labels, `concierge prompts`, and A/B variants: sticky
assignment by weight, validation, and their place in the cache key."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from concierge import prompt_library
from concierge.cache_keys import cache_scope
from concierge.experiments import ExperimentError, experiment
from concierge.prompt_library import (
    CHAIN_PROMPTS,
    UnknownPromptError,
    labelled,
    load_prompt,
    prompt_versions,
    versions_of,
)
from concierge_cli.main import main


def _variants(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "variants.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_version_stays_loadable_and_the_newest_is_the_default() -> None:
    # Given the answer prompt's versions
    versions = versions_of("answer")

    # When each is loaded, and the prompt without a version
    loaded = [load_prompt("answer", version).version for version in versions]
    newest = load_prompt("answer").version

    # Then each version is itself, ordered by number, and the newest is the default
    assert loaded == versions and versions[:2] == ["answer-1", "answer-2"]
    assert newest == versions[-1]


def test_an_unknown_version_or_label_is_named_in_the_error() -> None:
    # Given a version and a label that do not exist
    # When they are asked for
    # Then the errors say what exists
    with pytest.raises(UnknownPromptError, match="answer-1, answer-2"):
        load_prompt("answer", "answer-99")
    with pytest.raises(UnknownPromptError, match="dev, staging, prod"):
        labelled("qa")


def test_each_environment_serves_a_version_of_every_chain_prompt() -> None:
    # Given the labels
    # When each environment's versions are read
    served = {env: labelled(env) for env in ("dev", "staging", "prod")}

    # Then every chain prompt has a loadable version in each
    for versions in served.values():
        assert set(versions) == set(CHAIN_PROMPTS)
        assert prompt_versions(versions).count(",") == len(CHAIN_PROMPTS) - 1


def test_an_environment_without_variants_serves_default(tmp_path: Path) -> None:
    # Given a variants file with no section for prod
    path = _variants(tmp_path, '[dev.b]\nweight = 1\nprompts = { answer = "answer-1" }\n')

    # When prod's experiment assigns users
    chosen = {experiment("prod", path).assign(f"user-{n}").name for n in range(50)}

    # Then everyone gets the label's versions as `default`
    assert chosen == {"default"}


def test_assignment_is_sticky_and_follows_the_weights(tmp_path: Path) -> None:
    # Given two variants weighted 9 to 1
    path = _variants(
        tmp_path,
        '[dev.control]\nweight = 9\n\n[dev.short]\nweight = 1\nprompts = { answer = "answer-1" }\n',
    )
    chosen = experiment("dev", path)

    # When 20,000 users are assigned, twice
    first = [chosen.assign(f"user-{n}").name for n in range(20_000)]
    again = [chosen.assign(f"user-{n}").name for n in range(20_000)]

    # Then each user keeps their variant, and the shares follow the weights
    assert first == again
    share = Counter(first)["short"] / len(first)
    assert 0.08 < share < 0.12
    short = chosen.named("short")
    assert short is not None and short.prompts["answer"] == "answer-1"
    assert short.prompts["classify"] == labelled("dev")["classify"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[dev.a]\nweight = 1\nprompts = { answer = "answer-99" }\n', "answer-99"),
        ('[dev.a]\nweight = 1\nmodels = { retrieve = "offline" }\n', "retrieve"),
        ("[dev.a]\nweight = 0\n", "greater than 0"),
        ("[dev.a]\nweight = 1\ncolour = 2\n", "colour"),
    ],
    ids=["unknown-version", "unknown-step", "no-weight", "unknown-field"],
)
def test_a_wrong_variant_is_refused_when_it_is_read(
    tmp_path: Path, text: str, problem: str
) -> None:
    # Given a variants file with a mistake
    path = _variants(tmp_path, text)

    # When the environment's experiment is built
    # Then it fails naming the mistake (at cold start, not on a user's request)
    with pytest.raises((ExperimentError, UnknownPromptError), match=problem):
        experiment("dev", path)


def test_a_variant_is_part_of_the_cache_key_and_default_changes_nothing() -> None:
    # Given one knowledge base, prompts and model
    # When scopes are made for the default variant, without one, and for another variant
    default = cache_scope("kb", "p", "m", "default")
    without = cache_scope("kb", "p", "m")
    other = cache_scope("kb", "p", "m", "short")

    # Then default keys stay as they were, and a variant's answers are its own
    assert default == without != other


# -- concierge prompts ------------------------------------------------------------------------
def test_prompts_list_says_which_environment_serves_which_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # When the prompts are listed
    status = main(["prompts", "list"])

    # Then each version is listed, the served ones with their environments
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    assert status == 0
    for env in ("dev", "staging", "prod"):
        assert env in " ".join(rows[labelled(env)["answer"]])
    assert rows["answer-1"] == []


def test_prompts_diff_shows_what_changed(capsys: pytest.CaptureFixture[str]) -> None:
    # When two versions of the answer prompt are compared
    status = main(["prompts", "diff", "answer", "answer-1", "answer-2"])

    # Then the unified diff of their files is printed
    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith("--- answer-1.toml\n+++ answer-2.toml\n")
    assert '+version = "answer-2"' in out


def test_promote_moves_one_label_and_keeps_the_file_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy of the labels file
    labels = tmp_path / "labels.toml"
    shutil.copy(prompt_library.LABELS_FILE, labels)
    monkeypatch.setattr(prompt_library, "LABELS_FILE", labels)
    prompt_library.labels.cache_clear()
    before = labels.read_text(encoding="utf-8")
    staging = labelled("staging")["answer"]

    # When prod's answer prompt is promoted to answer-1
    status = main(["prompts", "promote", "answer", "answer-1", "--env", "prod"])
    prompt_library.labels.cache_clear()

    # Then only that line changed, and prod now serves answer-1 while staging does not
    after = labels.read_text(encoding="utf-8")
    changed = [
        (old, new)
        for old, new in zip(before.splitlines(), after.splitlines(), strict=True)
        if old != new
    ]
    assert status == 0
    assert changed == [('answer = "answer-2"', 'answer = "answer-1"')]
    assert labelled("prod")["answer"] == "answer-1" and labelled("staging")["answer"] == staging
    assert "prod: answer answer-2 -> answer-1" in capsys.readouterr().out
    prompt_library.labels.cache_clear()


def test_promote_refuses_an_unknown_version(capsys: pytest.CaptureFixture[str]) -> None:
    # When a version that does not exist is promoted
    status = main(["prompts", "promote", "answer", "answer-99", "--env", "prod"])

    # Then nothing is written and the command says why, with exit status 2
    assert status == 2
    assert "answer-99" in capsys.readouterr().err
