"""The AvatarChatbot graph's typed adapters: faithful parameter mapping and the empty cases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from comps.core.contracts import AsrResponse, SadTalkerOptions, TtsResponse
from comps.core.errors import InvalidRequest, UpstreamError
from comps.core.sampling import SamplingParameters
from megaservice.avatarchatbot import (
    DEFAULT_MAX_TOKENS,
    AvatarChatbot,
    AvatarParameters,
    animation_request,
    chat_request,
    sentences,
    speech_request,
    stage_node,
)
from megaservice.chat import ChatAnswer, ChatChoice, ChatMessage, ChatResponse, decode_chunk
from megaservice.orchestrator import ScheduleContext


def ctx(**params: object) -> ScheduleContext:
    return ScheduleContext(None, AvatarParameters(**params))  # type: ignore[arg-type]


def test_chat_request_keeps_every_value_as_given() -> None:
    history = (ChatMessage(role="user", content="hi"), ChatMessage(role="assistant", content="hello"))
    request = chat_request(
        AsrResponse(asr_result=" What time is it? "),
        ctx(sampling=SamplingParameters(max_tokens=64, temperature=0.0, top_p=0.9, top_k=5, repetition_penalty=1.3,
                                        presence_penalty=0.2, frequency_penalty=0.1, seed=3, stop=["\n"]),
            system_prompt="Be brief.", history=history, model="m"),
    )  # fmt: skip
    body = request.model_dump(exclude_none=True)
    assert body["temperature"] == 0.0 and body["repetition_penalty"] == 1.3 and body["presence_penalty"] == 0.2
    assert body["max_tokens"] == 64 and body["stop"] == ["\n"]
    assert (body["top_p"], body["top_k"], body["frequency_penalty"], body["model"], body["seed"]) == (
        0.9,
        5,
        0.1,
        "m",
        3,
    )
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][-1]["content"] == "What time is it?"
    assert body["stream"] is False


def test_unset_parameters_are_left_to_the_server() -> None:
    body = chat_request(AsrResponse(asr_result="hi"), ctx()).model_dump(exclude_none=True)
    assert set(body) == {"messages", "max_tokens", "stream"}
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS == 128
    own = chat_request(AsrResponse(asr_result="hi"), ctx(sampling=SamplingParameters(temperature=0.5)))
    assert set(own.model_dump(exclude_none=True)) == {"messages", "temperature", "stream"}


def test_chat_request_refuses_what_the_llm_would_refuse() -> None:
    # The client side of the contract has the LLM service's bounds (both come from SamplingParameters).
    too_many = SamplingParameters.model_construct(repetition_penalty=11.0)
    with pytest.raises(ValidationError, match="repetition_penalty"):
        chat_request(AsrResponse(asr_result="hi"), ctx(sampling=too_many))


def test_silence_is_a_no_speech_400() -> None:
    with pytest.raises(InvalidRequest) as caught:
        chat_request(AsrResponse(asr_result="  "), ctx())
    assert caught.value.code == "no_speech" and caught.value.status == 400


def test_voice_goes_to_tts_and_avatar_mode_fps_to_animation() -> None:
    answer = ChatResponse(choices=[ChatChoice(message=ChatAnswer(content="Noon."))])
    assert speech_request(answer, ctx(voice="joe")).model_dump() == {"text": "Noon.", "voice": "joe"}
    video = animation_request(
        TtsResponse(tts_result="UklGRg=="), ctx(avatar="anna", inference_mode="wav2lip_gan", fps=20)
    )
    assert video.model_dump(exclude_none=True) == {
        "byte_str": "UklGRg==",
        "avatar": "anna",
        "inference_mode": "wav2lip_gan",
        "fps": 20,
    }
    options = SadTalkerOptions(still=True, pose_style=3, input_yaw=[10, -10])
    talking = animation_request(
        TtsResponse(tts_result="UklGRg=="), ctx(inference_mode="sadtalker", animation_options=options)
    )
    assert talking.model_dump(exclude_none=True) == {
        "byte_str": "UklGRg==",
        "inference_mode": "sadtalker",
        "still": True,
        "pose_style": 3,
        "input_yaw": [10.0, -10.0],
    }


def test_an_empty_answer_is_a_502_naming_the_llm() -> None:
    with pytest.raises(UpstreamError, match="^llm: the model returned an empty answer"):
        speech_request(ChatResponse(choices=[ChatChoice(message=ChatAnswer(content=" "))]), ctx())


async def _tokens(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


@pytest.mark.anyio
async def test_sentences_are_released_whole_and_nothing_is_lost() -> None:
    tokens = _tokens("It is ", "noon in ", "Paris. ", "The sun ", "is out", ".")
    out = [s async for s in sentences(tokens, ctx(sentence_min_chars=4))]
    assert out == ["It is noon in Paris.", "The sun is out."]


@pytest.mark.anyio
async def test_a_stream_without_text_is_an_empty_answer() -> None:
    with pytest.raises(UpstreamError, match="empty answer"):
        _ = [s async for s in sentences(_tokens(), ctx())]


def test_chunk_decoding_reads_the_delta_text() -> None:
    assert decode_chunk({"choices": [{"delta": {"content": "Hi"}}]}) == "Hi"
    assert decode_chunk({"choices": [{"delta": {"role": "assistant"}}]}) is None
    assert decode_chunk({"choices": [], "usage": {"total_tokens": 3}}) is None


def test_every_stage_is_required() -> None:
    nodes = {s: stage_node(s, ("127.0.0.1", 1), timeout_s=1, retries=0) for s in ("asr", "llm", "tts")}
    with pytest.raises(ValueError, match="animation"):
        AvatarChatbot(nodes)
