"""Settings: read from CONCIERGE_* variables, one group each, one mechanism for optional values."""

from __future__ import annotations

import pytest

from concierge import config
from concierge.config import ApiSettings, CategorySettings, ModelRuntimeSettings, load
from concierge.errors import ConfigurationError


def test_a_missing_required_setting_names_the_variable() -> None:
    # Given no variables at all
    # When the api settings are loaded
    # Then the error names the missing variable
    with pytest.raises(ConfigurationError, match="CONCIERGE_STATE_MACHINE_ARN"):
        load(ApiSettings, {})


def test_settings_are_read_from_prefixed_variables() -> None:
    # Given the variables of the api function
    environ = {"CONCIERGE_STATE_MACHINE_ARN": "arn:sm", "CONCIERGE_CACHE_TTL_SECONDS": "3600"}

    # When they are loaded
    settings = load(ApiSettings, environ)

    # Then each field takes its variable, and the others their defaults
    assert settings.state_machine_arn == "arn:sm"
    assert settings.cache_ttl_seconds == 3600
    assert settings.execution_mode == "sync"


def test_categories_are_a_comma_separated_list() -> None:
    # Given a list with spaces and an empty item
    environ = {"CONCIERGE_CATEGORIES": "products, pricing,,support"}

    # When the categories are loaded
    settings = load(CategorySettings, environ)

    # Then they are the named categories, in order
    assert settings.categories == ("products", "pricing", "support")


def test_an_invalid_value_is_a_configuration_error() -> None:
    # Given an execution mode that does not exist
    environ = {"CONCIERGE_STATE_MACHINE_ARN": "arn", "CONCIERGE_EXECUTION_MODE": "later"}

    # When / Then the error names the variable
    with pytest.raises(ConfigurationError, match="CONCIERGE_EXECUTION_MODE"):
        load(ApiSettings, environ)


@pytest.mark.parametrize(
    ("group", "environ"),
    [
        (ModelRuntimeSettings, {"CONCIERGE_OPENAI_API_KEY": "", "CONCIERGE_MODEL_PRICES": ""}),
        (ApiSettings, {"CONCIERGE_STATE_MACHINE_ARN": "arn", "CONCIERGE_HISTORY_TURNS": ""}),
    ],
)
def test_an_empty_variable_is_unset(
    group: type[config.SettingsGroup], environ: dict[str, str]
) -> None:
    # Given variables CloudFormation set to "" (it cannot leave a variable out)
    # When the group is loaded
    settings = load(group, environ)

    # Then each empty one takes its field's default, like an unset one
    unset = load(group, {name: value for name, value in environ.items() if value})
    assert settings == unset


def test_no_setting_belongs_to_two_groups() -> None:
    # Given every settings group
    groups = [
        value
        for value in vars(config).values()
        if isinstance(value, type)
        and issubclass(value, config.SettingsGroup)
        and value is not config.SettingsGroup
    ]

    # When their fields are counted
    owners: dict[str, list[str]] = {}
    for group in groups:
        for field in group.model_fields:
            owners.setdefault(field, []).append(group.__name__)

    # Then each variable is read by exactly one group
    assert {field: names for field, names in owners.items() if len(names) > 1} == {}
