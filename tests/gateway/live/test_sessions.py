"""A live session's answers use the gateway's request defaults: the sampling of an HTTP request that sets none."""

from __future__ import annotations

from typing import Any

from gateway.live.sessions import LiveSessions
from gateway.schemas import AvatarChatRequest
from gateway.settings import GatewaySettings


def test_live_answers_sample_like_an_http_request_that_sets_nothing() -> None:
    settings = GatewaySettings(max_tokens=40, system_prompt="Be brief.", sentence_min_chars=12)
    sessions = LiveSessions(settings=settings, chatbot=Any, vad=None, group=Any)  # type: ignore[arg-type]
    conversation = sessions._conversation(Any, print, "default", "joe")  # type: ignore[arg-type]
    http = AvatarChatRequest(text="Hi?").parameters(max_tokens=40, model=None, system_prompt="Be brief.", min_chars=12)
    assert conversation.params.sampling == http.sampling  # near-greedy (temperature 0.01), OPEA's defaults
    assert conversation.params.system_prompt == "Be brief." and conversation.params.voice == "joe"
    assert conversation.params.avatar == "default" and conversation.lipsync_options == {"avatar": "default"}


def test_ice_servers_are_only_the_configured_ones() -> None:
    from pydantic import SecretStr

    quiet = LiveSessions(settings=GatewaySettings(), chatbot=Any, vad=None, group=Any)  # type: ignore[arg-type]
    assert quiet._ice_servers() == []  # not aiortc's default public STUN server: a closed network has none
    settings = GatewaySettings(
        live_ice_servers=["stun:stun.example.org:3478", "turn:turn.example.org:3478"],
        live_turn_username="avatar", live_turn_credential=SecretStr("s3cret"),
    )  # fmt: skip
    stun, turn = LiveSessions(settings=settings, chatbot=Any, vad=None, group=Any)._ice_servers()  # type: ignore[arg-type]
    assert stun.urls == "stun:stun.example.org:3478" and stun.username is None
    assert (turn.urls, turn.username, turn.credential) == ("turn:turn.example.org:3478", "avatar", "s3cret")


def test_the_python_client_asks_no_public_stun_server() -> None:
    from gateway.live.client import LiveClient

    client = LiveClient("http://gateway.test")
    assert client.pc._RTCPeerConnection__configuration.iceServers == []  # aiortc keeps it private
