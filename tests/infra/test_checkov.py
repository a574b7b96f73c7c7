"""checkov, offline, on template.yaml: every finding is fixed, or skipped in the template with
its reason next to the resource, and no skip outlives its finding.

A skip is the resource's own Metadata, which checkov reads:

    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_117
            comment: "Why this check does not apply to this resource, in one line."

checkov runs once, on template.yaml as it is, on a copy without any skip - what checkov finds
there is exactly what the template answers with a skip - and on a copy per mode (MODES): the
template with other parameter defaults, so that the resources only some environments create
(prod's backup plan, the SageMaker endpoints' alarms, the self-hosted model) are checked too.

What checkov cannot see: it reads each resource's `Condition` against the parameter defaults
(where it can evaluate it; hence the modes) but not the `Fn::If` inside properties, so "the tables use the
stack's key in prod" is asserted by tests/infra/test_encryption.py, per environment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra import self_hosted, tools
from infra.cfn_yaml import Evaluator, load_template

# Offline: no version check against PyPI, no policy metadata from the Prisma Cloud platform.
OFFLINE = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
UNSKIPPED = "unskipped.json"
# Parameter defaults of the other modes: what resources their conditions create is scanned too.
MODES: dict[str, dict[str, str]] = {
    "prod": {
        "Stage": "prod",
        "CustomerManagedKey": "true",
        "SageMakerEndpointNames": "concierge-llama",
    },
    "self-hosted": self_hosted.PARAMETERS,
}
# Resource types with checks that matter here: checkov must report on every such resource.
SCANNED_TYPES = {
    "AWS::Backup::BackupVault",
    "AWS::IAM::Role",
    "AWS::SageMaker::Model",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::Logs::LogGroup",
    "AWS::KMS::Key",
    "AWS::Serverless::Function",
    "AWS::Serverless::HttpApi",
    "AWS::CloudFront::Distribution",
}
CHECK_ID = re.compile(r"CKV2?_AWS_\d+")


def skips(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(check id, `<type>.<logical id>`) -> the comment, for every skip in the template."""
    found = {}
    for name, body in template["Resources"].items():
        for skip in body.get("Metadata", {}).get("checkov", {}).get("skip", []):
            found[(skip["id"], f"{body['Type']}.{name}")] = skip.get("comment", "")
    return found


def findings(report: dict[str, Any], kind: str, file_name: str) -> list[dict[str, Any]]:
    return [c for c in report["results"][kind] if Path(c["file_path"]).name == file_name]


def describe(checks: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{c['check_id']} {c['resource']} (template.yaml:{c['file_line_range'][0]}): "
        f"{c['check_name']}"
        for c in checks
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """checkov's JSON report on template.yaml and on a copy of it without the skips."""
    copy = load_template(tools.TEMPLATE)
    for body in copy["Resources"].values():
        metadata = body.get("Metadata", {})
        metadata.pop("checkov", None)
        if not metadata:
            body.pop("Metadata", None)
    folder = tmp_path_factory.mktemp("checkov")
    unskipped = folder / UNSKIPPED
    unskipped.write_text(json.dumps(copy), encoding="utf-8")
    modes = []
    for mode, defaults in MODES.items():
        moded = load_template(tools.TEMPLATE)
        for name, value in defaults.items():
            moded["Parameters"][name]["Default"] = value
        modes += ["--file", folder / f"{mode}.json"]
        (folder / f"{mode}.json").write_text(json.dumps(moded), encoding="utf-8")
    result = tools.run(
        [
            tools.checkov(),
            "--file",
            tools.TEMPLATE,
            "--file",
            unskipped,
            *modes,
            "--framework",
            "cloudformation",
            "--skip-download",
            "--compact",
            "--output",
            "json",
        ],
        env=OFFLINE,
    )
    # 0: nothing failed; 1: something failed (the unskipped copy always has findings).
    assert result.returncode in (0, 1), tools.describe(result)
    parsed: dict[str, Any] = json.loads(result.stdout)
    assert parsed["summary"]["parsing_errors"] == 0, tools.describe(result)
    return parsed


def test_checkov_finds_nothing_the_template_does_not_answer(report: dict[str, Any]) -> None:
    # When checkov's findings on template.yaml are read
    failed = findings(report, "failed_checks", tools.TEMPLATE.name)

    # Then there are none: each was fixed or is skipped on its resource with a reason
    if failed:
        pytest.fail(
            "checkov findings - fix them, or skip each on its resource (Metadata: checkov: "
            "skip: - id: …, comment: why) as docs/deploy.md explains:\n" + describe(failed),
            pytrace=False,
        )


def test_checkov_checked_every_resource_that_holds_data_code_or_keys(
    template: dict[str, Any], report: dict[str, Any]
) -> None:
    # Given the resources whose checks matter (tables, buckets, log groups, keys, functions, API)
    expected = {
        f"{body['Type']}.{name}"
        for name, body in template["Resources"].items()
        if body["Type"] in SCANNED_TYPES
    }

    # When the resources checkov reported on in template.yaml, or in one of the modes, are
    # collected
    reported = {
        check["resource"]
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for file_name in (tools.TEMPLATE.name, *(f"{mode}.json" for mode in MODES))
        for check in findings(report, kind, file_name)
    }

    # Then none was left out (checkov drops a resource whose Condition it finds false with the
    # parameter defaults: such a resource must not escape the scan - a mode must create it)
    assert expected - reported == set()


def test_every_skip_says_why_and_answers_a_finding(
    template: dict[str, Any], report: dict[str, Any]
) -> None:
    # Given the skips written in the template
    written = skips(template)

    # When checkov's findings on the copy without skips, and its skips in template.yaml, are read
    without_skips = {
        (c["check_id"], c["resource"]) for c in findings(report, "failed_checks", UNSKIPPED)
    }
    skipped = {
        (c["check_id"], c["resource"]): c["check_result"].get("suppress_comment", "")
        for c in findings(report, "skipped_checks", tools.TEMPLATE.name)
    }

    # Then each skip names a check and gives its reason in one line, checkov applied it, and it
    # answers a finding that is there without it (a skip whose finding went away goes too)
    for (check, resource), comment in written.items():
        assert CHECK_ID.fullmatch(check), f"{resource}: {check} is not a checkov check id"
        assert comment.strip() and "\n" not in comment, f"{resource}: skip {check} says no why"
    assert skipped == written
    stale = sorted(set(written) - without_skips)
    assert stale == [], "skips without a finding: remove them"
    assert without_skips <= set(written)


@pytest.mark.parametrize("mode", MODES)
def test_checkov_finds_nothing_in_the_other_modes_either(
    template: dict[str, Any], report: dict[str, Any], mode: str
) -> None:
    # Given the resources of the types that matter that this mode's parameters create
    evaluator = Evaluator(template, MODES[mode])
    expected = {
        f"{body['Type']}.{name}"
        for name, body in template["Resources"].items()
        if body["Type"] in SCANNED_TYPES and evaluator.creates(name)
    }

    # When checkov's findings on the template with this mode's defaults are read
    failed = findings(report, "failed_checks", f"{mode}.json")
    reported = {
        check["resource"]
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for check in findings(report, kind, f"{mode}.json")
    }

    # Then it found nothing unanswered there either, and scanned every such resource
    assert failed == [], describe(failed)
    assert expected - reported == set()
