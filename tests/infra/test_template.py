"""Structure of template.yaml: what the AWS tools do not check but the project relies on."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra import tools
from infra.cfn_yaml import Evaluator
from infra.iam_policies import Stack

FUNCTIONS = {
    "ApiFunction": "functions/api",
    "ClassifyFunction": "functions/classify",
    "CondenseFunction": "functions/condense",
    "RetrieveFunction": "functions/retrieve",
    "AnswerFunction": "functions/answer",
    "SemanticFunction": "functions/semantic",
}
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == kind}


def the_state_machine(template: dict[str, Any]) -> dict[str, Any]:
    machines = resources(template, "AWS::Serverless::StateMachine")
    assert list(machines) == ["ChatStateMachine"]
    properties: dict[str, Any] = machines["ChatStateMachine"]["Properties"]
    return properties


# -- the state machine ----------------------------------------------------------------------


@pytest.mark.parametrize("definition", tools.STATE_MACHINES, ids=lambda path: path.name)
def test_every_asl_placeholder_has_a_substitution_and_vice_versa(
    template: dict[str, Any], definition: Path
) -> None:
    # Given the definition and the substitutions the template supplies for it
    text = definition.read_text(encoding="utf-8")
    supplied = set(the_state_machine(template)["DefinitionSubstitutions"])

    # When the placeholders the definition uses are collected
    used = set(PLACEHOLDER.findall(text))

    # Then neither side has a name the other lacks
    assert used - supplied == set(), "placeholders without a DefinitionSubstitutions entry"
    assert supplied - used == set(), "DefinitionSubstitutions entries the definition never uses"


def test_state_machine_file_is_the_one_the_template_deploys(template: dict[str, Any]) -> None:
    # When the state machine's DefinitionUri is found in the checkout
    uri = the_state_machine(template)["DefinitionUri"]
    deployed = (tools.REPO_ROOT / uri).resolve()

    # Then it is one of the definitions the tools check
    assert deployed in {path.resolve() for path in tools.STATE_MACHINES}


def test_substitutions_are_function_arns_and_table_names_the_local_runtime_can_resolve(
    template: dict[str, Any],
) -> None:
    # Given the state machine's substitutions (`concierge serve` resolves exactly two forms;
    # anything else breaks the local run)
    substitutions = the_state_machine(template)["DefinitionSubstitutions"]

    # When / Then each is the Arn of a function or the name of a table
    for name, value in substitutions.items():
        if name.endswith("FunctionArn"):
            logical_id, attribute = value["Fn::GetAtt"]
            assert attribute == "Arn"
            assert template["Resources"][logical_id]["Type"] == "AWS::Serverless::Function"
        else:
            assert name.endswith("TableName"), name
            assert template["Resources"][value["Ref"]]["Type"] == "AWS::DynamoDB::Table"


def test_state_machine_is_express_traced_and_logs_without_execution_data(
    template: dict[str, Any],
) -> None:
    # When the state machine's properties are read
    machine = the_state_machine(template)

    # Then it is an Express workflow, traced, logging to a log group of the stack without the
    # execution data
    assert machine["Type"] == "EXPRESS"
    assert machine["Tracing"] == {"Enabled": True}
    logging = machine["Logging"]
    assert logging["IncludeExecutionData"] is False, "execution data holds the user's question"
    log_group = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert template["Resources"][log_group]["Type"] == "AWS::Logs::LogGroup"


def test_state_machine_has_no_http_api_event(template: dict[str, Any]) -> None:
    # When the state machine's events are read
    events = the_state_machine(template).get("Events", {})

    # Then none is an HttpApi event (SAM rejects them on a state machine; the api function
    # fronts it instead)
    assert all(event["Type"] != "HttpApi" for event in events.values())


# -- functions and layer ---------------------------------------------------------------------


def test_functions_are_the_expected_thin_handlers(template: dict[str, Any]) -> None:
    # Given the template's functions and the handler they share
    functions = resources(template, "AWS::Serverless::Function")
    handler = template["Globals"]["Function"]["Handler"]
    module, function = handler.split(".")

    # When the handler module of each expected code folder is parsed
    defined = {}
    for code_uri in FUNCTIONS.values():
        source = tools.REPO_ROOT / code_uri / f"{module}.py"
        tree = ast.parse(source.read_text(encoding="utf-8"))
        defined[source] = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}

    # Then the functions are the expected ones, each with its own code folder
    assert {name: body["Properties"]["CodeUri"] for name, body in functions.items()} == FUNCTIONS
    # And each folder's module defines the handler
    for source, names in defined.items():
        assert function in names, f"{source} does not define {function}"


def test_every_function_runs_on_arm64_with_the_layer_and_active_tracing(
    template: dict[str, Any],
) -> None:
    # When the settings every function inherits, and each function's own, are read
    globals_ = template["Globals"]["Function"]
    functions = resources(template, "AWS::Serverless::Function")

    # Then the inherited ones are python3.11 on arm64, traced, with the shared layer
    assert globals_["Runtime"] == "python3.11"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Tracing"] == "Active"
    assert {"Ref": "ConciergeLayer"} in globals_["Layers"]
    # And no function overrides them (a function-level value would override the global one)
    for name, body in functions.items():
        properties = body["Properties"]
        assert properties.get("Architectures", ["arm64"]) == ["arm64"], name
        assert properties.get("Tracing", "Active") == "Active", name
        assert properties.get("Runtime", "python3.11") == "python3.11", name
        # SAM appends a function's layers to the global list: only the retrieve function adds
        # one, the dense retrieval layer
        expected = [{"Ref": "DenseLayer"}] if name == "RetrieveFunction" else None
        assert properties.get("Layers") == expected, f"{name} layers"


def test_layer_is_built_by_sam_for_arm64(template: dict[str, Any]) -> None:
    # When the layer's resource is read
    layer = template["Resources"]["ConciergeLayer"]

    # Then SAM builds it from layers/concierge and its requirements, for python3.11 on arm64
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/concierge"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.11"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "python3.11", "BuildArchitecture": "arm64"}
    assert (tools.REPO_ROOT / "layers" / "concierge" / "requirements.txt").is_file()


def test_the_dense_layer_is_built_from_arm64_wheels_without_their_dependencies(
    template: dict[str, Any],
) -> None:
    # When the dense layer's resource and its build files are read
    layer = template["Resources"]["DenseLayer"]
    makefile = (tools.REPO_ROOT / "layers" / "dense" / "Makefile").read_text(encoding="utf-8")
    pins = (tools.REPO_ROOT / "layers" / "dense" / "requirements.txt").read_text(encoding="utf-8")
    dev = (tools.REPO_ROOT / "requirements" / "dev.txt").read_text(encoding="utf-8").split()

    # Then SAM builds it with its Makefile, for python3.11 on arm64, from arm64 wheels only,
    # without dependencies, pinned as the development environment is
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/dense"
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert "build-DenseLayer:" in makefile
    for flag in ("--no-deps", "--only-binary=:all:", "aarch64", "--python-version 3.11"):
        assert flag in makefile, flag
    pinned = [line for line in pins.splitlines() if line and not line.startswith("#")]
    assert {line.split("==")[0] for line in pinned} == {
        "numpy",
        "tokenizers",
        "safetensors",
        "wordllama",
    }
    assert all(line in dev for line in pinned), pinned


def test_every_function_logs_to_its_own_group_with_retention(template: dict[str, Any]) -> None:
    # When the log group of each function is looked up
    groups = {
        name: body["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        for name, body in resources(template, "AWS::Serverless::Function").items()
    }

    # Then each is a log group of the stack, and no two functions share one
    for name, group in groups.items():
        assert template["Resources"][group]["Type"] == "AWS::Logs::LogGroup", name
    assert len(set(groups.values())) == len(groups)
    # And every log group keeps its logs for the configured number of days
    for name, body in resources(template, "AWS::Logs::LogGroup").items():
        assert body["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_api_function_serves_the_routes_of_the_contract(template: dict[str, Any]) -> None:
    # Given the api function's events
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"]

    # When the routes of its events on the chat api are collected
    routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for event in events.values()
        if event["Type"] == "HttpApi" and event["Properties"]["ApiId"] == {"Ref": "ChatApi"}
    }

    # Then they are the contract's routes: chat, feedback, a session, one's usage, health, and
    # the administrators' erasure and flush
    assert routes == {
        ("POST", "/chat"),
        ("POST", "/feedback"),
        ("GET", "/health"),
        ("DELETE", "/sessions/{session_id}"),
        ("GET", "/me/usage"),
        ("DELETE", "/users/{user_id}"),
        ("POST", "/admin/cache/flush"),
    }


def test_every_route_but_health_needs_a_verified_token(template: dict[str, Any]) -> None:
    # Given the http api's authorizer and the api function's routes
    api = template["Resources"]["ChatApi"]["Properties"]
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"]

    # When the routes that opt out of the default authorizer are collected
    open_routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for event in events.values()
        if event["Properties"].get("Auth", {}).get("Authorizer") == "NONE"
    }

    # Then a JWT authorizer on the Authorization header guards every route but GET /health,
    # against the Cognito pool of the stack unless AuthIssuer names another issuer
    authorizer = api["Auth"]["Authorizers"][api["Auth"]["DefaultAuthorizer"]]
    assert authorizer["IdentitySource"] == "$request.header.Authorization"
    issuer = authorizer["JwtConfiguration"]["issuer"]["Fn::If"]
    assert issuer[0] == "UsesOwnIssuer" and issuer[1] == {"Ref": "AuthIssuer"}
    assert "cognito-idp" in issuer[2]["Fn::Sub"]
    assert open_routes == {("GET", "/health")}


def split_items(split: dict[str, Any]) -> list[Any]:
    """The items an `!Split [",", !Join [",", [a, b, ...]]]` joins."""
    delimiter, joined = split["Fn::Split"]
    assert delimiter == ","
    separator, items = joined["Fn::Join"]
    assert separator == ","
    return list(items)


def test_http_api_has_narrow_cors_throttling_and_access_logs(template: dict[str, Any]) -> None:
    # When the http api's properties are read
    api = template["Resources"]["ChatApi"]["Properties"]

    # Then CORS allows the stack's web page (its distribution) and the configured origins, and
    # the routes' methods only, every route is throttled, and the access logs name the request
    # but not the caller's IP
    page, more, only_page = api["CorsConfiguration"]["AllowOrigins"]["Fn::If"]
    assert page == "HasMoreCorsOrigins"
    assert only_page == [{"Fn::Sub": "https://${WebDistribution.DomainName}"}]
    assert {"Fn::Sub": "https://${WebDistribution.DomainName}"} in split_items(more)
    assert {"Fn::Join": [",", {"Ref": "CorsAllowedOrigins"}]} in split_items(more)
    assert set(api["CorsConfiguration"]["AllowMethods"]) == {"GET", "POST", "DELETE", "OPTIONS"}
    assert api["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert "DestinationArn" in api["AccessLogSettings"]
    assert "$context.requestId" in api["AccessLogSettings"]["Format"]
    assert "sourceIp" not in api["AccessLogSettings"]["Format"]


def settings_models() -> dict[str, tuple[type[Any], ...]]:
    """The settings groups each handler loads (the model steps also load the model runtime).

    The safety groups (the screen, the answer checks, privacy) are being added to the package:
    each counts from the moment `concierge.config` has it."""
    from concierge import config

    def safety(*names: str) -> tuple[type[Any], ...]:
        return tuple(getattr(config, name) for name in names if hasattr(config, name))

    return {
        # The answer route and the model prices price a request's budget reservation.
        "ApiFunction": (
            config.ApiSettings,
            config.TableSettings,
            config.AnswerRoute,
            config.ModelRuntimeSettings,
            *safety("ScreenSettings", "PrivacySettings"),
        ),
        # The retrieve settings say where the menu's categories are (the index, or not).
        "ClassifyFunction": (
            config.CategorySettings,
            config.RetrieveSettings,
            config.CascadeSettings,
            config.ClassifyRoute,
            config.ModelRuntimeSettings,
        ),
        "CondenseFunction": (
            config.CategorySettings,
            config.RetrieveSettings,
            config.CondenseRoute,
            config.CondenseSettings,
            config.ModelRuntimeSettings,
            *safety("ScreenSettings"),
        ),
        "RetrieveFunction": (
            config.RetrieveSettings,
            config.KnowledgeBaseSettings,
            *safety("ScreenSettings"),
        ),
        "AnswerFunction": (
            config.AnswerRoute,
            config.ModelRuntimeSettings,
            *safety("AnswerCheckSettings", "PrivacySettings"),
        ),
        "SemanticFunction": (config.SemanticCacheSettings, config.TableSettings),
    }


# Variables the template wires before the package reads them (the Safety issue's screen, link
# hosts and redaction, being written). One is excused only while no settings group declares it:
# from then on the functions that get it must load that group (settings_models above).
WIRED_AHEAD_OF_THE_CODE = {"CONCIERGE_SCREEN", "CONCIERGE_LINK_HOSTS", "CONCIERGE_REDACT_PII"}


def declared_by_some_group() -> set[str]:
    """Every variable a settings group of the package reads."""
    from concierge import config

    groups = [
        value
        for value in vars(config).values()
        if isinstance(value, type)
        and issubclass(value, config.SettingsGroup)
        and value is not config.SettingsGroup
    ]
    return {config.ENV_PREFIX + field.upper() for group in groups for field in group.model_fields}


def function_environment(
    template: dict[str, Any], parameters: dict[str, str]
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """(Globals variables, the function's own variables) of every function, resolved; the
    stack's resources named as AWS would name them (a guardrail id, a version number)."""
    stack = Stack(template, {}, parameters, region="eu-west-1", account="123456789012")
    shared = stack.resolve(template["Globals"]["Function"]["Environment"]["Variables"])
    return {
        name: (
            shared,
            stack.resolve(template["Resources"][name]["Properties"]["Environment"]["Variables"]),
        )
        for name in FUNCTIONS
    }


@pytest.mark.parametrize("env", ["defaults", *tools.ENVIRONMENTS])
def test_each_function_can_load_its_settings_from_the_template_environment(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    from concierge import config

    # Given the parameters of the template defaults or of an environment
    parameters = {} if env == "defaults" else env_parameters[env]

    # When every function's environment is resolved with them
    environments = function_environment(template, parameters)
    excused = WIRED_AHEAD_OF_THE_CODE - declared_by_some_group()

    # Then the settings models of each handler (the package reads CONCIERGE_* variables into
    # them) find every required setting, no variable they ignore (but those wired ahead of the
    # code), and values that validate
    for name, models in settings_models().items():
        shared, own = environments[name]
        known = {config.ENV_PREFIX + field.upper() for m in models for field in m.model_fields}
        required = {
            config.ENV_PREFIX + field.upper()
            for model in models
            for field, info in model.model_fields.items()
            if info.is_required()
        }
        assert required <= set(own), f"{name} misses {sorted(required - set(own))}"
        assert set(own) - excused <= known, (
            f"{name} sets variables its settings ignore: {sorted(set(own) - excused - known)}"
        )
        for model in models:
            config.load(model, {key: str(value) for key, value in {**shared, **own}.items()})


@pytest.mark.parametrize("step", ["Classify", "Condense", "Answer"])
def test_model_steps_read_route_and_runtime_settings_from_the_parameters(
    template: dict[str, Any], step: str
) -> None:
    from concierge import config

    # Given a fallback route, the models it may call, and non-default runtime parameters
    parameters = {
        f"{step}Model": "sagemaker:concierge-llama-3-1-70b:messages",
        f"{step}Fallbacks": "bedrock:eu.anthropic.claude-3-haiku-20240307-v1:0,offline",
        "SageMakerEndpointNames": "concierge-llama-3-1-70b",
        "BedrockModelIds": "anthropic.claude-3-haiku-20240307-v1:0",
        "BedrockInferenceProfileIds": "eu.anthropic.claude-3-haiku-20240307-v1:0",
        "ModelAttempts": "3",
        "RetryBaseDelayMs": "100",
        "RetryMaxDelayMs": "1500",
        "ModelPrices": '{"sagemaker:concierge-llama-3-1-70b:messages":{"input":0.005,"output":0.006}}',
        "GuardrailId": "gr0abc123xyz",
        "GuardrailVersion": "4",
        "BedrockLatency": "optimized",
    }
    shared, own = function_environment(template, parameters)[f"{step}Function"]
    environ = {key: str(value) for key, value in {**shared, **own}.items()}

    # When the handler loads its settings
    step_settings = config.load(getattr(config, f"{step}Route"), environ)
    runtime = config.load(config.ModelRuntimeSettings, environ)

    # Then it gets the route in order and the runtime exactly as configured
    assert getattr(step_settings, f"{step.lower()}_model") == parameters[f"{step}Model"]
    assert getattr(step_settings, f"{step.lower()}_fallbacks") == (
        "bedrock:eu.anthropic.claude-3-haiku-20240307-v1:0",
        "offline",
    )
    assert (runtime.model_attempts, runtime.retry_base_delay_ms, runtime.retry_max_delay_ms) == (
        3,
        100,
        1500,
    )
    assert runtime.model_prices == {
        "sagemaker:concierge-llama-3-1-70b:messages": config.Price(input=0.005, output=0.006)
    }
    assert (runtime.bedrock_guardrail_id, runtime.bedrock_guardrail_version) == (
        "gr0abc123xyz",
        "4",
    )
    assert runtime.bedrock_latency == "optimized"


def test_empty_runtime_parameters_mean_not_set(template: dict[str, Any]) -> None:
    from concierge import config

    # Given the answer function's environment for the template defaults
    shared, own = function_environment(template, {})["AnswerFunction"]
    environ = {key: str(value) for key, value in {**shared, **own}.items()}

    # When the handler loads its settings
    runtime = config.load(config.ModelRuntimeSettings, environ)
    route = config.load(config.AnswerRoute, environ)

    # Then the optional settings are "" (CloudFormation cannot leave a variable out)
    assert environ["CONCIERGE_MODEL_PRICES"] == ""
    assert environ["CONCIERGE_ANSWER_FALLBACKS"] == ""
    assert environ["CONCIERGE_BEDROCK_GUARDRAIL_ID"] == ""
    # And "" reads as "bundled prices only", "no guardrail" and "no fallbacks", not as an error
    assert runtime.model_prices is None
    assert runtime.bedrock_guardrail_id is None
    assert (runtime.model_attempts, runtime.bedrock_latency) == (2, "standard")
    assert route.answer_fallbacks == ()


def test_traces_capture_no_handler_result_and_no_error(template: dict[str, Any]) -> None:
    # When the variables every function inherits, and each function's own, are read
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    own = {
        name: body["Properties"]["Environment"]["Variables"]
        for name, body in resources(template, "AWS::Serverless::Function").items()
    }

    # Then Powertools' Tracer records neither a handler's result nor its exception in X-Ray
    # (both can hold a question or an answer), and no function turns that back on
    assert shared["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert shared["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
    for name, variables in own.items():
        assert not {k for k in variables if k.startswith("POWERTOOLS_TRACER_")}, name


@pytest.mark.parametrize(
    ("variable", "parameter", "functions"),
    [
        (
            "CONCIERGE_SCREEN",
            "InjectionScreen",
            {"ApiFunction", "CondenseFunction", "RetrieveFunction"},
        ),
        ("CONCIERGE_LINK_HOSTS", "AllowedLinkHosts", {"AnswerFunction"}),
        ("CONCIERGE_REDACT_PII", "RedactPii", {"ApiFunction", "AnswerFunction"}),
    ],
)
def test_safety_settings_reach_exactly_the_functions_that_act_on_them(
    template: dict[str, Any], variable: str, parameter: str, functions: set[str]
) -> None:
    # Given non-default values of the safety parameters
    parameters = {
        "InjectionScreen": "off",
        "AllowedLinkHosts": "www.example.com,docs.example.com",
        "RedactPii": "true",
    }

    # When every function's environment is resolved with them
    environments = function_environment(template, parameters)

    # Then the functions that screen, render links or redact get the parameter's value, and
    # no other function gets the variable
    given = {name: own[variable] for name, (_, own) in environments.items() if variable in own}
    assert given == dict.fromkeys(functions, parameters[parameter])


def test_allowed_link_hosts_are_host_names_only(template: dict[str, Any]) -> None:
    # Given the pattern of the AllowedLinkHosts parameter
    pattern = template["Parameters"]["AllowedLinkHosts"]["AllowedPattern"]

    # When / Then it accepts none or comma-separated host names, and nothing that is not one
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(pattern, "www.example.com")
    assert re.fullmatch(pattern, "www.example.com,docs.example.co.uk,localhost")
    for wrong in ("https://www.example.com", "www.example.com/", "*.example.com", "a b.com", "x,"):
        assert not re.fullmatch(pattern, wrong), wrong


def test_retrieve_reads_the_index_from_the_knowledge_bucket(template: dict[str, Any]) -> None:
    # Given the retrieve function's variables
    variables = template["Resources"]["RetrieveFunction"]["Properties"]["Environment"]["Variables"]

    # When the index location among them is resolved
    index_uri = Evaluator(template).resolve(variables["CONCIERGE_INDEX_URI"])

    # Then it is the index of the knowledge bucket
    assert index_uri == "s3://<KnowledgeBucket>/index/index.json"


# -- data ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "keys"),
    [
        ("CacheTable", [("cache_key", "HASH")]),
        ("HistoryTable", [("user_id", "HASH"), ("turn_key", "RANGE")]),
        ("BudgetTable", [("user_id", "HASH"), ("utc_day", "RANGE")]),
        ("FeedbackTable", [("user_id", "HASH"), ("request_id", "RANGE")]),
    ],
)
def test_tables_are_on_demand_with_ttl_pitr_and_literal_keys(
    template: dict[str, Any], table: str, keys: list[tuple[str, str]]
) -> None:
    # When the table's properties are read
    properties = template["Resources"][table]["Properties"]

    # Then it is billed on demand, keyed by its string keys, expires items, keeps point-in-time
    # backups, and lets CloudFormation name it
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert [(key["AttributeName"], key["KeyType"]) for key in properties["KeySchema"]] == keys
    indexed = [
        key for index in properties.get("GlobalSecondaryIndexes", []) for key in index["KeySchema"]
    ]
    assert {
        (a["AttributeName"], a["AttributeType"]) for a in properties["AttributeDefinitions"]
    } == {(name, "S") for name, _ in keys} | {(key["AttributeName"], "S") for key in indexed}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "TableName" not in properties


@pytest.mark.parametrize(
    "kms_key", ["", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
)
def test_data_is_encrypted_with_the_customer_key_when_one_is_given(
    template: dict[str, Any], kms_key: str
) -> None:
    # Given a customer key, or none
    evaluator = Evaluator(template, {"KmsKeyArn": kms_key})

    # When the encryption of the tables and of the knowledge bucket is resolved
    table_encryption = {
        table: evaluator.resolve(template["Resources"][table]["Properties"]["SSESpecification"])
        for table in ("CacheTable", "HistoryTable", "BudgetTable", "FeedbackTable")
    }
    bucket = evaluator.resolve(template["Resources"]["KnowledgeBucket"]["Properties"])
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ]

    # Then all of them use the customer key when one is given, AWS's keys otherwise
    expected = (
        {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms_key}
        if kms_key
        else {"SSEEnabled": False}
    )
    for table, sse in table_encryption.items():
        assert sse == expected, table
    assert rule == (
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key}
        if kms_key
        else {"SSEAlgorithm": "AES256"}
    )


def test_knowledge_bucket_is_private_versioned_and_tls_only(template: dict[str, Any]) -> None:
    # When the knowledge bucket's properties and its bucket policies are read
    bucket = template["Resources"]["KnowledgeBucket"]["Properties"]
    policies = [
        body["Properties"]
        for body in resources(template, "AWS::S3::BucketPolicy").values()
        if body["Properties"]["Bucket"] == {"Ref": "KnowledgeBucket"}
    ]

    # Then it is versioned, blocks every kind of public access, and denies requests without TLS
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert any(
        statement["Effect"] == "Deny"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for policy in policies
        for statement in policy["PolicyDocument"]["Statement"]
    )


# -- operations ------------------------------------------------------------------------------


def test_alarms_watch_the_chain_the_api_function_and_the_http_api(template: dict[str, Any]) -> None:
    # When the metrics the alarms watch are collected
    watched = set()
    for body in resources(template, "AWS::CloudWatch::Alarm").values():
        properties = body["Properties"]
        stats = [properties] + [
            m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m
        ]
        for metric in stats:
            if "MetricName" in metric:
                watched.add((metric["Namespace"], metric["MetricName"]))

    # Then the chain's failed executions, the functions' errors and the api's 5xx are among them
    assert {
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/Lambda", "Errors"),
        ("AWS/ApiGateway", "5xx"),
    } <= watched


def test_outputs_name_what_deployers_and_the_docs_use(template: dict[str, Any]) -> None:
    # When the template's outputs are read, and the api url resolved
    outputs = template["Outputs"]
    url = Evaluator(template).resolve(outputs["ApiUrl"]["Value"])

    # Then the api, the state machine, the tables and the bucket are among them
    assert set(outputs) >= {
        "ApiUrl",
        "StateMachineArn",
        "CacheTableName",
        "HistoryTableName",
        "KnowledgeBucketName",
    }
    # And the url is the api's default endpoint
    assert url == "https://<ChatApi>.execute-api.eu-west-1.amazonaws.com/"


def test_dashboard_body_is_json_in_the_stacks_region(template: dict[str, Any]) -> None:
    # When the dashboard body is resolved and parsed (CloudFormation only sees a string: a
    # stray comma or quote fails at deploy time)
    body = json.loads(
        Evaluator(template).resolve(
            template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
        )
    )

    # Then it is JSON with widgets, and every widget shows the stack's region (which metrics
    # they show, and that the package emits them: tests/infra/test_alarms.py)
    assert body["widgets"]
    assert all(widget["properties"]["region"] == "eu-west-1" for widget in body["widgets"])
