"""The AvatarChatbot graph: asr -> llm -> tts -> animation, whole or streamed sentence by sentence."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel
from starlette.types import ASGIApp

from comps.core.contracts import (
    AnimationRequest,
    AnimationResponse,
    AsrRequest,
    AsrResponse,
    SadTalkerOptions,
    TtsRequest,
    TtsResponse,
)
from comps.core.errors import InvalidRequest, UpstreamError
from comps.core.sampling import SamplingParameters
from comps.core.speech_text import SpeechNormalizer
from comps.core.text import FIRST_CHUNK_WORDS, SentenceAggregator
from megaservice.calls import build_client
from megaservice.chat import ChatMessage, ChatRequest, ChatResponse, decode_chunk
from megaservice.orchestrator import ScheduleContext, ServiceOrchestrator
from megaservice.progress import ProgressObserver
from megaservice.realtime import StreamedAnswer, stream_answer
from megaservice.records import Observer, RuntimeGraph
from megaservice.service import MicroService, ServiceType

STAGES = ("asr", "llm", "tts", "animation")

# stage -> (endpoint, type, request contract, response contract); the OPEA endpoints.
_CONTRACTS: dict[str, tuple[str, ServiceType, type[BaseModel], type[BaseModel]]] = {
    "asr": ("/v1/asr", ServiceType.ASR, AsrRequest, AsrResponse),
    "llm": ("/v1/chat/completions", ServiceType.LLM, ChatRequest, ChatResponse),
    "tts": ("/v1/tts", ServiceType.TTS, TtsRequest, TtsResponse),
    "animation": ("/v1/animation", ServiceType.ANIMATION, AnimationRequest, AnimationResponse),
}

DEFAULT_MAX_TOKENS = 128
"""About 90 spoken words (~35 s of video): long enough for an answer, short enough that lip-sync stays interactive,
and well inside the context of any chat model we serve (the tiny test model included)."""


def stage_node(stage: str, target: tuple[str, int] | ASGIApp, *, timeout_s: float, retries: int) -> MicroService:
    """The node of one stage: remote at `(host, port)`, or an in-process ASGI app."""
    endpoint, kind, request, response = _CONTRACTS[stage]
    common: dict[str, Any] = dict(
        name=stage, endpoint=endpoint, service_type=kind, request_model=request, response_model=response,
        timeout_s=timeout_s, retries=retries,
    )  # fmt: skip
    if isinstance(target, tuple):
        host, port = target
        return MicroService(host=host, port=port, **common)
    return MicroService(app=target, use_remote_service=False, **common)


@dataclass(frozen=True, kw_only=True)
class AvatarParameters:
    """Everything a request sets, mapped as given: temperature 0 stays 0; unset fields use the server default.

    `sampling` goes to the LLM as it is; the default asks for DEFAULT_MAX_TOKENS and leaves the rest unset.
    """

    sampling: SamplingParameters = field(default_factory=lambda: SamplingParameters(max_tokens=DEFAULT_MAX_TOKENS))
    model: str | None = None
    system_prompt: str | None = None
    history: tuple[ChatMessage, ...] = ()
    language: str | None = None
    voice: str | None = None
    avatar: str | None = None
    inference_mode: str | None = None
    fps: float | None = None
    animation_options: SadTalkerOptions | None = None
    sentence_min_chars: int = 24
    sentence_max_chars: int = 300


def _parameters(ctx: ScheduleContext) -> AvatarParameters:
    params = ctx.llm_parameters
    assert isinstance(params, AvatarParameters), "AvatarChatbot schedules pass AvatarParameters"
    return params


def chat_request(asr: AsrResponse, ctx: ScheduleContext, *, stream: bool = False) -> ChatRequest:
    """Edge asr -> llm: the transcript becomes the user message (after the system prompt and history)."""
    question = asr.asr_result.strip()
    if not question:
        raise InvalidRequest("asr: no speech was recognized in the audio", code="no_speech", param="audio")
    p = _parameters(ctx)
    system = [ChatMessage(role="system", content=p.system_prompt)] if p.system_prompt else []
    return ChatRequest(
        messages=[*system, *p.history, ChatMessage(role="user", content=question)],
        model=p.model,
        stream=stream,
        **p.sampling.model_dump(),
    )


def chat_stream_request(asr: AsrResponse, ctx: ScheduleContext) -> ChatRequest:
    """Edge asr -> llm on the streaming graph."""
    return chat_request(asr, ctx, stream=True)


def speech_request(chat: ChatResponse, ctx: ScheduleContext) -> TtsRequest:
    """Edge llm -> tts: the answer text and the voice."""
    text = chat.text.strip()
    if not text:
        raise UpstreamError("llm: the model returned an empty answer", code="empty_answer")
    return TtsRequest(text=text, voice=_parameters(ctx).voice)


def sentence_speech_request(sentence: str, ctx: ScheduleContext) -> TtsRequest:
    """One sentence of the streamed answer -> tts."""
    return TtsRequest(text=sentence, voice=_parameters(ctx).voice)


def animation_request(tts: TtsResponse, ctx: ScheduleContext) -> AnimationRequest:
    """Edge tts -> animation: the speech plus the avatar, inference mode, fps and SadTalker options."""
    p = _parameters(ctx)
    options = p.animation_options.model_dump(exclude_none=True) if p.animation_options is not None else {}
    return AnimationRequest(
        byte_str=tts.tts_result, avatar=p.avatar, inference_mode=p.inference_mode, fps=p.fps, **options
    )


async def sentences(tokens: AsyncIterator[Any], ctx: ScheduleContext) -> AsyncIterator[str]:
    """Regroup llm tokens -> speakable chunks: a short first clause, then whole sentences, each as soon as complete.

    Markdown, list markers, code and emoji are taken out of what is spoken (the shown text keeps them).
    """
    p = _parameters(ctx)
    aggregator = SentenceAggregator(
        min_chars=p.sentence_min_chars, max_chars=p.sentence_max_chars, first_chunk_words=FIRST_CHUNK_WORDS
    )
    normalizer = SpeechNormalizer()
    produced = False

    def spoken(chunks: list[str]) -> list[str]:
        return [said for chunk in chunks if (said := normalizer.push(chunk))]

    async for token in tokens:
        for chunk in spoken(aggregator.push(str(token))):
            produced = True
            yield chunk
    for chunk in spoken(aggregator.flush()):
        produced = True
        yield chunk
    if not produced:
        raise UpstreamError("llm: the model returned an empty answer (nothing to speak)", code="empty_answer")


@dataclass(frozen=True)
class Answer:
    """One whole answer: what was heard, what was said, the video, and the graph that ran."""

    transcript: str
    text: str
    video: AnimationResponse
    runtime_graph: RuntimeGraph


class AvatarChatbot:
    """Both AvatarChatbot graphs on one shared client.

    `whole` runs each stage once on the complete answer (OPEA's flow). `spoken` is the real-time
    answer: the LLM's words go to TTS as they are written (a short first clause, then sentences),
    `stream_concurrency` chunks at a time, and their speech feeds one lip-sync stream (see
    `megaservice.realtime`) whose video plays while it is made.
    """

    def __init__(
        self,
        nodes: Mapping[str, MicroService],
        *,
        client: httpx.AsyncClient | None = None,
        stream_concurrency: int = 2,
        connect_timeout_s: float = 5.0,
    ) -> None:
        """Build both graphs from the four stage nodes (see `stage_node`)."""
        missing = [stage for stage in STAGES if stage not in nodes]
        if missing:
            raise ValueError(f"missing stage nodes: {missing}")
        self.nodes = dict(nodes)
        self._owns_client = client is None
        self.client = client or build_client(list(nodes.values()), connect_timeout_s=connect_timeout_s)
        self.connect_timeout_s = connect_timeout_s
        asr, llm, tts, animation = (self.nodes[stage] for stage in STAGES)

        self.whole = ServiceOrchestrator(client=self.client)
        for node in (asr, llm, tts, animation):
            self.whole.add(node)
        self.whole.flow_to(asr, llm, adapter=chat_request)
        self.whole.flow_to(llm, tts, adapter=speech_request)
        self.whole.flow_to(tts, animation, adapter=animation_request)

        self.spoken = ServiceOrchestrator(client=self.client)
        for node in (asr, dataclasses.replace(llm, stream_decoder=decode_chunk), tts):
            self.spoken.add(node)
        self.spoken.flow_to(asr, llm, adapter=chat_stream_request)
        self.spoken.flow_to(
            llm, tts, adapter=sentence_speech_request, stream=True, regroup=sentences, concurrency=stream_concurrency
        )

    async def aclose(self) -> None:
        """Close the shared client if it was built here."""
        if self._owns_client:
            await self.client.aclose()

    @staticmethod
    def _inputs(audio: str | None, text: str | None, params: AvatarParameters) -> tuple[Any, dict[str, Any]]:
        if text is not None:
            return None, {"asr": AsrResponse(asr_result=text)}
        if audio is None:
            raise InvalidRequest("give either audio (base64) or text", param="audio", code="missing_input")
        return AsrRequest(audio=audio, language=params.language), {}

    async def answer(
        self, *, audio: str | None, text: str | None, params: AvatarParameters, observer: Observer | None = None
    ) -> Answer:
        """Run the whole graph once; with `text`, ASR is skipped."""
        inputs, provided = self._inputs(audio, text, params)
        results, graph = await self.whole.schedule(inputs, params, provided=provided, observer=observer)
        return Answer(results["asr"].asr_result, results["llm"].text, results["animation"], graph)

    async def stream(
        self, *, audio: str | None, text: str | None, params: AvatarParameters, observer: ProgressObserver
    ) -> StreamedAnswer:
        """The real-time answer; `observer` sees the video id first, then the transcript (when heard) and each delta."""
        inputs, provided = self._inputs(audio, text, params)
        options = {"avatar": params.avatar, "inference_mode": params.inference_mode, "fps": params.fps}
        return await stream_answer(
            self.spoken,
            self.nodes["animation"],
            inputs=inputs,
            params=params,
            provided=provided,
            lipsync_options={key: value for key, value in options.items() if value is not None},
            observer=observer,
            connect_timeout_s=self.connect_timeout_s,
        )
