from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest

from comps.core.audio import encode_wav
from gateway.app import create_app
from gateway.settings import GatewaySettings

AUDIO = base64.b64encode(b"RIFF....WAVE").decode()
ANSWER = "Paris is the capital of France. It lies on the Seine river."  # what the test LLM in conftest says
SAMPLES_PER_CHAR = 160  # how long conftest's TTS speaks each character (see spoken_wav there)


def spoken_wav(text: str) -> bytes:
    """What conftest's TTS answers for `text`."""
    return encode_wav(np.full(len(text) * SAMPLES_PER_CHAR, 0.25, np.float32), 16_000)


@asynccontextmanager
async def gateway(stack: Any, chatbot_for: Callable[..., Any], **remote: Any) -> AsyncIterator[httpx.AsyncClient]:
    chatbot = chatbot_for(stack, **remote)
    app = create_app(GatewaySettings(), orchestrator=chatbot)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.example:8888") as client:
            yield client
    await chatbot.aclose()


@pytest.mark.anyio
async def test_default_answer_is_opeas_json_string_with_the_video_path(stack: Any, chatbot_for: Any) -> None:
    async with gateway(stack, chatbot_for) as client:
        response = await client.post("/v1/avatarchatbot", json={"audio": AUDIO, "max_tokens": 64})
    assert response.status_code == 200
    assert response.json() == "/outputs/v1.mp4"
    assert "mp4" in response.text


@pytest.mark.anyio
async def test_detailed_answer_has_transcript_text_gateway_video_url_and_timings(stack: Any, chatbot_for: Any) -> None:
    async with gateway(stack, chatbot_for) as client:
        response = await client.post("/v1/avatarchatbot", json={"audio": AUDIO, "detailed": True})
        body = response.json()
        video = await client.get(body["video_url"])
    assert response.status_code == 200, body
    assert body["transcript"] == "What is the capital of France?"
    assert body["answer"] == ANSWER
    assert body["video_url"] == "http://gw.example:8888/v1/videos/v1"
    assert set(body["timings"]) == {"asr", "llm", "tts", "animation", "total"}
    assert (body["frames"], body["fps"]) == (38, 25.0)
    assert video.status_code == 200 and video.content.startswith(b"\x00\x00\x00\x18ftyp")
    assert video.content.endswith(spoken_wav(body["answer"]))  # the fake render keeps the speech it got


@pytest.mark.anyio
async def test_parameters_are_mapped_faithfully_to_each_stage(stack: Any, chatbot_for: Any) -> None:
    request = {
        "audio": AUDIO, "temperature": 0, "top_p": 0.5, "top_k": 3, "repetition_penalty": 1.2,
        "presence_penalty": 0.4, "frequency_penalty": 0.3, "voice": "joe", "avatar": "anna",
        "inference_mode": "wav2lip_gan", "fps": 20, "language": "en", "seed": 7,
        "animation_options": {"still": True, "seed": 3, "input_roll": [5, -5]},
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    }  # fmt: skip
    async with gateway(stack, chatbot_for) as client:
        response = await client.post("/v1/avatarchatbot", json=request)
    assert response.status_code == 200, response.text
    assert stack.seen["asr"] == [{"audio": AUDIO, "language": "en"}]
    llm = stack.seen["llm"][0]
    assert llm["temperature"] == 0 and llm["top_p"] == 0.5 and llm["top_k"] == 3
    assert llm["repetition_penalty"] == 1.2 and llm["presence_penalty"] == 0.4 and llm["frequency_penalty"] == 0.3
    assert llm["max_tokens"] == 128 and llm["seed"] == 7 and llm["stream"] is False
    assert llm["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert stack.seen["tts"] == [{"text": ANSWER, "voice": "joe"}]
    animation = stack.seen["animation"][0]
    assert (animation["avatar"], animation["inference_mode"], animation["fps"]) == ("anna", "wav2lip_gan", 20)
    assert (animation["still"], animation["seed"], animation["input_roll"]) == (True, 3, [5.0, -5.0])


@pytest.mark.anyio
async def test_text_input_skips_asr_and_default_voice_is_the_services(stack: Any, chatbot_for: Any) -> None:
    async with gateway(stack, chatbot_for) as client:
        response = await client.post("/v1/avatarchatbot", json={"text": "Where is Paris?", "detailed": True})
    body = response.json()
    assert response.status_code == 200, body
    assert stack.seen["asr"] == []
    assert body["transcript"] == "Where is Paris?"
    assert "asr" not in body["timings"]
    assert stack.seen["llm"][0]["messages"][-1] == {"role": "user", "content": "Where is Paris?"}
    assert "voice" not in stack.seen["tts"][0]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("payload", "param"),
    [({}, None), ({"text": "   "}, "text"), ({"audio": AUDIO, "temperature": -1}, "temperature"),
     ({"audio": AUDIO, "fps": 0}, "fps"),
     ({"audio": AUDIO, "animation_options": {"pose_style": 99}}, "animation_options.pose_style"),
     ({"audio": AUDIO, "messages": [{"role": "bot", "content": "x"}]}, None)],
)  # fmt: skip
async def test_bad_input_is_400_in_the_envelope(stack: Any, chatbot_for: Any, payload: Any, param: Any) -> None:
    async with gateway(stack, chatbot_for) as client:
        response = await client.post("/v1/avatarchatbot", json=payload)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert response.json()["error"]["param"] == param
    assert stack.seen["asr"] == [] and stack.seen["llm"] == []


@pytest.mark.anyio
async def test_downstream_4xx_is_the_same_status_naming_the_stage(stack: Any, chatbot_for: Any) -> None:
    stack.fail["tts"] = (422, {"error": {"message": "voice not found", "type": "unprocessable", "param": "voice"}})
    async with gateway(stack, chatbot_for) as client:
        response = await client.post("/v1/avatarchatbot", json={"audio": AUDIO, "voice": "nobody"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("tts: voice not found")
    assert stack.seen["animation"] == []


@pytest.mark.anyio
async def test_silence_is_a_400_saying_no_speech(stack: Any, chatbot_for: Any) -> None:
    stack.apps["asr"].router.routes.clear()

    @stack.apps["asr"].post("/v1/asr")
    async def silent() -> dict[str, str]:
        return {"asr_result": " "}

    async with gateway(stack, chatbot_for) as client:
        response = await client.post("/v1/avatarchatbot", json={"audio": AUDIO})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_speech"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.anyio
async def test_unreachable_stage_is_503_naming_it(stack: Any, chatbot_for: Any) -> None:
    async with gateway(stack, chatbot_for, animation=("127.0.0.1", _closed_port())) as client:
        response = await client.post("/v1/avatarchatbot", json={"audio": AUDIO})
    assert response.status_code == 503
    assert response.json()["error"]["message"].startswith("animation: unreachable")


def _events(text: str) -> list[tuple[str, Any]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = lines["data"]
        out.append((lines.get("event", "message"), data if data == "[DONE]" else json.loads(data)))
    return out


@pytest.mark.anyio
async def test_stream_sends_transcript_the_video_deltas_and_done(stack: Any, chatbot_for: Any) -> None:
    async with gateway(stack, chatbot_for) as client:
        response = await client.post("/v1/avatarchatbot/stream", json={"audio": AUDIO, "temperature": 0})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["video", "transcript"] and events[1][1] == {"text": "What is the capital of France?"}
    assert kinds[-2:] == ["done", "message"] and events[-1][1] == "[DONE]"
    assert set(kinds[2:-2]) == {"answer"}  # one continuous video: no per-sentence segments
    video = events[0][1]
    assert video == {"id": "v1", "url": "http://gw.example:8888/v1/videos/v1", "content_type": "video/mp4"}
    deltas = "".join(data["delta"] for kind, data in events if kind == "answer")
    assert deltas.strip() == ANSWER
    # TTS spoke the answer clause by clause (the first as soon as it was complete), and the one lip-sync
    # stream got all their speech, in order.
    spoken = [body["text"] for body in stack.seen["tts"]]
    assert spoken == ["Paris is the capital of France.", "It lies on the Seine river."]
    assert stack.seen["animation"] == [{"type": "start", "video": False}]
    assert len(stack.speech) == 1 and len(stack.speech[0]) == 2 * SAMPLES_PER_CHAR * sum(map(len, spoken))
    assert stack.seen["llm"][0]["stream"] is True
    done = events[-2][1]
    assert done["answer"].strip() == deltas.strip() and done["video_url"] == video["url"]
    assert done["duration_s"] == len(stack.speech[0]) / 2 / 16_000
    assert {"asr", "llm", "tts", "animation", "total"} <= set(done["timings"])


@pytest.mark.anyio
async def test_markdown_and_emoji_are_shown_but_not_spoken(stack: Any, chatbot_for: Any) -> None:
    flag = "\U0001f1eb\U0001f1f7"
    stack.answer = f"**Paris** is the capital of France {flag}. Try `curl` or:\n\n- The Louvre\n- The Seine"
    async with gateway(stack, chatbot_for) as client:
        response = await client.post("/v1/avatarchatbot/stream", json={"text": "Where?"})
    events = _events(response.text)
    assert "".join(d["delta"] for kind, d in events if kind == "answer").strip() == stack.answer
    # The first clause is cut after six words, before the flag: TTS pauses between chunks anyway.
    spoken = [body["text"] for body in stack.seen["tts"]]
    assert " ".join(spoken) == "Paris is the capital of France Try curl or: The Louvre. The Seine."
    assert spoken[0] == "Paris is the capital of France"


@pytest.mark.anyio
async def test_stream_failure_after_start_is_an_in_band_error_event(stack: Any, chatbot_for: Any) -> None:
    stack.fail["animation"] = (500, {"error": {"message": "render crashed", "type": "internal"}})
    async with gateway(stack, chatbot_for) as client:
        response = await client.post("/v1/avatarchatbot/stream", json={"text": "Where is Paris?"})
    events = _events(response.text)
    assert response.status_code == 200
    assert events[0] == ("transcript", {"text": "Where is Paris?"})
    kind, data = events[-1]
    assert kind == "error"
    assert data["error"]["type"] == "upstream"
    assert data["error"]["message"].startswith("animation: render crashed")


@pytest.mark.anyio
async def test_ready_only_when_every_service_behind_is(stack: Any, chatbot_for: Any) -> None:
    async with gateway(stack, chatbot_for, llm=("127.0.0.1", 9)) as client:  # nothing listens on port 9
        stack.not_ready.add("animation")
        refused = await client.get("/ready")
        assert (await client.get("/health")).status_code == 200  # alive all the same
    error = envelope_of(refused, 503)
    assert error["code"] == "dependency_not_ready"
    message = error["message"]
    assert "animation: answered 503" in message and "llm: unreachable at http://127.0.0.1:9" in message
    assert "asr" not in message and "tts" not in message

    stack.not_ready.clear()
    async with gateway(stack, chatbot_for) as client:
        assert (await client.get("/ready")).json() == {"status": "ready"}


def envelope_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


@pytest.mark.anyio
async def test_a_full_line_is_an_http_503_for_whole_and_streamed_answers(stack: Any, chatbot_for: Any) -> None:
    chatbot = chatbot_for(stack)
    app = create_app(GatewaySettings(max_concurrency=1, max_queue=0), orchestrator=chatbot)
    async with app.router.lifespan_context(app), app.state.admission.slot():  # the one place is taken
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            whole = await client.post("/v1/avatarchatbot", json={"text": "Hi?"})
            streamed = await client.post("/v1/avatarchatbot/stream", json={"text": "Hi?"})
    await chatbot.aclose()
    for response in (whole, streamed):
        assert envelope_of(response, 503)["code"] == "queue_full"
        assert response.headers["retry-after"] == "5"
    assert stack.seen["llm"] == []


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/v1/avatarchatbot", "/v1/avatarchatbot/stream"])
async def test_a_question_over_the_limits_is_refused_before_any_stage(stack: Any, chatbot_for: Any, path: str) -> None:
    chatbot = chatbot_for(stack)
    app = create_app(GatewaySettings(max_text_chars=20, max_audio_bytes=1024), orchestrator=chatbot)
    spoken = base64.b64encode(encode_wav(np.zeros(16_000, np.float32), 16_000)).decode()  # 1 s: 32 KB
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            long_text = await client.post(path, json={"text": "x" * 21})
            long_audio = await client.post(path, json={"audio": spoken})
            fits = await client.post(path, json={"text": "x" * 20})
    await chatbot.aclose()
    text_error, audio_error = long_text.json()["error"], long_audio.json()["error"]
    assert long_text.status_code == 400 and (text_error["code"], text_error["param"]) == ("text_too_long", "text")
    assert "21 characters, over the maximum of 20" in text_error["message"]
    assert long_audio.status_code == 413
    assert (audio_error["code"], audio_error["param"], audio_error["type"]) == (
        "audio_too_large",
        "audio",
        "payload_too_large",
    )
    assert fits.status_code == 200
    assert stack.seen["asr"] == [] and [m["messages"][-1]["content"] for m in stack.seen["llm"]] == ["x" * 20]
