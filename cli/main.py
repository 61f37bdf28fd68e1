"""The `avatarchat` command: serve one service, download weights, check or run the whole stack, ask once."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# These two tables name modules instead of importing them: each image ships only its own service
# (and its extra's dependencies, torch among them), and `avatarchat serve asr` must not need the others.
# service name -> module with `create_app() -> FastAPI` (settings read from the environment).
SERVICES: dict[str, str] = {
    "asr": "comps.asr.app",
    "tts": "comps.tts.app",
    "llm": "comps.llm.app",
    "animation": "comps.animation.app",
    "gateway": "gateway.app",
    "ui": "ui.app",
}

# component -> "module:function"; the function takes no arguments, reads the service's settings
# and returns the files it placed in the model cache.
DOWNLOADS: dict[str, str] = {
    "whisper": "comps.asr.download:download_whisper",
    "piper": "comps.tts.download:download_piper",
    "speecht5": "comps.tts.download:download_speecht5",
    "llm": "comps.llm.download:download_llm",
    "wav2lip": "comps.animation.download:download_wav2lip",
    "gfpgan": "comps.animation.download:download_gfpgan",
    "sadtalker": "comps.animation.download:download_sadtalker",
}

logger = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("avatarchat")
    except PackageNotFoundError:
        return "0+unknown"


def _load(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module_name), attr)
    return function


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and shell completion)."""
    parser = argparse.ArgumentParser(prog="avatarchat", description=__doc__)
    parser.add_argument("--version", action="version", version=f"avatarchat {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run one service with uvicorn")
    serve.add_argument("service", choices=sorted(SERVICES))
    serve.add_argument("--host", default=None, help="listen address (default: the service's setting)")
    serve.add_argument("--port", type=int, default=None, help="listen port (default: the service's setting)")

    download = commands.add_parser("download", help="fetch model weights into the model cache")
    download.add_argument("component", choices=sorted(DOWNLOADS))

    up = commands.add_parser("up", help="start every service and the gateway on this machine")
    up.add_argument("--no-ui", action="store_true", help="do not start the Gradio page")
    up.add_argument("--host", default="127.0.0.1", help="listen address for every service")

    doctor = commands.add_parser("doctor", help="check every model, ffmpeg and the ports; start nothing")
    doctor.add_argument("--no-ui", action="store_true", help="the page will not be started: skip its port")
    doctor.add_argument("--host", default="127.0.0.1", help="the address `up` will listen on")

    ask = commands.add_parser("ask", help="run the pipeline once: question in, talking video out")
    ask.add_argument("audio", nargs="?", type=Path, help="a spoken question (any audio file)")
    ask.add_argument("--text", default=None, help="a typed question instead of audio")
    ask.add_argument("--avatar", type=Path, default=None, help="an image or short video of a face")
    ask.add_argument("-o", "--output", type=Path, default=Path("answer.mp4"), help="where to write the video")
    ask.add_argument("--gateway", default=None, help="use a running gateway at this URL instead of in-process")
    return parser


KEEP_ALIVE_S = 75
"""Seconds an idle kept-alive connection stays open. Longer than clients keep theirs (httpx: 5 s) and
than any Retry-After we send (5-10 s): a client retrying on its pooled connection must never meet a
server closing it at that same moment (uvicorn's default is 5 s)."""


def serve(service: str, host: str | None, port: int | None) -> None:
    """Run one service's app under uvicorn."""
    import uvicorn

    app = importlib.import_module(SERVICES[service]).create_app()
    settings = app.state.settings
    if settings.nice:
        os.nice(settings.nice)  # this process is the service: yield the cores it shares (see ServiceSettings.nice)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        timeout_keep_alive=KEEP_ALIVE_S,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `avatarchat` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        serve(args.service, args.host, args.port)
        return 0
    if args.command == "download":
        logging.basicConfig(level=logging.INFO)
        for path in _load(DOWNLOADS[args.component])():
            sys.stdout.write(f"{path}\n")
        return 0
    # Imported here, not at the top: up and ask need the gateway and megaservice packages, which the
    # model service images (whose only command is `serve`) do not ship.
    if args.command == "up":
        from cli.up import run_up

        return run_up(args)
    if args.command == "doctor":
        from cli.preflight import preflight, print_table

        problems = preflight(host=args.host, fetch=False, ui=not args.no_ui)
        print_table(problems)
        return 1 if problems else 0
    from cli.ask import run_ask

    return run_ask(args)


if __name__ == "__main__":
    raise SystemExit(main())
