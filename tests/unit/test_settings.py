"""The Settings loader: context and config-file values, conversion, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.config import Settings, SettingsError, load_settings


def test_defaults_when_nothing_is_given() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.resource_name("storage") == "datapipe-dev-storage"


def test_command_line_strings_are_converted_to_field_types() -> None:
    settings = load_settings({"stage": "prod", "storage.logTransitionDays": "60", "removalPolicy": "destroy"})
    assert settings.stage == "prod"
    assert settings.storage.log_transition_days == 60
    assert settings.removal_policy == "destroy"


def test_context_overrides_the_config_file_and_sections_merge() -> None:
    file_values = {"prefix": "acme", "storage": {"logTransitionDays": 45, "logExpirationDays": 400}}
    settings = load_settings({"storage.logTransitionDays": "90"}, file_values)
    assert settings.prefix == "acme"
    assert settings.storage.log_transition_days == 90
    assert settings.storage.log_expiration_days == 400


def test_cdk_feature_flags_and_internal_keys_are_not_settings() -> None:
    context = {"@aws-cdk/core:checkSecretUsage": True, "aws:cdk:enable-path-metadata": True, "acknowledged-x": 1}
    assert load_settings(context) == Settings()


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stagee": "dev"}, "unknown setting 'stagee'; allowed here: "),
        ({"storage.retention": "5"}, "unknown setting 'storage.retention'"),
        ({"storage.logTransitionDays": "abc"}, "setting 'storage.logTransitionDays' must be a whole number"),
        ({"storage.logTransitionDays": "5"}, "setting 'storage.logTransitionDays' must be between 30 and 3650"),
        ({"prefix": "Bad_Prefix"}, "setting 'prefix' must be a lower-case name, got 'Bad_Prefix'"),
        ({"removalPolicy": "keep"}, "setting 'removalPolicy' must be one of retain, destroy; got 'keep'"),
        ({"account": "12345"}, "setting 'account' must be a 12-digit account id"),
        ({"storage": "[1]"}, "setting 'storage' must be an object of settings"),
        (
            {"storage.logNoncurrentVersionExpirationDays": "0"},
            "setting 'storage.logNoncurrentVersionExpirationDays' must be between 1 and 3650",
        ),
        (
            {"storage.logTransitionDays": "400", "storage.logExpirationDays": "300"},
            "setting 'storage.logExpirationDays' must be greater than 'storage.logTransitionDays'",
        ),
    ],
)
def test_bad_values_raise_one_line_naming_the_key(context: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(context)
    text = str(raised.value)
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nests arrays or objects too deeply to be read"),
        ("{stage: prod}", "is not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        ("[1]", "must hold a JSON object"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    from app import read_settings

    config = tmp_path / "prod.json"
    config.write_text(text)
    with pytest.raises(SettingsError) as raised:
        read_settings({"configFile": str(config)})
    assert message in str(raised.value)
    assert "setting 'configFile'" in str(raised.value) and str(config) in str(raised.value)
    assert "\n" not in str(raised.value)
