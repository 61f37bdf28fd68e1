"""The gateway is ready only when the four services behind it are: each one's `/ready`, asked live."""

from __future__ import annotations

import anyio
import httpx

from megaservice.avatarchatbot import AvatarChatbot
from megaservice.service import MicroService

# Per service; the checks run at once, so `/ready` answers within about this long.
CHECK_TIMEOUT_S = 2.0


async def _check(client: httpx.AsyncClient, node: MicroService) -> str | None:
    """None when the service answers its `/ready` (or `/health`, for servers without one: vLLM) with 200."""
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            # Probes are open on our services; the key goes along for servers that guard everything.
            response = await client.get(node.base_url + "/ready", headers=node.headers)
            if response.status_code == 404:
                response = await client.get(node.base_url + "/health", headers=node.headers)
    except TimeoutError:
        return f"no answer in {CHECK_TIMEOUT_S:g} s"
    except httpx.HTTPError as exc:
        return f"unreachable at {node.base_url} ({type(exc).__name__})"
    return None if response.status_code == 200 else f"answered {response.status_code}"


async def downstream_not_ready(chatbot: AvatarChatbot) -> str | None:
    """Why the gateway cannot answer now (`asr: answered 503; llm: unreachable ...`), or None."""
    problems: dict[str, str | None] = {}

    async def check(stage: str, node: MicroService) -> None:
        problems[stage] = await _check(chatbot.client, node)

    async with anyio.create_task_group() as tasks:
        for stage, node in chatbot.nodes.items():
            tasks.start_soon(check, stage, node)
    found = [f"{stage}: {problem}" for stage in chatbot.nodes if (problem := problems.get(stage)) is not None]
    return "services not ready: " + "; ".join(found) if found else None
