"""Two animation processes and two gateways on one media store, as separate OS processes (a ReadWriteMany volume).

A and B are `avatarchat serve animation` on the real Wav2Lip network (the suite's deterministic weights),
sharing only their avatar and video folders; gateway GA reaches A, gateway GB reaches B. What one side
registers or renders, the other lists, renders with and serves, byte for byte, `Range` requests included.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.animation_http import check_speech_video, envelope
from support.models import speak
from support.processes import ServiceProcesses
from support.wav2lip_weights import write_checkpoint

from comps.core.audio import encode_wav

SR = 16_000
FPS = 10  # few frames: the render is not what is tested here
READY_TIMEOUT_S = 180.0
STAGES = ("asr", "llm", "tts", "animation")


@dataclass(frozen=True)
class Deployment:
    """Clients of the four processes, and the speech every render here uses."""

    a: httpx.Client
    b: httpx.Client
    ga: httpx.Client
    gb: httpx.Client
    speech_b64: str  # a WAV, base64
    speech_s: float  # its length in seconds


def animation_env(store: Path, checkpoint: Path, cache: Path) -> dict[str, str]:
    return {
        "ANIMATION_DEVICE": "cpu",
        "ANIMATION_CHECKPOINT_PATH": str(checkpoint),
        "ANIMATION_AVATAR_DIR": str(store / "avatars"),
        "ANIMATION_OUTPUT_DIR": str(store / "videos"),
        "ANIMATION_FPS": str(FPS),
        "ANIMATION_BATCH_SIZE": "8",
        "ANIMATION_THREADS": "1",  # two renderers on two cores
        "ANIMATION_LOG_LEVEL": "WARNING",
        "MODEL_CACHE_DIR": str(cache),
        "AVATARCHAT_OFFLINE": "1",
    }


def gateway_env(animation_port: int) -> dict[str, str]:
    # Only the media routes are driven here, and they reach the animation stage alone. The gateway is
    # ready when every stage's /ready answers 200, so the other three stages name the same animation
    # process: the gateway then turns ready exactly when its animation service does.
    env = {"GATEWAY_LIVE_MAX_SESSIONS": "0", "GATEWAY_LOG_LEVEL": "WARNING"}
    for stage in STAGES:
        env[f"GATEWAY_{stage.upper()}_HOST"] = "127.0.0.1"
        env[f"GATEWAY_{stage.upper()}_PORT"] = str(animation_port)
    return env


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("shared-store-processes")
    checkpoint = write_checkpoint(folder / "wav2lip.pth")
    store = folder / "store"  # the one volume both animation processes mount
    speech = speak("An avatar made on one replica speaks on the other.", sample_rate=SR)
    speech_b64 = base64.b64encode(encode_wav(speech, SR)).decode()
    with ServiceProcesses(folder) as processes:
        a = processes.start("animation-a", "animation", animation_env(store, checkpoint, folder / "cache-a"))
        b = processes.start("animation-b", "animation", animation_env(store, checkpoint, folder / "cache-b"))
        ga = processes.start("gateway-a", "gateway", gateway_env(a.port))
        gb = processes.start("gateway-b", "gateway", gateway_env(b.port))
        processes.wait_ready(a, b, ga, gb, timeout_s=READY_TIMEOUT_S)
        a_http, b_http, ga_http, gb_http = (
            httpx.Client(base_url=p.url, timeout=300, trust_env=False) for p in (a, b, ga, gb)
        )
        with a_http, b_http, ga_http, gb_http:
            yield Deployment(a_http, b_http, ga_http, gb_http, speech_b64=speech_b64, speech_s=speech.size / SR)


def register(client: httpx.Client, png: bytes) -> dict[str, object]:
    created = client.post("/v1/avatars", files={"file": ("astro.png", png, "image/png")}, data={"name": "astro"})
    assert created.status_code == 201, created.text
    body: dict[str, object] = created.json()
    return body


def test_an_avatar_registered_through_a_is_listed_by_b_and_renders_there(
    deployment: Deployment, shared_dir: Path, tmp_path: Path
) -> None:
    d = deployment
    created = register(d.ga, (shared_dir / "assets" / "avatar_astronaut.png").read_bytes())  # GA -> A
    avatar_id = created["id"]
    assert avatar_id in [avatar["id"] for avatar in d.b.get("/v1/avatars").json()["avatars"]]
    assert avatar_id in [avatar["id"] for avatar in d.gb.get("/v1/avatars").json()["avatars"]]
    on_b = d.b.get(f"/v1/avatars/{avatar_id}").json()
    assert {k: v for k, v in on_b.items() if k != "image_url"} == {k: v for k, v in created.items() if k != "image_url"}
    assert d.gb.get(f"/v1/avatars/{avatar_id}/image").content[:8] == b"\x89PNG\r\n\x1a\n"

    rendered = d.b.post("/v1/animation", json={"byte_str": d.speech_b64, "avatar": avatar_id})
    assert rendered.status_code == 200, rendered.text
    video = d.b.get(f"/v1/videos/{rendered.json()['id']}")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    mp4 = tmp_path / "on-b.mp4"
    mp4.write_bytes(video.content)
    check_speech_video(mp4, seconds=d.speech_s)  # H.264 + AAC, as long as the speech


def test_a_video_rendered_by_a_is_served_by_gateway_b_whole_and_by_range(deployment: Deployment) -> None:
    d = deployment
    rendered = d.a.post("/v1/animation", json={"byte_str": d.speech_b64})  # A's default avatar
    assert rendered.status_code == 200, rendered.text
    video_id = rendered.json()["id"]
    original = d.a.get(f"/v1/videos/{video_id}").content
    size = len(original)
    assert original[4:8] == b"ftyp" and size > 2000

    whole = d.gb.get(f"/v1/videos/{video_id}")  # GB -> B, which never saw this render
    assert whole.status_code == 200, whole.text
    assert whole.content == original
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"

    ranges = {  # Range header -> (first byte, last byte)
        "bytes=100-1099": (100, 1099),
        "bytes=-500": (size - 500, size - 1),  # the last 500 bytes
        f"bytes={size - 10}-": (size - 10, size - 1),  # from an offset to the end
        f"bytes=1000-{size + 5000}": (1000, size - 1),  # a last byte past the end is the end
    }
    for header, (first, last) in ranges.items():
        part = d.gb.get(f"/v1/videos/{video_id}", headers={"Range": header})
        assert part.status_code == 206, (header, part.text)
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}", header
        assert part.content == original[first : last + 1], header
        assert int(part.headers["content-length"]) == last - first + 1, header

    beyond = d.gb.get(f"/v1/videos/{video_id}", headers={"Range": f"bytes={size}-"})
    envelope(beyond, 416)  # nothing to send: B refuses it, and GB passes the refusal on in the envelope
    assert beyond.headers["content-range"] == f"bytes */{size}"  # with the length, for the next Range

    # And the other way round: what B renders, GA serves (with A behind it).
    from_b = d.b.post("/v1/animation", json={"byte_str": d.speech_b64})
    assert from_b.status_code == 200, from_b.text
    served = d.ga.get(f"/v1/videos/{from_b.json()['id']}")
    assert served.status_code == 200 and served.content == d.b.get(f"/v1/videos/{from_b.json()['id']}").content


def test_an_avatar_deleted_through_a_is_gone_on_b(deployment: Deployment, shared_dir: Path) -> None:
    d = deployment
    avatar_id = register(d.a, (shared_dir / "assets" / "avatar_astronaut.png").read_bytes())["id"]
    warmed = d.b.get(f"/v1/avatars/{avatar_id}/image")  # B loads (and caches) its face track
    assert warmed.status_code == 200, warmed.text

    assert d.ga.delete(f"/v1/avatars/{avatar_id}").status_code == 204  # GA -> A
    envelope(d.b.get(f"/v1/avatars/{avatar_id}"), 404, "avatar_not_found")
    envelope(d.gb.get(f"/v1/avatars/{avatar_id}"), 404, "avatar_not_found")
    envelope(d.b.post("/v1/animation", json={"byte_str": d.speech_b64, "avatar": avatar_id}), 404)
    assert avatar_id not in [avatar["id"] for avatar in d.b.get("/v1/avatars").json()["avatars"]]
