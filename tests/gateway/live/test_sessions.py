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
