from __future__ import annotations

import pytest

from comps.core.settings import SettingsError, load_settings
from gateway.app import remote_chatbot
from gateway.settings import GatewaySettings

OPEA = [
    "MEGA_SERVICE_PORT",
    "WHISPER_SERVER_HOST_IP",
    "WHISPER_SERVER_PORT",
    "LLM_SERVER_HOST_IP",
    "LLM_SERVER_PORT",
    "SPEECHT5_SERVER_HOST_IP",
    "SPEECHT5_SERVER_PORT",
    "ANIMATION_SERVICE_HOST_IP",
    "ANIMATION_SERVICE_PORT",
]


def test_defaults_apply_when_opea_variables_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OPEA:
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(GatewaySettings)
    assert settings.port == 8888
    assert [
        (s, getattr(settings, f"{s}_host"), getattr(settings, f"{s}_port")) for s in ("asr", "llm", "tts", "animation")
    ] == [
        ("asr", "localhost", 7066),
        ("llm", "localhost", 9000),
        ("tts", "localhost", 7055),
        ("animation", "localhost", 9066),
    ]
    assert settings.max_tokens == 128


def test_opea_variables_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    values = dict(zip(OPEA, ["8899", "asr-svc", "1", "llm-svc", "2", "tts-svc", "3", "anim-svc", "4"], strict=True))
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LLM_MODEL_ID", "Intel/neural-chat-7b-v3-3")
    settings = load_settings(GatewaySettings)
    chatbot = remote_chatbot(settings)
    assert settings.port == 8899
    assert {s: n.url for s, n in chatbot.nodes.items()} == {
        "asr": "http://asr-svc:1/v1/asr",
        "llm": "http://llm-svc:2/v1/chat/completions",
        "tts": "http://tts-svc:3/v1/tts",
        "animation": "http://anim-svc:4/v1/animation",
    }
    assert settings.llm_model == "Intel/neural-chat-7b-v3-3"


def test_our_variables_win_over_opeas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ASR_PORT", "17066")
    monkeypatch.setenv("WHISPER_SERVER_PORT", "27066")
    assert load_settings(GatewaySettings).asr_port == 17066


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_RETRIES", "many")
    with pytest.raises(SettingsError, match="GATEWAY_RETRIES"):
        load_settings(GatewaySettings)
