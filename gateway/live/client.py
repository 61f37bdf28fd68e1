"""A Python client of the live mode (`POST /v1/realtime`): speak into it, watch and hear what comes back.

The microphone is a track playing whatever `say` was given (16 kHz mono), silence otherwise, paced
in real time. Every received video frame, audio frame and data-channel event is recorded with its
arrival time (monotonic) and media time (pts, relative to the track's first packet), which is what
the tests and `bench/live.py` measure.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import httpx
import numpy as np
import numpy.typing as npt
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from gateway.live.media import AUDIO_FRAME, SAMPLE_RATE

VOICED_DB = -40.0  # a frame is voiced when its peak is within this of the utterance's peak


@dataclass
class Utterance:
    """One `say`: when its first and last frames went out, and when its voice began and ended (monotonic s)."""

    frames: int
    voice: tuple[int, int]  # first and last voiced frame
    sent: list[float] = field(default_factory=list)  # send time of each frame so far

    @property
    def done(self) -> bool:
        """Every frame has gone out."""
        return len(self.sent) == self.frames

    @property
    def voice_onset(self) -> float:
        """When the first voiced frame went out."""
        return self.sent[self.voice[0]]

    @property
    def voice_end(self) -> float:
        """When the last voiced frame had gone out (the end of the person's speech)."""
        return self.sent[self.voice[1]] + AUDIO_FRAME / SAMPLE_RATE


class Microphone(AudioStreamTrack):
    """The client's microphone: what `say` queued, else silence; 20 ms frames of 16 kHz mono PCM16."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: deque[tuple[npt.NDArray[np.int16], Utterance]] = deque()
        self._sent = 0
        self._began: float | None = None
        self.utterances: list[Utterance] = []

    def say(self, samples: npt.NDArray[np.float32]) -> Utterance:
        """Queue speech (16 kHz mono float32); it plays after what is queued. Its record fills as it goes out."""
        pcm = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)
        pcm = np.concatenate([pcm, np.zeros((-pcm.size) % AUDIO_FRAME, np.int16)]).reshape(-1, AUDIO_FRAME)
        peaks = np.abs(pcm.astype(np.float32)).max(axis=1)
        voiced = np.flatnonzero(peaks >= peaks.max() * 10 ** (VOICED_DB / 20))
        utterance = Utterance(frames=len(pcm), voice=(int(voiced[0]), int(voiced[-1])))
        self.utterances.append(utterance)
        self._pending.extend((frame, utterance) for frame in pcm)
        return utterance

    @property
    def busy(self) -> bool:
        """Speech is still queued."""
        return bool(self._pending)

    async def recv(self) -> av.AudioFrame:
        if self._began is None:
            self._began = time.monotonic()
        wait = self._began + self._sent * AUDIO_FRAME / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        pcm = np.zeros(AUDIO_FRAME, np.int16)
        if self._pending:
            pcm, utterance = self._pending.popleft()
            utterance.sent.append(time.monotonic())
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._sent * AUDIO_FRAME
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._sent += 1
        return frame


@dataclass
class Received:
    """Everything that came back, with monotonic arrival times."""

    video: list[tuple[float, float, npt.NDArray[np.uint8]]] = field(default_factory=list)  # (arrival, pts s, gray)
    audio: list[tuple[float, float, float]] = field(default_factory=list)  # (arrival, pts s, rms in [0, 1])
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def events_of(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        """The events of one `type`."""
        return [(at, event) for at, event in self.events if event.get("type") == kind]


Gray = npt.NDArray[np.uint8]


def differs(gray: Gray, reference: Gray, *, block: int = 16, levels: float = 20) -> bool:
    """Whether a received frame shows something else than `reference` (the idle avatar).

    It does when the mean of some `block` x `block` square moved by more than `levels` grey levels (a
    mouth redrawn), which the codec's noise does not do.
    """
    if gray.shape != reference.shape:
        return bool(gray.size)
    rows, cols = gray.shape[0] // block * block, gray.shape[1] // block * block
    delta = gray[:rows, :cols].astype(np.float32) - reference[:rows, :cols].astype(np.float32)
    means = delta.reshape(rows // block, block, cols // block, block).mean(axis=(1, 3))
    return bool(np.abs(means).max() > levels)


class LiveClient:
    """One live session with a gateway (see the module docstring); `keep_frames` keeps every gray frame."""

    def __init__(
        self,
        gateway_url: str,
        *,
        avatar: str | None = None,
        keep_frames: bool = True,
        ice_servers: list[RTCIceServer] | None = None,
    ) -> None:
        self.url = gateway_url.rstrip("/")
        self.avatar = avatar
        self.keep_frames = keep_frames
        self.microphone = Microphone()
        self.received = Received()
        # No ICE servers unless given: aiortc's default asks a public STUN server, which a closed network lacks.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers or []))
        self.session_url: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, client: httpx.AsyncClient) -> None:
        """Offer (microphone out; audio, video and an `events` channel in) and apply the gateway's answer."""
        pc = self.pc
        pc.addTrack(self.microphone)
        pc.addTransceiver("video", direction="recvonly")
        channel = pc.createDataChannel("events")
        channel.on("message", lambda data: self.received.events.append((time.monotonic(), json.loads(data))))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._tasks.append(asyncio.ensure_future(self._read(track)))

        await pc.setLocalDescription(await pc.createOffer())
        params = {"avatar": self.avatar} if self.avatar else {}
        response = await client.post(
            f"{self.url}/v1/realtime", content=pc.localDescription.sdp, params=params,
            headers={"Content-Type": "application/sdp"},
        )  # fmt: skip
        response.raise_for_status()
        self.session_url = self.url + response.headers["location"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                at = time.monotonic()
                assert isinstance(frame, av.VideoFrame | av.AudioFrame)
                pts = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else float("nan")
                if isinstance(frame, av.VideoFrame):
                    keep = self.keep_frames or not self.received.video
                    gray = np.asarray(frame.to_ndarray(format="gray"), np.uint8) if keep else np.zeros(0, np.uint8)
                    self.received.video.append((at, pts, gray))
                else:
                    samples = frame.to_ndarray().astype(np.float32) / 32768.0
                    self.received.audio.append((at, pts, float(np.sqrt(np.mean(samples**2)))))
        except MediaStreamError:
            return

    async def close(self) -> None:
        """Hang up (the gateway sees the connection close)."""
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
