"""The default system prompt, on the embedded SmolLM2-135M-Instruct: simple questions get right, short answers.

With the first build's persona prompt ("You are Ava, a friendly talking avatar ...") the same model
answered the capital question in broken French. Sampling is what the gateway sends by default.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from comps.llm.app import create_app
from comps.llm.settings import LlmSettings
from gateway.schemas import AvatarChatRequest

QUESTIONS = {
    "What is the capital of France?": "paris",
    "How many legs does a spider have?": "eight|8",
    "What color is the sky on a clear day?": "blue",
}


async def answers(settings: LlmSettings) -> dict[str, str]:
    defaults = AvatarChatRequest.model_fields
    sampling = {name: defaults[name].default for name in ("temperature", "top_p", "top_k", "repetition_penalty")}
    app = create_app(settings)
    found = {}
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for question in QUESTIONS:
            body = {"messages": [{"role": "user", "content": question}], "max_tokens": 40, **sampling}
            response = await client.post("/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text
            found[question] = response.json()["choices"][0]["message"]["content"]
    return found


@pytest.fixture(scope="module")
def default_answers(embedded_model_cache: Path) -> dict[str, str]:
    settings = LlmSettings(model_cache_dir=embedded_model_cache, device="cpu", offline=True, max_concurrency=1)
    assert settings.model_id == "embedded:smollm2-135m-instruct"  # the default, nothing set
    return anyio.run(answers, settings)


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_the_default_prompt_gets_a_right_short_answer(default_answers: dict[str, str], question: str) -> None:
    answer = default_answers[question]
    assert any(word in answer.lower() for word in QUESTIONS[question].split("|")), answer
    assert answer.count(".") <= 3 and len(answer) < 200, answer  # one or two sentences, spoken
