from __future__ import annotations

import pytest
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from comps.core.settings import EnvBool, ServiceSettings, SettingsError, env_alias, load_settings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")

    port: int = Field(default=7066, ge=1, le=65535, validation_alias=env_alias("DEMO_PORT", "WHISPER_SERVER_PORT"))
    enhance: EnvBool = False


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_PORT", raising=False)
    settings = load_settings(DemoSettings)
    assert settings.port == 7066
    assert settings.enhance is False


def test_upstream_alias_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_SERVER_PORT", "7100")
    assert load_settings(DemoSettings).port == 7100


def test_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_ENHANCE", "yes")
    monkeypatch.setenv("DEMO_LOG_LEVEL", "DEBUG")
    settings = load_settings(DemoSettings)
    assert settings.enhance is True and settings.log_level == "DEBUG"


@pytest.mark.parametrize("value", ["maybe", "2", "tru"])
def test_bad_bool_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DEMO_ENHANCE", value)
    with pytest.raises(SettingsError, match="DEMO_ENHANCE"):
        load_settings(DemoSettings)


def test_bad_port_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISPER_SERVER_PORT", "99999")
    with pytest.raises(SettingsError, match="WHISPER_SERVER_PORT|DEMO_PORT"):
        load_settings(DemoSettings)


def test_bad_enum_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_DEVICE", "tpu")
    with pytest.raises(SettingsError, match="DEMO_DEVICE"):
        load_settings(DemoSettings)


class AliasedSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ANIM_")

    mode: int = Field(default=1, validation_alias=env_alias("ANIM_MODE", "INFERENCE_MODE"))


def test_bad_aliased_value_names_the_variable_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERENCE_MODE", "fast")
    with pytest.raises(SettingsError) as err:
        load_settings(AliasedSettings)
    assert "ANIM_MODE / INFERENCE_MODE:" in str(err.value) and "ANIM_INFERENCE_MODE" not in str(err.value)


def test_the_api_key_and_cors_origins_are_read_unprefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATARCHAT_API_KEY", " s3cret-key ")
    monkeypatch.setenv("AVATARCHAT_CORS_ORIGINS", "https://Chat.Example.org/, http://localhost:7861,https://a.b:443")
    settings = load_settings(DemoSettings)
    assert settings.service_api_key is not None and settings.service_api_key.get_secret_value() == "s3cret-key"
    assert settings.cors_origins == ("https://chat.example.org", "http://localhost:7861", "https://a.b")


def test_an_empty_key_is_no_key_and_no_origins_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATARCHAT_API_KEY", "")  # compose's ${AVATARCHAT_API_KEY:-}
    monkeypatch.setenv("AVATARCHAT_CORS_ORIGINS", " ")
    settings = load_settings(DemoSettings)
    assert settings.service_api_key is None and settings.cors_origins == ()
    monkeypatch.delenv("AVATARCHAT_API_KEY")
    monkeypatch.delenv("AVATARCHAT_CORS_ORIGINS")
    assert load_settings(DemoSettings).service_api_key is None and load_settings(DemoSettings).cors_origins == ()


def test_a_bad_key_names_the_variable_and_never_shows_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATARCHAT_API_KEY", "my key with spaces")
    with pytest.raises(SettingsError) as err:
        load_settings(DemoSettings)
    assert "AVATARCHAT_API_KEY" in str(err.value) and "(got a hidden value)" in str(err.value)
    assert "my key" not in str(err.value)


@pytest.mark.parametrize(
    "origins",
    ["*, https://a.example", "chat.example.org", "https://a.example/app", "ftp://a.example", "https://a.example?x=1",
     "https://user@a.example", "https://a.example:99999"],
)  # fmt: skip
def test_bad_cors_origins_name_the_variable(monkeypatch: pytest.MonkeyPatch, origins: str) -> None:
    monkeypatch.setenv("AVATARCHAT_CORS_ORIGINS", origins)
    with pytest.raises(SettingsError, match="AVATARCHAT_CORS_ORIGINS"):
        load_settings(DemoSettings)


def test_a_star_alone_allows_every_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATARCHAT_CORS_ORIGINS", "*")
    assert load_settings(DemoSettings).cors_origins == ("*",)
