"""Model routes per environment: every model a route names may be invoked, and nothing else.

The routes (primary + fallbacks of classify, condense and answer) and the IAM allow-lists are
set side by side in samconfig.toml. A model missing from the allow-lists fails only when the
route reaches it - typically a fallback, in an outage - so these checks run before any deploy.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from concierge import config
from concierge.adapters.llm.registry import model_for
from concierge.pricing import PriceTable
from infra import routes
from infra.tools import ENVIRONMENTS


def describe(access: routes.ModelAccess) -> dict[str, list[str]]:
    return {
        "BedrockModelIds": sorted(access.model_ids),
        "BedrockInferenceProfileIds": sorted(access.profile_ids),
        "SageMakerEndpointNames": sorted(access.endpoints),
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_sets_every_route_and_allow_list_explicitly(
    env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the parameters every environment must set: the template defaults are offline with
    # empty allow-lists, so an environment that forgets one of these silently runs a different
    # route or grants nothing
    expected = {f"{step}{part}" for step in routes.STEPS for part in ("Model", "Fallbacks")}
    expected |= set(routes.ALLOW_LISTS)

    # When the environment's overrides are compared with them
    missing = expected - set(env_parameters[env])

    # Then none is missing
    assert missing == set()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_allow_lists_grant_exactly_the_models_the_routes_use(
    template: dict[str, Any],
    env_parameters: dict[str, dict[str, str]],
    samconfig: dict[str, Any],
    env: str,
) -> None:
    # Given the environment's routes and allow-lists (and its stack, whose self-hosted endpoint
    # the roles may invoke when it hosts a model)
    defaults = routes.template_defaults(template)
    parameters = env_parameters[env]
    stack_name = samconfig[env]["global"]["parameters"]["stack_name"]

    # When the models the routes name are turned into what they need
    needed = routes.required_access(routes.all_specs(parameters, defaults))
    allowed = routes.allowed_access(parameters, defaults, stack_name)

    # Then the allow-lists hold all of it (no AccessDenied when a fallback is reached) and
    # nothing more (no grant outlives the route that needed it)
    missing = describe(
        routes.ModelAccess(
            needed.model_ids - allowed.model_ids,
            needed.profile_ids - allowed.profile_ids,
            needed.endpoints - allowed.endpoints,
        )
    )
    unused = describe(
        routes.ModelAccess(
            allowed.model_ids - needed.model_ids,
            allowed.profile_ids - needed.profile_ids,
            allowed.endpoints - needed.endpoints,
        )
    )
    assert not any(missing.values()), f"{env}: add to the allow-lists {missing}"
    assert not any(unused.values()), f"{env}: no route uses {unused}"


def test_template_defaults_are_consistent_and_call_no_model(template: dict[str, Any]) -> None:
    # Given the template defaults
    defaults = routes.template_defaults(template)

    # When their routes and allow-lists are read
    specs = set(routes.all_specs({}, defaults))
    allowed = routes.allowed_access({}, defaults)

    # Then every route is offline and nothing is allowed
    assert specs == {"offline"}
    assert allowed == routes.ModelAccess()


def test_inference_profiles_name_their_base_model() -> None:
    # Given routes through an inference profile, a model, an endpoint and offline
    specs = [
        "bedrock:eu.anthropic.claude-3-haiku-20240307-v1:0",
        "bedrock:amazon.nova-micro-v1:0",
        "sagemaker:Concierge-Llama:messages",
        "offline",
    ]

    # When the access they need is worked out
    needed = routes.required_access(specs)

    # Then the profile needs its base model too, and the endpoint is named in lower case
    assert needed == routes.ModelAccess(
        model_ids=frozenset({"anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-micro-v1:0"}),
        profile_ids=frozenset({"eu.anthropic.claude-3-haiku-20240307-v1:0"}),
        endpoints=frozenset({"concierge-llama"}),
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_allow_lists_fit_the_slots_of_the_template(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the environment's allow-lists over the template defaults (the template reads each
    # list through a fixed number of slots; an item past the last slot would be silently left
    # out of the policy)
    defaults = routes.template_defaults(template)
    for parameter in routes.ALLOW_LISTS:
        # When the list's items and the template's slots for it are counted
        slots = routes.slot_count(template, parameter)
        items = routes.split_list({**defaults, **env_parameters[env]}[parameter])

        # Then every item has a slot
        assert len(items) <= slots, f"{env}: {parameter} has {len(items)} items, room for {slots}"


def test_parameter_descriptions_state_the_slot_limits(template: dict[str, Any]) -> None:
    # Given each allow-list parameter
    for parameter in routes.ALLOW_LISTS:
        # When the slots the template reads for it are counted
        slots = routes.slot_count(template, parameter)

        # Then there are some, and the parameter's description says how many
        assert slots > 0
        assert f"Up to {slots} " in template["Parameters"][parameter]["Description"], parameter


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_route_model_is_one_the_package_can_build(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the environment's routes, default runtime settings and a client factory that must
    # not be used (the adapters ask the factory for a client only when they call, so this runs
    # offline)
    defaults = routes.template_defaults(template)
    runtime = config.ModelRuntimeSettings()

    def no_client(service: str, read_timeout: float | None = None) -> Any:
        raise AssertionError("building a model must not create a client")

    # When the package's registry builds the model of every spec the routes name (it rejects a
    # spec it does not know with a ConfigurationError)
    built = [
        (spec, model_for(spec, runtime, no_client))
        for spec in routes.all_specs(env_parameters[env], defaults)
    ]

    # Then each is the model of its spec
    for spec, model in built:
        assert model.spec == spec


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_route_model_has_a_price(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the bundled prices.toml and the environment's ModelPrices override
    parameters = {**routes.template_defaults(template), **env_parameters[env]}
    runtime = config.load(
        config.ModelRuntimeSettings, {"CONCIERGE_MODEL_PRICES": parameters["ModelPrices"]}
    )
    prices = PriceTable(runtime.model_prices)

    # When every model a route can reach is looked up in them
    unpriced = [s for s in routes.all_specs(parameters, {}) if prices.price(s) is None]

    # Then each is priced, so the CostUsd metric covers every call (a SageMaker endpoint needs
    # an effective per-token price in ModelPrices)
    assert unpriced == [], f"{env}: give these a price in ModelPrices: {unpriced}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_price_overrides_are_only_for_models_the_routes_use(
    template: dict[str, Any], env_parameters: dict[str, dict[str, str]], env: str
) -> None:
    # Given the environment's parameters over the template defaults
    parameters = {**routes.template_defaults(template), **env_parameters[env]}

    # When its ModelPrices overrides are read
    overrides = json.loads(parameters["ModelPrices"] or "{}")

    # Then each one prices a model some route uses
    assert set(overrides) <= set(routes.all_specs(parameters, {})), env


def test_dev_sync_deploys_what_dev_deploy_deploys(
    env_parameters: dict[str, dict[str, str]], dev_sync_parameters: dict[str, str]
) -> None:
    # Given dev's overrides for `sam deploy`
    deployed = env_parameters["dev"]

    # When `sam sync` reads its own section
    synced = dev_sync_parameters

    # Then its routes and grants do not drift from `sam deploy`'s
    assert synced == deployed


def test_profile_geographies_are_the_ones_the_template_accepts(template: dict[str, Any]) -> None:
    # Given the pattern the template accepts for inference profile ids
    pattern = template["Parameters"]["BedrockInferenceProfileIds"]["AllowedPattern"]

    # When a profile id of every known geography, and a bare model id, are matched against it
    profiles = {
        geography: re.fullmatch(pattern, f"{geography}.anthropic.claude-3-haiku-20240307-v1:0")
        for geography in routes.GEOGRAPHIES
    }
    bare_model = re.fullmatch(pattern, "anthropic.claude-3-haiku-20240307-v1:0")

    # Then every profile id is accepted, and the bare model id is not
    for geography, match in profiles.items():
        assert match, geography
    assert not bare_model
