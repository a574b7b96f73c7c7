"""The template and the state machine pass the AWS tools, offline and without Docker."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import tools


def test_sam_validate_with_lint_accepts_the_template() -> None:
    # Given the SAM CLI of .venv-sam
    sam = tools.sam()

    # When it validates and lints the template (no AWS credentials needed)
    result = tools.run([sam, "validate", "--lint", "--template-file", tools.TEMPLATE])

    # Then the template is valid
    assert result.returncode == 0, tools.describe(result)
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_reports_nothing() -> None:
    # Given the cfn-lint of .venv-sam
    cfn_lint = tools.cfn_lint()

    # When it lints the template
    result = tools.run([cfn_lint, tools.TEMPLATE])

    # Then it reports no error, warning or informational finding (each exits non-zero)
    assert result.returncode == 0, tools.describe(result)


def test_there_is_a_state_machine_definition() -> None:
    # When statemachine/ is searched for definitions
    definitions = tools.STATE_MACHINES

    # Then there is at least one
    assert definitions, "no statemachine/*.asl.json found"


@pytest.mark.parametrize("definition", tools.STATE_MACHINES, ids=lambda path: path.name)
def test_asl_validator_accepts_the_state_machine(definition: Path) -> None:
    # Given the asl-validator (cfn-lint does not open DefinitionUri files: the Amazon States
    # Language is checked here)
    validator = tools.asl_validator()

    # When it validates the definition
    result = tools.run([validator, "--json-path", definition])

    # Then the definition is valid
    assert result.returncode == 0, tools.describe(result)


def test_sam_build_produces_arm64_layer_and_functions(tmp_path: Path) -> None:
    # Given a scratch directory: SAM's dependency cache (.aws-sam/deps) is created in the
    # working directory, so the build runs from there and leaves the checkout untouched.
    build_dir = tmp_path / "build"
    had_sam_dir = (tools.REPO_ROOT / ".aws-sam").exists()

    # When the template is built (python3.11 on PATH, pip wheels for arm64, no container)
    result = tools.run(
        [
            tools.sam(),
            "build",
            "--template-file",
            tools.TEMPLATE,
            "--build-dir",
            build_dir,
            "--cache-dir",
            tmp_path / "cache",
            "--config-file",
            tools.SAMCONFIG,
        ],
        cwd=tmp_path,
        timeout=900,
    )

    # Then every function and the layer are built, the layer with the package and its
    # dependencies in `python/` and native code for aarch64
    assert result.returncode == 0, tools.describe(result)
    for function in (
        "ApiFunction",
        "ClassifyFunction",
        "CondenseFunction",
        "RetrieveFunction",
        "AnswerFunction",
    ):
        assert (build_dir / function / "app.py").is_file(), f"{function} has no app.py in the build"
    layer = build_dir / "ConciergeLayer" / "python"
    assert (layer / "concierge" / "__init__.py").is_file()
    assert list((layer / "concierge" / "prompts").glob("*/*.toml")), (
        "the prompts are missing from the layer"
    )
    assert (layer / "pydantic").is_dir()
    # Only what runs in Lambda: the CLI, ingestion and the local runtime (package
    # concierge_cli) and the emulator they need stay out of the layer.
    shipped = {path.name for path in (layer / "concierge").iterdir()}
    assert not shipped & {"cli.py", "admin_cli.py", "ingestion", "local"}, shipped
    assert not (layer / "concierge_cli").exists()
    assert not (layer / "moto").exists()
    assert (layer / "aws_lambda_powertools").is_dir()
    native = list((layer / "pydantic_core").glob("_pydantic_core*.so"))
    assert native, "pydantic_core has no compiled extension in the layer"
    assert all("aarch64" in path.name for path in native), f"not arm64 wheels: {native}"
    # The dense layer: the model's files where the embedder looks for them, arm64 numpy, and
    # none of the dependencies concierge never imports
    dense = build_dir / "DenseLayer" / "python"
    assert (dense / "wordllama" / "weights" / "l2_supercat_256.safetensors").is_file()
    assert (dense / "wordllama" / "tokenizers" / "l2_supercat_tokenizer_config.json").is_file()
    numpy_native = list((dense / "numpy" / "_core").glob("_multiarray_umath*.so"))
    assert numpy_native and all("aarch64" in path.name for path in numpy_native), numpy_native
    assert not (dense / "huggingface_hub").exists() and not (dense / "pydantic").exists()
    if not had_sam_dir:
        assert not (tools.REPO_ROOT / ".aws-sam").exists(), (
            "sam build wrote .aws-sam into the checkout"
        )
