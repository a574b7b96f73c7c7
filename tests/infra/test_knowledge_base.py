"""Retrieval backend per environment: the local index, or one Bedrock knowledge base and exactly
the grant to search it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import tools
from infra.cfn_yaml import Evaluator
from infra.test_iam import (
    ACCOUNT,
    REGION,
    ROLE_HOLDERS,
    as_list,
    resolved_policies,
    statements,
)

KB_ID = "KBTEST1234"
KB_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:knowledge-base/{KB_ID}"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def retrieve_grants(template: dict[str, Any], holder: str, parameters: dict[str, str]) -> set[str]:
    """The resources the holder may call bedrock:Retrieve on."""
    return {
        resource
        for statement in statements(resolved_policies(template, holder, parameters))
        if "bedrock:Retrieve" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }


def reads_the_knowledge_bucket(template: dict[str, Any], parameters: dict[str, str]) -> bool:
    """Whether the retrieve role may read the index object in the knowledge bucket."""
    policies = resolved_policies(template, "RetrieveFunction", parameters)
    return any(
        "s3:GetObject" in as_list(statement["Action"])
        and str(statement["Resource"]).startswith("<KnowledgeBucket.Arn>/")
        for statement in statements(policies)
    )


def function_environment(
    template: dict[str, Any], function: str, parameters: dict[str, str]
) -> dict[str, str]:
    evaluator = Evaluator(template, parameters)
    variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
    return {name: str(value) for name, value in evaluator.resolve(variables).items()}


def retrieve_environment(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    return function_environment(template, "RetrieveFunction", parameters)


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"KnowledgeBaseId": KB_ID}, id="knowledge-base"),
        pytest.param({"KnowledgeBaseId": KB_ID, "KmsKeyArn": KMS_KEY}, id="knowledge-base+kms"),
        pytest.param({"KmsKeyArn": KMS_KEY}, id="local+kms"),
    ],
)
def test_retrieve_may_search_the_knowledge_base_iff_one_is_configured(
    template: dict[str, Any], parameters: dict[str, str]
) -> None:
    # Given parameters with or without a knowledge base (and with or without a customer key)
    uses_kb = bool(parameters.get("KnowledgeBaseId"))

    # When the roles' policies are resolved with them
    grants = {holder: retrieve_grants(template, holder, parameters) for holder in ROLE_HOLDERS}
    reads_bucket = reads_the_knowledge_bucket(template, parameters)
    kms = [
        statement
        for statement in statements(resolved_policies(template, "RetrieveFunction", parameters))
        if "kms:Decrypt" in as_list(statement["Action"])
    ]

    # Then the retrieve role may call Retrieve on exactly that knowledge base, and no other role may
    assert grants["RetrieveFunction"] == ({KB_ARN} if uses_kb else set())
    for holder in set(ROLE_HOLDERS) - {"RetrieveFunction"}:
        assert grants[holder] == set(), holder
    # And it reads the index bucket (and its key) only when it searches the local index
    assert reads_bucket is not uses_kb
    assert bool(kms) is (not uses_kb and "KmsKeyArn" in parameters)


def test_the_knowledge_base_statement_is_retrieve_only_and_never_a_wildcard(
    template: dict[str, Any],
) -> None:
    # Given a knowledge base
    parameters = {"KnowledgeBaseId": KB_ID}

    # When the retrieve function's policies are resolved with it
    policies = resolved_policies(template, "RetrieveFunction", parameters)

    # Then its one Bedrock statement allows Retrieve on that knowledge base and nothing else
    bedrock = [
        statement
        for statement in statements(policies)
        if any(action.startswith("bedrock:") for action in as_list(statement["Action"]))
    ]
    assert bedrock == [
        {
            "Sid": "SearchKnowledgeBase",
            "Effect": "Allow",
            "Action": "bedrock:Retrieve",
            "Resource": KB_ARN,
        }
    ]


@pytest.mark.parametrize("env", tools.ENVIRONMENTS)
def test_each_environment_chooses_its_retriever_and_grants_only_that(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the environment's overrides: the choice is explicit, never a forgotten default
    parameters = env_parameters[env]
    assert "KnowledgeBaseId" in parameters, f"{env} does not choose its retriever"
    kb_id = parameters["KnowledgeBaseId"]

    # When the retrieve function's environment and policies are resolved with them
    environment = retrieve_environment(template, parameters)
    grants = retrieve_grants(template, "RetrieveFunction", parameters)
    reads_bucket = reads_the_knowledge_bucket(template, parameters)

    # Then the function is told the same backend its role may use
    assert environment["CONCIERGE_RETRIEVER"] == ("bedrock-kb" if kb_id else "local")
    expected = {f"arn:aws:bedrock:{REGION}:{ACCOUNT}:knowledge-base/{kb_id}"} if kb_id else set()
    assert grants == expected
    assert reads_bucket is not bool(kb_id)


def test_the_knowledge_base_parameters_reach_the_retrieve_settings(
    template: dict[str, Any],
) -> None:
    from concierge import config

    # Given a knowledge base with its own attribute names and labels, and a score floor
    parameters = {
        "KnowledgeBaseId": KB_ID,
        "KnowledgeBaseCategoryAttribute": "topic",
        "KnowledgeBaseLanguageAttribute": "lang",
        "KnowledgeBaseCategoryMap": "products=catalogue,pricing=prices",
        "MinScore": "0.4",
    }

    # When the function loads its settings from the resolved environment
    environ = retrieve_environment(template, parameters)
    settings = config.load(config.RetrieveSettings, environ)
    knowledge_base = config.load(config.KnowledgeBaseSettings, environ)

    # Then it searches that knowledge base, as configured
    assert settings.retriever == "bedrock-kb"
    assert knowledge_base.knowledge_base_id == KB_ID
    assert (
        knowledge_base.knowledge_base_category_attribute,
        knowledge_base.knowledge_base_language_attribute,
    ) == ("topic", "lang")
    assert dict(knowledge_base.knowledge_base_category_map) == {
        "products": "catalogue",
        "pricing": "prices",
    }
    assert settings.min_score == 0.4
    # And the knowledge base variables stay on the retrieve function; classify and condense
    # know only which backend it is (they route by its categories, read from the knowledge
    # base's catalog)
    routing = {"ClassifyFunction", "CondenseFunction"}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function" and name != "RetrieveFunction":
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            assert not [v for v in variables if "KNOWLEDGE_BASE" in v]
            assert ("CONCIERGE_RETRIEVER" in variables) == (name in routing), name
    for name in routing:
        environ = function_environment(template, name, parameters)
        assert environ["CONCIERGE_RETRIEVER"] == "bedrock-kb"
        assert environ["CONCIERGE_CATALOG_URI"].endswith("/index/categories.json")


# Runs inside .venv-sam: SAM's own translation of the template into CloudFormation. It rejects
# what `sam validate --lint` and cfn-lint let through, such as two policy types in one Fn::If.
_TRANSLATE = """
import json, re, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

text = open(sys.argv[1], encoding="utf-8").read()
# Local code paths are uploaded by `sam deploy`; the translator only accepts S3 locations.
text = re.sub(r"(CodeUri|ContentUri|DefinitionUri): \\S+", r"\\1: s3://bucket/key", text)

class NoManagedPolicies:
    def load(self):
        return {}

output = transform(yaml_parse(text), {}, NoManagedPolicies())
print(json.dumps(output["Resources"]["RetrieveFunctionRole"]["Properties"]["Policies"]))
"""


def test_sam_translates_the_retrieve_function_policies() -> None:
    # Given the Python of .venv-sam, which has SAM's translator
    python = tools.sam().parent / "python"

    # When it translates the template into CloudFormation
    result = tools.run([python, "-c", _TRANSLATE, tools.TEMPLATE])

    # Then it accepts the template, and the retrieve role gets one policy per backend condition
    assert result.returncode == 0, tools.describe(result)
    conditions = [policy["Fn::If"][0] for policy in json.loads(result.stdout)]
    assert conditions == ["ReadsLocalIndex", "UsesKnowledgeBase", "DecryptsLocalIndex"]
