"""The Gradio page: ask by voice or text, pick or upload an avatar, watch the answer play while it is made."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
import gradio as gr

from comps.core.answer_events import AnswerDelta, AnswerEvent, Done, Segment, Transcript, Video
from ui.client import Avatar, GatewayClient, GatewayError, Question, avatar_preview
from ui.settings import UiSettings
from ui.video import join_segments

logger = logging.getLogger(__name__)

# "default" leaves the choice to the animation service (its INFERENCE_MODE); the rest are its modes.
MODES = ["default", "wav2lip", "wav2lip_gan", "wav2lip+gfpgan", "sadtalker", "sadtalker+gfpgan"]
FIXED_RATE_MODES = ("sadtalker", "sadtalker+gfpgan")  # they render at 25 fps only: the rate does not apply
# "auto" sends no rate: the service's choice (25 fps, or 12.5 where this CPU renders slower than real time).
RATES = [("auto: 25 fps, or 12.5 on a slow CPU", "auto")] + [(f"{r:g} fps", f"{r:g}") for r in (30, 25, 20, 15, 12.5)]

LIVE_JS = Path(__file__).with_name("live.js")  # the Live tab's WebRTC client
LIVE_HTML = (
    '<div class="live"><video class="live-video" playsinline autoplay></video>'
    '<div class="live-controls"><button class="live-start lg primary">Start</button>'
    '<button class="live-stop lg secondary" disabled>Stop</button>'
    '<label>Microphone <meter class="live-level" min="0" max="1" value="0"></meter></label></div>'
    '<p class="live-state"></p><p class="live-error" hidden></p>'
    '<p><b>You said:</b> <span class="live-heard"></span></p>'
    '<p><b>Answer:</b> <span class="live-said"></span></p></div>'
)
LIVE_CSS = """
.live { display: flex; flex-direction: column; gap: 8px; width: 100%; max-width: 520px; margin: 0 auto; }
.live-video { width: 100%; aspect-ratio: 1 / 1; object-fit: contain; background: var(--background-fill-secondary);
              border-radius: var(--block-radius); }
.live-controls { display: flex; gap: 8px; align-items: center; }
.live-controls button { padding: 6px 18px; border-radius: var(--button-large-radius); cursor: pointer; }
.live-controls button.primary { background: var(--button-primary-background-fill);
                                color: var(--button-primary-text-color); }
.live-controls button:disabled { opacity: 0.5; cursor: default; }
.live-error { color: var(--error-text-color); }
"""
PLAYER_JS = Path(__file__).with_name("player.js")  # gr.HTML's js_on_load: the MediaSource player
# Fixed markup: Gradio re-renders an HTML component's template when it changes, which would strip the
# `src` the script gives the <video>; the state travels in the value, which the template never shows.
PLAYER_HTML = (
    '<div class="player"><video playsinline controls preload="auto"></video><p class="player-caption" hidden></p></div>'
)
# Scoped by Gradio to the component. A square box: the avatars' stills and videos are square.
PLAYER_CSS = """
.player { display: flex; flex-direction: column; width: 100%; max-width: 520px; margin: 0 auto;
          background: var(--background-fill-secondary); border-radius: var(--block-radius); overflow: hidden; }
video { width: 100%; aspect-ratio: 1 / 1; object-fit: contain; }
.player-caption { margin: 0; padding: 6px 10px; color: var(--error-text-color); }
"""


def animation_choice(mode: str, rate: str) -> tuple[str | None, float | None]:
    """The request's `inference_mode` and `fps` for the page's two dropdowns (`rate`: "auto" or a number)."""
    name = None if mode in ("", "default") else mode
    return name, None if name in FIXED_RATE_MODES or rate in ("", "auto") else float(rate)


def player_state(avatar: str | None, video: Video | None = None) -> str:
    """The player's value (JSON read by player.js): the avatar's still as poster, and the answer's video if any.

    URLs are relative to the page, on the UI's own origin (`ui.app.add_media_routes` proxies them).
    """
    state: dict[str, Any] = {"poster": f"avatar/{quote(avatar, safe='')}/image" if avatar else None, "video": None}
    if video is not None:
        state["video"] = {"id": video.id, "src": f"answer/{quote(video.id, safe='')}", "type": video.content_type}
    return json.dumps(state)


def live_state(avatar: str | None) -> str:
    """The Live tab's value (JSON read by live.js): the avatar its next session uses."""
    return json.dumps({"avatar": avatar})


@dataclass
class Progress:
    """What the page shows while an answer is being made."""

    transcript: str = ""
    answer: str = ""
    video: Video | None = None
    video_url: str | None = None  # the whole video, on the gateway
    segment_urls: list[str] = field(default_factory=list)  # an older gateway's per-sentence videos
    status: str = "Asking…"
    timings: dict[str, float] = field(default_factory=dict)

    def apply(self, event: AnswerEvent) -> None:
        """Take in one event of the answer stream."""
        if isinstance(event, Transcript):
            self.transcript = event.text
            self.status = "Heard the question; thinking…"
        elif isinstance(event, AnswerDelta):
            self.answer += event.delta
            self.status = "Writing the answer…"
        elif isinstance(event, Video):
            self.video = event
            self.video_url = event.url
            self.status = "Speaking: the video plays while it is made…"
        elif isinstance(event, Segment):
            self.segment_urls.append(event.video_url)
            self.status = f"Animating: segment {event.index + 1} ready."
        elif isinstance(event, Done):
            self.answer = event.answer or self.answer
            self.video_url = event.video_url or self.video_url
            self.timings = dict(event.timings)
            if event.duration_s is not None:
                self.status = f"Done: a {event.duration_s:.1f} s video."
            elif self.segment_urls and self.video is None:
                self.status = f"Done: {len(self.segment_urls)} segment(s)."
            else:
                self.status = "Done."

    def status_markdown(self) -> str:
        """Stage, then the time each stage took once known."""
        lines = [self.status]
        if self.timings:
            lines.append(" · ".join(f"{stage}: {seconds:.2f} s" for stage, seconds in self.timings.items()))
        return "\n\n".join(lines)


def _read_b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


class Page:
    """The page's handlers, bound to the app's one gateway client and its settings (no globals)."""

    def __init__(self, *, settings: UiSettings, client: GatewayClient, work_dir: Path) -> None:
        """Bind the handlers."""
        self.settings = settings
        self.client = client
        self.work_dir = work_dir

    async def avatar_gallery(self) -> tuple[list[tuple[str, str]], list[Avatar]]:
        """The gallery items (preview path, caption) and the avatars in the same order."""
        avatars = await self.client.avatars()
        # One previews folder, each file replaced atomically, so reloading the page adds no files.
        folder = self.work_dir / "previews"
        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
        items = []
        for avatar in avatars:
            preview = await avatar_preview(self.client, avatar, folder / f"{avatar.id}.png")
            if preview is not None:
                items.append((str(preview), avatar.name))
        return items, avatars

    async def ask(
        self,
        audio_path: str | None,
        text: str,
        avatar: str | None,
        mode: str,
        rate: str,
        voice: str,
        history: list[tuple[str, str]],
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Run one question; yields (download, transcript, answer, status, chat, history, player) as events arrive.

        The player gets the video's id with the `video` event, before its first frame exists, and
        plays it from there; `download` is the whole mp4, fetched once the answer is done.
        """
        progress = Progress()
        chat = _chat(history)
        player = player_state(avatar)  # a new question clears the last answer: the avatar's still again
        if not audio_path and not text.strip():
            yield None, "", "", "**Error:** record or upload a question, or type one.", chat, history, player
            return
        inference_mode, fps = animation_choice(mode, rate)
        question = Question(
            audio_b64=await anyio.to_thread.run_sync(_read_b64, audio_path) if audio_path else None,
            text=text.strip() or None if not audio_path else None,
            avatar=avatar or None,
            inference_mode=inference_mode,
            fps=fps,
            voice=voice.strip() or None,
            history=tuple(history[-self.settings.history_turns :]) if self.settings.history_turns else (),
        )
        request_dir = Path(await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(dir=self.work_dir)))
        try:
            async for event in self.client.ask(question):
                progress.apply(event)
                if isinstance(event, Video):
                    player = player_state(avatar, event)
                yield None, progress.transcript, progress.answer, progress.status_markdown(), chat, history, player
            history = [*history, (progress.transcript, progress.answer)]
            chat = _chat(history)
            saved = await self._whole_video(progress, request_dir)
            download = None if saved is None else str(saved)
            yield download, progress.transcript, progress.answer, progress.status_markdown(), chat, history, player
        except GatewayError as exc:
            # The server's own words, as it said them.
            message = f"**Error:** {exc.message}"
            yield None, progress.transcript, progress.answer, message, chat, history, player
        finally:
            # Gradio has copied the returned file into its own cache by now.
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(request_dir, ignore_errors=True))

    async def _whole_video(self, progress: Progress, request_dir: Path) -> Path | None:
        """The answer as one mp4 for the download box: the continuous video, or an older gateway's segments joined."""
        target = request_dir / "answer.mp4"
        if progress.video_url:
            return await self.client.download(progress.video_url, target)
        if not progress.segment_urls:
            return None
        parts = [
            await self.client.download(url, request_dir / f"segment-{i:03d}.mp4")
            for i, url in enumerate(progress.segment_urls)
        ]
        return await anyio.to_thread.run_sync(join_segments, parts, target)

    async def upload(self, file_path: str | None) -> tuple[str, Any]:
        """Register an uploaded image or video as an avatar and select it."""
        if not file_path:
            return "**Error:** choose an image or a short video first.", gr.update()
        try:
            avatar = await self.client.upload_avatar(Path(file_path))
        except GatewayError as exc:
            return f"**Error:** {exc.message}", gr.update()
        _, avatars = await self.avatar_gallery()
        choices = [(a.name, a.id) for a in avatars]
        return f"Avatar **{avatar.name}** registered.", gr.update(choices=choices, value=avatar.id)


def _chat(history: list[tuple[str, str]]) -> list[dict[str, str]]:
    messages = []
    for asked, answered in history:
        messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
    return messages


def build_blocks(page: Page) -> gr.Blocks:
    """Lay out the page and wire the handlers."""
    blocks: gr.Blocks
    with gr.Blocks(title="AvatarChatbot") as blocks:
        history = gr.State([])
        gr.Markdown("# AvatarChatbot\nAsk by voice or text; the avatar answers. Or talk to it live, hands-free.")
        with gr.Tab("Ask"), gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="Ask by voice")
                text = gr.Textbox(label="…or type a question", elem_id="question")
                ask = gr.Button("Ask", variant="primary", elem_id="ask")
                with gr.Accordion("Avatar", open=True):
                    gallery = gr.Gallery(label="Avatars", columns=4, height=180, allow_preview=False)
                    avatar = gr.Dropdown(label="Avatar", choices=[], value=None, elem_id="avatar")
                    upload = gr.File(label="New avatar (image or short video)", file_types=["image", "video"])
                    add = gr.Button("Add avatar")
                with gr.Accordion("Options", open=False):
                    mode = gr.Dropdown(label="Animation", choices=MODES, value=MODES[0])
                    rate = gr.Dropdown(label="Frame rate (Wav2Lip modes)", choices=RATES, value="auto")
                    voice = gr.Textbox(label="Voice", value="", placeholder="the service's default")
            with gr.Column():
                player = gr.HTML(
                    player_state(None),
                    html_template=PLAYER_HTML,
                    css_template=PLAYER_CSS,
                    js_on_load=PLAYER_JS.read_text(encoding="utf-8"),
                    elem_id="answer-video",
                )
                status = gr.Markdown("", elem_id="status")
                transcript = gr.Textbox(label="You asked", interactive=False, elem_id="transcript")
                answer = gr.Textbox(label="Answer", interactive=False, elem_id="answer-text")
                chat = gr.Chatbot(label="Conversation", height=240)
                download = gr.File(label="The answer's video (mp4)", interactive=False, elem_id="answer-file")

        with gr.Tab("Live"):
            gr.Markdown(
                "Press **Start**, allow the microphone and speak; the avatar answers when you pause, and "
                "stops when you talk over it. It uses the avatar chosen in the **Ask** tab."
            )
            live = gr.HTML(
                live_state(None), html_template=LIVE_HTML, css_template=LIVE_CSS,
                js_on_load=LIVE_JS.read_text(encoding="utf-8"), elem_id="live",
            )  # fmt: skip

        async def load(current: str | None) -> tuple[Any, Any, str]:
            try:
                items, avatars = await page.avatar_gallery()
            except GatewayError as exc:
                return gr.update(), gr.update(), f"**Error:** {exc.message}"
            ids = [a.id for a in avatars]
            value = current if current in ids else (ids[0] if ids else None)
            return items, gr.update(choices=[(a.name, a.id) for a in avatars], value=value), ""

        blocks.load(load, inputs=[avatar], outputs=[gallery, avatar, status])
        # Set by the person or by `load`: the player shows the chosen avatar's still until the next answer.
        avatar.change(player_state, inputs=[avatar], outputs=[player], show_progress="hidden")
        avatar.change(live_state, inputs=[avatar], outputs=[live], show_progress="hidden")
        ask.click(
            page.ask,
            inputs=[audio, text, avatar, mode, rate, voice, history],
            outputs=[download, transcript, answer, status, chat, history, player],
            api_name="ask",
        )
        add.click(page.upload, inputs=[upload], outputs=[status, avatar]).then(
            load, inputs=[avatar], outputs=[gallery, avatar, status]
        )
    return blocks
