"""The gateway's live sessions: each opened from an SDP offer, at most `live_max_sessions`, closed at shutdown."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import anyio.abc
import httpx
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from comps.core.errors import InvalidRequest, NotFound, ServiceError, Unavailable
from comps.core.upstream import status_error, transport_error
from comps.core.vad import SileroVad, TurnDetector
from gateway.live.media import I420, AnswerAudio, AvatarVideo, RenderRate, Timeline, i420_from_image
from gateway.live.peer import LivePeer, TimelineSink
from gateway.schemas import AvatarChatRequest
from gateway.settings import GatewaySettings
from megaservice.avatarchatbot import AvatarChatbot, AvatarParameters
from megaservice.conversation import Conversation
from megaservice.progress import Progress

logger = logging.getLogger(__name__)

PRE_ROLL_MS = 500  # audio kept before the speech onset: Silero is late on soft onsets ("who", "what")
FPS = 25.0  # the live video's rate: 640 speech samples (two 20 ms audio frames) per frame
STAGE = "animation"


@dataclass(frozen=True)
class LiveOptions:
    """What a client chooses for its session (query parameters of `POST /v1/realtime`)."""

    avatar: str | None = None
    voice: str | None = None


class LiveSessions:
    """Every live session of this gateway; each runs in `group` until it ends."""

    def __init__(
        self, *, settings: GatewaySettings, chatbot: AvatarChatbot, vad: SileroVad | None, group: anyio.abc.TaskGroup
    ) -> None:
        self.settings = settings
        self.chatbot = chatbot
        self.vad = vad
        self.group = group
        self.peers: dict[str, LivePeer] = {}
        self.render_rate = RenderRate(FPS, adaptive=settings.live_render_rate == "auto")
        if settings.live_render_rate == "half":
            self.render_rate.fps = FPS / 2
        self._opening = 0

    def check(self) -> None:
        """Raise the 503 an offer gets now (every live session is taken)."""
        if len(self.peers) + self._opening >= self.settings.live_max_sessions:
            raise Unavailable(
                f"live sessions: all {self.settings.live_max_sessions} are in use; retry shortly",
                code="live_sessions_full",
                retry_after=self.settings.live_retry_after_s,
            )

    async def open(self, offer_sdp: str, options: LiveOptions) -> tuple[str, str]:
        """Answer `offer_sdp` with a new session; its id and our SDP answer.

        Raises:
            InvalidRequest: a malformed offer, or one without a microphone track. Unavailable: no session free.
        """
        self.check()
        assert self.vad is not None, "live sessions are on, so the VAD model was loaded"
        vad = self.vad
        self._opening += 1
        pc: RTCPeerConnection | None = None
        try:
            avatar = options.avatar or "default"
            idle, size = await self._idle_picture(avatar)
            pc = RTCPeerConnection(RTCConfiguration(iceServers=self._ice_servers()))
            timeline = Timeline(idle, fps=FPS, capacity=round(self.settings.live_buffer_s * FPS))
            peer = LivePeer(
                pc=pc,
                timeline=timeline,
                detector=TurnDetector(
                    vad.fresh(), threshold=self.settings.live_vad_threshold, silence_ms=self.settings.live_silence_ms,
                    eager_ms=self.settings.live_eager_ms or None, pre_roll_ms=PRE_ROLL_MS,
                ),
                make_conversation=lambda sink, report: self._conversation(sink, report, avatar, options.voice),
                frame_size=size,
                idle_timeout_s=self.settings.live_idle_timeout_s,
                connect_timeout_s=self.settings.live_connect_timeout_s,
                render_rate=self.render_rate,
            )  # fmt: skip
            answer = await _answer_offer(pc, offer_sdp, timeline)
        except BaseException:
            if pc is not None:
                with anyio.CancelScope(shield=True):
                    await pc.close()
            raise
        finally:
            self._opening -= 1
        session_id = uuid.uuid4().hex
        self.peers[session_id] = peer

        async def ended() -> None:
            self.peers.pop(session_id, None)
            logger.info("live session %s ended (%d turns, %d interrupted)", session_id, peer.turns, peer.interruptions)

        self.group.start_soon(peer.run, ended)
        logger.info("live session %s opened (avatar %s)", session_id, avatar)
        return session_id, answer

    def close(self, session_id: str) -> None:
        """End one session (`DELETE /v1/realtime/{id}`)."""
        peer = self.peers.get(session_id)
        if peer is None:
            raise NotFound(f"no live session {session_id!r}", code="unknown_session", param="session_id")
        peer.close()

    def close_all(self) -> None:
        """End every session (shutdown)."""
        for peer in list(self.peers.values()):
            peer.close("shutdown")

    def _conversation(
        self, sink: TimelineSink, report: Callable[[Progress], None], avatar: str, voice: str | None
    ) -> Conversation:
        settings = self.settings
        # The sampling of an HTTP request that sets none (OPEA's defaults: near-greedy, what the default prompt
        # was tuned with); at the server's defaults (temperature 1) a small model rambles.
        sampling = AvatarChatRequest.model_construct().sampling().model_copy(update={"max_tokens": settings.max_tokens})
        params = AvatarParameters(
            sampling=sampling,
            model=settings.llm_model,
            system_prompt=settings.system_prompt,
            voice=voice,
            avatar=avatar,
            sentence_min_chars=settings.sentence_min_chars,
        )
        return Conversation(
            self.chatbot, params=params, sink=sink, report=report, fps=FPS,
            history_chars=settings.live_history_chars, lipsync_options={"avatar": avatar},
        )  # fmt: skip

    def _ice_servers(self) -> list[RTCIceServer]:
        settings = self.settings
        credential = settings.live_turn_credential.get_secret_value() if settings.live_turn_credential else None
        return [
            RTCIceServer(urls=url, username=settings.live_turn_username, credential=credential)
            if url.startswith(("turn:", "turns:"))
            else RTCIceServer(urls=url)
            for url in settings.live_ice_servers
        ]

    async def _idle_picture(self, avatar: str) -> tuple[I420, tuple[int, int]]:
        """The avatar's first frame as I420 at the size its lip-synced frames will have (even sides)."""
        base = self.chatbot.nodes[STAGE].base_url
        info = await self._get(f"{base}/v1/avatars/{avatar}", param="avatar")
        width, height = int(info.json()["width"]) // 2 * 2, int(info.json()["height"]) // 2 * 2
        image = await self._get(f"{base}/v1/avatars/{avatar}/image?full=true", param="avatar")
        picture = await anyio.to_thread.run_sync(lambda: i420_from_image(image.content, width=width, height=height))
        return picture, (width, height)

    async def _get(self, url: str, *, param: str) -> httpx.Response:
        try:
            response = await self.chatbot.client.get(
                url, headers=self.chatbot.nodes[STAGE].headers, timeout=self.settings.connect_timeout_s * 4
            )
        except httpx.HTTPError as exc:
            raise transport_error(STAGE, url, exc) from exc
        if response.status_code >= 400:
            error = status_error(STAGE, response, response.content, credential="AVATARCHAT_API_KEY")
            if response.status_code in (400, 404):
                raise InvalidRequest(error.message, code="unknown_avatar", param=param) from error
            raise error
        return response


async def _answer_offer(pc: RTCPeerConnection, sdp: str, timeline: Timeline) -> str:
    """Our SDP answer to the client's offer, our tracks on the transceivers it offered.

    The offer must send audio (the microphone); the avatar's video goes out only where the offer has a
    video section (a voice-only client gets the speech alone). An offer aiortc cannot use is the caller's
    mistake: 400.
    """
    if "m=audio" not in sdp:
        raise InvalidRequest("the offer has no audio: send the microphone as an audio track", code="bad_sdp",
                             param="sdp")  # fmt: skip
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        kinds = {transceiver.kind for transceiver in pc.getTransceivers()}
        pc.addTrack(AnswerAudio(timeline))
        if "video" in kinds:
            pc.addTrack(AvatarVideo(timeline))
        await pc.setLocalDescription(await pc.createAnswer())
    except ServiceError:
        raise
    except Exception as exc:  # aiortc raises ValueError, KeyError, IndexError ... on offers it cannot use
        raise InvalidRequest(f"the SDP offer cannot be used: {type(exc).__name__}: {exc}"[:300], code="bad_sdp",
                             param="sdp") from exc  # fmt: skip
    return str(pc.localDescription.sdp)
