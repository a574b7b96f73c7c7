import pytest

from concierge.config import ApiSettings, ClassifySettings, load
from concierge.errors import ConfigurationError


def test_a_missing_required_setting_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="CONCIERGE_STATE_MACHINE_ARN"):
        load(ApiSettings, {})


def test_settings_are_read_from_prefixed_variables() -> None:
    settings = load(
        ApiSettings,
        {
            "CONCIERGE_STATE_MACHINE_ARN": "arn:sm",
            "CONCIERGE_CACHE_TTL_SECONDS": "3600",
            "CONCIERGE_ANSWER_MODEL": "offline",
        },
    )
    assert settings.state_machine_arn == "arn:sm"
    assert settings.cache_ttl_seconds == 3600
    assert settings.execution_mode == "sync"


def test_categories_are_a_comma_separated_list() -> None:
    settings = load(
        ClassifySettings,
        {
            "CONCIERGE_CLASSIFY_MODEL": "offline",
            "CONCIERGE_CATEGORIES": "products, pricing,,support",
        },
    )
    assert settings.categories == ("products", "pricing", "support")


def test_an_invalid_value_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="CONCIERGE_EXECUTION_MODE"):
        load(
            ApiSettings, {"CONCIERGE_STATE_MACHINE_ARN": "arn", "CONCIERGE_EXECUTION_MODE": "later"}
        )
