"""The stack's customer managed key: created in prod only, rotated, kept; what it encrypts; and
who may use it."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest

from infra.cfn_yaml import Evaluator
from infra.iam_policies import STACK_NAME, Stack
from infra.test_iam import ACCOUNT, REGION, as_list, resolved_policies, statements
from infra.tools import ENVIRONMENTS

KEY = "DataKey"
KEY_ARN = f"<{KEY}.Arn>"
TABLES = ("CacheTable", "HistoryTable", "BudgetTable", "FeedbackTable")
# A route that calls a model, so that the stack has a guardrail to encrypt.
CALLS_A_MODEL = {
    "AnswerModel": "sagemaker:concierge-llama-3-1-70b:messages",
    "SageMakerEndpointNames": "concierge-llama-3-1-70b",
}
GIVEN_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abcd1234-12ab-34cd-56ef-1234567890ab"
# Every role that reaches encrypted data, and how: DynamoDB, S3, or Bedrock (the guardrail).
KEY_USERS = {
    "ApiFunction": "dynamodb",
    "SemanticFunction": "dynamodb",
    "ChatStateMachine": "dynamodb",
    "RetrieveFunction": "s3",
    "ClassifyFunction": "guardrail",
    "CondenseFunction": "guardrail",
    "AnswerFunction": "guardrail",
}


def of_type(template: dict[str, Any], kind: str) -> list[str]:
    return [name for name, body in template["Resources"].items() if body["Type"] == kind]


def encryption(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """What encrypts each table, the bucket, each log group and the guardrail."""
    evaluator = Evaluator(template, parameters)
    resources = template["Resources"]
    found: dict[str, Any] = {
        table: evaluator.resolve(resources[table]["Properties"]["SSESpecification"])
        for table in TABLES
    }
    bucket = evaluator.resolve(resources["KnowledgeBucket"]["Properties"]["BucketEncryption"])
    found["KnowledgeBucket"] = bucket["ServerSideEncryptionConfiguration"][0]
    for group in of_type(template, "AWS::Logs::LogGroup"):
        found[group] = evaluator.resolve(resources[group]["Properties"]).get("KmsKeyId")
    if evaluator.creates("ChatGuardrail"):
        found["ChatGuardrail"] = evaluator.resolve(resources["ChatGuardrail"]["Properties"]).get(
            "KmsKeyArn"
        )
    return found


@pytest.mark.parametrize("env", ["defaults", *ENVIRONMENTS])
def test_only_prod_creates_the_key_and_it_rotates_and_outlives_the_stack(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the template defaults or an environment as deployed
    parameters = {} if env == "defaults" else env_parameters[env]

    # When the key's resource is read and its condition evaluated
    key = template["Resources"][KEY]
    created = Evaluator(template, parameters).creates(KEY)

    # Then only prod has a key of its own, a symmetric one that rotates, and that is retained
    # with the stack (the retained bucket and the tables' backups need it to be read)
    assert created is (env == "prod"), env
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"


def test_prod_encrypts_tables_bucket_log_groups_and_guardrail_with_the_key(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]]
) -> None:
    # Given prod as deployed
    parameters = env_parameters["prod"]

    # When what encrypts each resource is resolved
    found = encryption(template, parameters)

    # Then the tables, the bucket (with an S3 bucket key), every log group and the guardrail
    # use the stack's key
    for table in TABLES:
        assert found[table] == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY_ARN}
    assert found["KnowledgeBucket"] == {
        "BucketKeyEnabled": True,
        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN},
    }
    log_groups = of_type(template, "AWS::Logs::LogGroup")
    assert log_groups
    assert {group: found[group] for group in log_groups} == dict.fromkeys(log_groups, KEY_ARN)
    assert found["ChatGuardrail"] == KEY_ARN


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_without_a_key_aws_keys_encrypt_everything(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given an environment without a key of its own
    parameters = env_parameters[env]

    # When what encrypts each resource is resolved
    found = encryption(template, parameters)

    # Then the tables use DynamoDB's AWS owned key, the bucket SSE-S3, the log groups and the
    # guardrail their services' own encryption
    for table in TABLES:
        assert found[table] == {"SSEEnabled": False}
    assert found["KnowledgeBucket"] == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    assert {name: value for name, value in found.items() if value == KEY_ARN} == {}
    assert found["ChatGuardrail"] is None


def test_a_key_of_yours_wins_over_creating_one_but_leaves_the_log_groups_alone(
    template: dict[str, Any],
) -> None:
    # Given a key of yours, and CustomerManagedKey=true as well
    parameters = {**CALLS_A_MODEL, "KmsKeyArn": GIVEN_KEY, "CustomerManagedKey": "true"}

    # When the template is resolved with them
    created = Evaluator(template, parameters).creates(KEY)
    found = encryption(template, parameters)

    # Then no key is created; the tables, the bucket and the guardrail use yours; the log
    # groups keep CloudWatch Logs' encryption (your key policy would have to admit the service)
    assert not created
    for table in TABLES:
        assert found[table]["KMSMasterKeyId"] == GIVEN_KEY
    assert found["KnowledgeBucket"]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == GIVEN_KEY
    assert found["ChatGuardrail"] == GIVEN_KEY
    assert [group for group in of_type(template, "AWS::Logs::LogGroup") if found[group]] == []


def test_cloudwatch_logs_may_use_the_key_for_the_stacks_log_groups_only(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]]
) -> None:
    # Given prod's key policy and log groups, in the test stack
    stack = Stack(template, {}, env_parameters["prod"], region=REGION, account=ACCOUNT)
    policy = stack.resolve(template["Resources"][KEY]["Properties"]["KeyPolicy"])
    names = [
        stack.resolve(template["Resources"][group]["Properties"]["LogGroupName"])
        for group in of_type(template, "AWS::Logs::LogGroup")
    ]

    # When the statement for the CloudWatch Logs service is picked out
    (logs,) = [
        s for s in policy["Statement"] if s["Principal"].get("Service", "").startswith("logs.")
    ]
    allowed = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]

    # Then it names the region's Logs service, and the encryption context of each of the stack's
    # log groups matches it while another stack's group does not
    assert logs["Principal"]["Service"] == f"logs.{REGION}.amazonaws.com"
    for name in names:
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"
        assert any(fnmatchcase(arn, pattern) for pattern in allowed), name
    other = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/other-stack/api"
    assert not any(fnmatchcase(other, pattern) for pattern in allowed)
    assert all(STACK_NAME in pattern for pattern in allowed)
    # And the account keeps administering the key through IAM (no other principal is named)
    principals = [s["Principal"] for s in policy["Statement"]]
    assert principals == [
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        {"Service": f"logs.{REGION}.amazonaws.com"},
    ]


def test_each_role_may_use_the_key_only_through_the_service_it_reaches(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]]
) -> None:
    # Given prod as deployed
    parameters = env_parameters["prod"]

    # When each role's statements on KMS are resolved
    kms = {
        holder: [
            s
            for s in statements(resolved_policies(template, holder, parameters))
            if any(a.startswith("kms:") for a in as_list(s["Action"]))
        ]
        for holder in KEY_USERS
    }

    # Then each may use exactly the stack's key: through DynamoDB or S3 only for the roles that
    # reach the tables or the bucket, to decrypt the guardrail Bedrock applies for the model steps
    for holder, via in KEY_USERS.items():
        assert kms[holder], f"{holder} may not use the key"
        for statement in kms[holder]:
            assert statement["Resource"] == KEY_ARN, holder
            if via == "guardrail":
                assert statement["Action"] == "kms:Decrypt", holder
                continue
            service = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert service == f"{via}.{REGION}.amazonaws.com", holder
