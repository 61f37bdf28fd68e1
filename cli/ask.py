"""`avatarchat ask`: one question in, one talking video out, with progress per stage on stderr.

In-process by default (the four service apps mounted on one client, no sockets, models loaded
here), or against a running gateway with `--gateway URL`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import importlib
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from comps.core.auth import bearer
from comps.core.errors import ServiceError
from comps.core.sampling import SamplingParameters
from comps.core.settings import load_settings
from comps.core.upstream import status_error, transport_error
from gateway.settings import GatewaySettings
from megaservice.avatarchatbot import STAGES, AvatarChatbot, AvatarParameters, stage_node
from megaservice.records import NodeEvent


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Progress:
    """Prints each stage as it starts and finishes."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def __call__(self, event: NodeEvent) -> None:
        if event.kind == "started":
            self.started[event.node] = time.perf_counter()
            _say(f"[{event.node}] working…")
        elif event.kind == "finished":
            seconds = time.perf_counter() - self.started.get(event.node, time.perf_counter())
            _say(f"[{event.node}] done in {seconds:.1f} s{_describe(event.node, event.value)}")
        elif event.kind == "failed" and event.error is not None:
            _say(f"[{event.node}] failed: {event.error.message}")


def _describe(stage: str, value: Any) -> str:
    if stage == "asr":
        return f': heard "{_short(value.asr_result)}"'
    if stage == "llm":
        return f': "{_short(value.text)}"'
    if stage == "animation":
        return f": {value.frames} frames" if value.frames else ""
    return ""


def _question(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if (args.audio is None) == (args.text is None):
        raise SystemExit("avatarchat ask: give a spoken question (an audio file) or --text, not both")
    if args.audio is not None:
        if not args.audio.is_file():
            raise SystemExit(f"avatarchat ask: no such audio file: {args.audio}")
        return base64.b64encode(args.audio.read_bytes()).decode("ascii"), None
    return None, str(args.text)


async def _check(stage: str, response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise status_error(stage, response, await response.aread(), credential="AVATARCHAT_API_KEY")
    return response


def _avatar_file(image: Path | None) -> tuple[str, bytes] | None:
    if image is None:
        return None
    if not image.is_file():
        raise SystemExit(f"avatarchat ask: no such avatar file: {image}")
    return image.name, image.read_bytes()


async def _upload_avatar(client: httpx.AsyncClient, base_url: str, image: tuple[str, bytes], stage: str) -> str:
    response = await _check(stage, await client.post(f"{base_url}/v1/avatars", files={"file": image}))
    avatar_id: str = response.json()["id"]
    _say(f"[avatar] {image[0]} -> {avatar_id}")
    return avatar_id


async def _download(client: httpx.AsyncClient, url: str, output: Path, stage: str) -> None:
    async with client.stream("GET", url) as response:
        await _check(stage, response)
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("wb") as out:  # noqa: ASYNC230 - a local file, written chunk by chunk
            async for chunk in response.aiter_bytes():
                out.write(chunk)
    _say(f"wrote {output}")


async def ask_in_process(
    args: argparse.Namespace, audio: str | None, text: str | None, image: tuple[str, bytes] | None
) -> None:
    """Load the needed services here and run the pipeline once through ASGI (ASR skipped for typed text)."""
    settings = load_settings(GatewaySettings)
    needed = [stage for stage in STAGES if stage != "asr" or audio is not None]
    async with AsyncExitStack() as stack:
        apps: dict[str, FastAPI] = {}
        for stage in needed:
            _say(f"[{stage}] loading models…")
            # By name, when needed: comps.animation.app imports torch, and importing cli.ask stays cheap.
            app: FastAPI = importlib.import_module(f"comps.{stage}.app").create_app()
            await stack.enter_async_context(app.router.lifespan_context(app))
            apps[stage] = app
        # Typed text never reaches ASR; its node stays a (never called) remote address.
        # The apps here read AVATARCHAT_API_KEY as the services do, so every node sends it.
        nodes = {
            stage: dataclasses.replace(
                stage_node(
                    stage,
                    apps.get(stage) or (settings.asr_host, settings.asr_port),
                    timeout_s=getattr(settings, f"{stage}_timeout_s"),
                    retries=0,
                ),
                api_key=settings.service_api_key,
            )
            for stage in STAGES
        }
        chatbot = AvatarChatbot(nodes)
        stack.push_async_callback(chatbot.aclose)
        animation_url = nodes["animation"].base_url
        avatar = None
        if image is not None:
            avatar = await _upload_avatar(chatbot.client, animation_url, image, "animation")
        sampling = SamplingParameters(max_tokens=settings.max_tokens)
        params = AvatarParameters(sampling=sampling, avatar=avatar, system_prompt=settings.system_prompt)
        answer = await chatbot.answer(audio=audio, text=text, params=params, observer=Progress())
        await _download(chatbot.client, f"{animation_url}/v1/videos/{answer.video.id}", args.output, "animation")


async def ask_gateway(
    args: argparse.Namespace, audio: str | None, text: str | None, image: tuple[str, bytes] | None
) -> None:
    """Ask a running gateway (detailed answer), then download the video it serves; AVATARCHAT_API_KEY goes along."""
    base = str(args.gateway).rstrip("/")
    headers = bearer(load_settings(GatewaySettings).service_api_key)
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(None, connect=10.0)) as client:
        avatar = None
        if image is not None:
            avatar = await _upload_avatar(client, base, image, "gateway")
        _say(f"[gateway] asking {base}…")
        body = {"audio": audio, "text": text, "avatar": avatar, "detailed": True}
        url = f"{base}/v1/avatarchatbot"
        try:
            response = await client.post(url, json={k: v for k, v in body.items() if v is not None})
        except httpx.HTTPError as exc:
            raise transport_error("gateway", url, exc) from exc
        answer = (await _check("gateway", response)).json()
        for stage, seconds in answer["timings"].items():
            _say(f"[{stage}] {seconds:.1f} s")
        _say(f'heard "{_short(answer["transcript"])}", answered "{_short(answer["answer"])}"')
        await _download(client, answer["video_url"], args.output, "gateway")


def run_ask(args: argparse.Namespace) -> int:
    """Entry point of `avatarchat ask` (see cli/main.py for the arguments)."""
    audio, text = _question(args)
    image = _avatar_file(args.avatar)
    run = ask_gateway if args.gateway else ask_in_process
    try:
        asyncio.run(run(args, audio, text, image))
    except ServiceError as exc:
        _say(f"error: {exc.message}")
        return 1
    except FileNotFoundError as exc:  # comps.core.weights.WeightsMissingError says which file and how to get it
        _say(f"error: {exc}")
        return 2
    return 0
