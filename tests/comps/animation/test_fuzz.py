"""Schemathesis over the animation service's OpenAPI with deterministic Wav2Lip weights: no 5xx, conforming answers."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi import FastAPI
from schemathesis import Case
from support.fuzz import fuzz, schema_of, send_valid, settings
from support.models import speak
from support.wav2lip_weights import write_checkpoint

from comps.animation.app import create_app
from comps.animation.backends import BACKENDS
from comps.animation.backends.base import AnimationBackend
from comps.animation.backends.networks import load_networks
from comps.animation.settings import AnimationSettings
from comps.core.audio import encode_wav
from comps.core.device import resolve_device

SR = 16_000

schema = schema_of(create_app(AnimationSettings(device="cpu", offline=True)))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("checkpoints")
    write_checkpoint(folder / "wav2lip.pth")
    write_checkpoint(folder / "wav2lip_gan.pth")
    return folder


def fuzz_settings(folder: Path, checkpoints: Path, face: Path) -> AnimationSettings:
    return AnimationSettings(
        device="cpu",
        modes=["wav2lip_gan"],
        checkpoint_dir=checkpoints,
        model_cache_dir=folder / "cache",
        offline=True,
        face=face,
        avatar_dir=folder / "avatars",
        output_dir=folder / "videos",
        fps=5.0,  # few frames per rendered clip: the fuzzer renders what it sends
        max_audio_seconds=1.0,
        max_concurrency=1,
    )


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory, checkpoints: Path, shared_dir: Path) -> AnimationBackend:
    """The network loaded once for the module: every case starts the app's lifespan, which would load it again."""
    settings_ = fuzz_settings(
        tmp_path_factory.mktemp("fuzz"), checkpoints, shared_dir / "assets" / "avatar_astronaut.png"
    )
    return BACKENDS[settings_.inference_mode](settings_, load_networks(settings_, resolve_device("cpu")))


@pytest.fixture
def app(tmp_path: Path, checkpoints: Path, shared_dir: Path, backend: AnimationBackend) -> FastAPI:
    return create_app(fuzz_settings(tmp_path, checkpoints, shared_dir / "assets" / "avatar_astronaut.png"), backend)


@schema.parametrize()
@settings(max_examples=15)
def test_fuzz(case: Case, app: FastAPI) -> None:
    fuzz(case, app)


def test_answers_conform(app: FastAPI) -> None:
    speech = speak("Hello!")[: SR // 2]
    audio = base64.b64encode(encode_wav(speech, SR)).decode()
    rendered = send_valid(schema, app, "POST", "/v1/animation", body={"byte_str": audio, "fps": 5}).json()
    send_valid(schema, app, "GET", "/v1/videos/{video_id}", path_parameters={"video_id": rendered["id"]})
    send_valid(schema, app, "POST", "/v1/wav2lip", body={"audio": audio})
    avatars = send_valid(schema, app, "GET", "/v1/avatars").json()["avatars"]
    avatar_id = avatars[0]["id"]
    send_valid(schema, app, "GET", "/v1/avatars/{avatar_id}", path_parameters={"avatar_id": avatar_id})
    send_valid(schema, app, "GET", "/v1/avatars/{avatar_id}/image", path_parameters={"avatar_id": avatar_id})
