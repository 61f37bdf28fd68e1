"""GFPGAN v1.4 enhancement (random-init GFPGANv1Clean in the published checkpoint layout): only the face changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from support.gfpgan_weights import narrow_gfpgan
from support.wav2lip_weights import deterministic_wav2lip

from comps.animation.enhance import TEMPLATE, FaceEnhancer, build_gfpgan_v14, import_gfpgan_arch
from comps.animation.render import Wav2LipRenderer
from comps.animation.track import FaceTrack
from comps.core.device import resolve_device
from comps.core.weights import WeightsMissingError

CPU = torch.device("cpu")
# facexlib's five-point template for 512x512 faces (eyes, nose tip, mouth corners), in pixels.
TEMPLATE_POINTS = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    np.float32,
)
# Where those points sit inside a Haar face box, as fractions of its width and height (eyeballed on the astronaut).
BOX_POINTS = np.array([[0.32, 0.40], [0.68, 0.40], [0.50, 0.58], [0.36, 0.77], [0.64, 0.77]], np.float32)


def align_from_box(box: np.ndarray) -> np.ndarray:
    """A similarity transform onto the template from landmarks placed in the (unpadded) Haar box."""
    y1, y2, x1, x2 = box
    height = y2 - 10 - y1  # undo the bottom padding
    points = np.array([x1, y1], np.float32) + BOX_POINTS * np.array([x2 - x1, height], np.float32)
    affine, _ = cv2.estimateAffinePartial2D(points, TEMPLATE_POINTS, method=cv2.LMEDS)
    return affine.astype(np.float32)


def face_region(affine: np.ndarray, shape: tuple[int, int], scale: int = 1) -> np.ndarray:
    """Pixels the restored face may touch: the template square mapped back into the frame, grown by 2 px."""
    inverse = cv2.invertAffineTransform(affine.astype(np.float64)) * scale
    inside = cv2.warpAffine(np.ones((TEMPLATE, TEMPLATE), np.uint8), inverse, (shape[1] * scale, shape[0] * scale))
    return cv2.dilate(inside, np.ones((5, 5), np.uint8)).astype(bool)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    net = build_gfpgan_v14()
    path = tmp_path_factory.mktemp("gfpgan") / "GFPGANv1.4.pth"
    torch.save({"params_ema": net.state_dict()}, path)  # the key GFPGANv1.4.pth uses
    return path


@pytest.fixture(scope="module")
def enhancer(checkpoint: Path) -> FaceEnhancer:
    return FaceEnhancer.load(checkpoint, device=CPU)


@pytest.fixture(scope="module")
def narrow_enhancer() -> FaceEnhancer:
    """The same GFPGANv1Clean architecture at a quarter of the width: fast, for the paste-back geometry tests."""
    net = narrow_gfpgan(seed=1)
    return FaceEnhancer(net=net, device=CPU)


@pytest.fixture(scope="module")
def avatar(shared_dir: Path) -> np.ndarray:
    image = cv2.imread(str(shared_dir / "assets" / "avatar_astronaut.png"))
    assert image is not None
    return image


BOX = np.array([66, 171, 177, 272])  # the astronaut's Haar box, padded (see test_render.haar_box)


def test_alias_is_registered_only_when_asked() -> None:
    probe = "import sys, comps.animation.enhance; print('gfpgan' in sys.modules, 'basicsr' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]  # no work at import
    import_gfpgan_arch()
    import torchvision.transforms.functional as functional

    assert sys.modules["torchvision.transforms.functional_tensor"] is functional


def test_loads_params_ema_strictly(checkpoint: Path, enhancer: FaceEnhancer) -> None:
    saved = torch.load(checkpoint, weights_only=True)["params_ema"]
    loaded = enhancer.net.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert not enhancer.net.training


def test_wrong_or_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError, match="GFPGANv1.4.pth.*avatarchat download gfpgan"):
        FaceEnhancer.load(tmp_path / "GFPGANv1.4.pth", device=CPU)
    torch.save({"params_ema": {"x": torch.zeros(1)}}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="does not match GFPGAN"):
        FaceEnhancer.load(tmp_path / "wrong.pth", device=CPU)
    (tmp_path / "junk.pth").write_bytes(b"junk" * 64)
    with pytest.raises(ValueError, match="cannot read"):
        FaceEnhancer.load(tmp_path / "junk.pth", device=CPU)


def test_batch_changes_only_each_face_region(narrow_enhancer: FaceEnhancer, avatar: np.ndarray) -> None:
    shifted = np.roll(avatar, (12, -20), axis=(0, 1))  # a second frame with its face elsewhere
    affines = [align_from_box(BOX), align_from_box(BOX + np.array([12, 12, -20, -20]))]
    out = narrow_enhancer.enhance([avatar, shifted], affines)
    for before, after, affine in zip([avatar, shifted], out, affines, strict=True):
        assert after.shape == before.shape and after.dtype == np.uint8
        region = face_region(affine, before.shape[:2])
        np.testing.assert_array_equal(after[~region], before[~region])
        y1, y2, x1, x2 = BOX
        assert np.abs(after[y1:y2, x1:x2].astype(int) - before[y1:y2, x1:x2]).mean() > 5  # the face was replaced
    assert not np.array_equal(out[0], out[1])


def test_frames_match_the_published_forward(narrow_enhancer: FaceEnhancer, avatar: np.ndarray) -> None:
    """GFPGANForward (one face per call, Winograd where NNPACK runs) vs the network's own batched forward."""
    published = FaceEnhancer(net=narrow_enhancer.net, device=CPU, published_forward=True)
    frames = [avatar, np.roll(avatar, (12, -20), axis=(0, 1))]
    affines = [align_from_box(BOX), align_from_box(BOX + np.array([12, 12, -20, -20]))]
    for ours, reference, before in zip(
        narrow_enhancer.enhance(frames, affines), published.enhance(frames, affines), frames, strict=True
    ):
        diff = np.abs(ours.astype(int) - reference)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float32 noise flips a rare rounding, no more
        assert np.abs(ours.astype(int) - before).max() > 5  # both restored the face


def test_upscale_scales_the_whole_frame(narrow_enhancer: FaceEnhancer, avatar: np.ndarray) -> None:
    upscaled = FaceEnhancer(net=narrow_enhancer.net, device=CPU, upscale=2)
    affine = align_from_box(BOX)
    (out,) = upscaled.enhance([avatar], [affine])
    assert out.shape == (1024, 1024, 3)
    background = cv2.resize(avatar, (1024, 1024), interpolation=cv2.INTER_LANCZOS4)
    region = face_region(affine, avatar.shape[:2], scale=2)
    np.testing.assert_array_equal(out[~region], background[~region])


def test_renderer_with_gfpgan_changes_only_the_face(enhancer: FaceEnhancer, avatar: np.ndarray) -> None:
    affine = align_from_box(BOX)
    track = FaceTrack(frames=(avatar,), boxes=BOX[None].astype(np.int64), align=affine[None])
    renderer = Wav2LipRenderer(
        model=deterministic_wav2lip(), device=resolve_device("cpu"), batch_size=2, enhancer=enhancer
    )
    audio = (0.2 * np.sin(np.arange(1280) * 0.3)).astype(np.float32)  # 80 ms: two frames at 25 fps
    plain = list(renderer.frames(track, audio, fps=25, enhance=False))
    enhanced = list(renderer.frames(track, audio, fps=25, enhance=True))
    assert len(plain) == len(enhanced) == 2
    touched = face_region(affine, avatar.shape[:2])
    y1, y2, x1, x2 = BOX
    touched[y1:y2, x1:x2] = True
    for a, b in zip(plain, enhanced, strict=True):
        np.testing.assert_array_equal(b[~touched], avatar[~touched])
        assert np.abs(a.astype(int) - b)[touched].mean() > 5  # GFPGAN ran on the Wav2Lip frame


def test_enhance_needs_an_alignment(enhancer: FaceEnhancer, avatar: np.ndarray) -> None:
    track = FaceTrack(frames=(avatar,), boxes=BOX[None].astype(np.int64))
    renderer = Wav2LipRenderer(model=deterministic_wav2lip(), device=resolve_device("cpu"), enhancer=enhancer)
    with pytest.raises(ValueError, match="alignment"):
        renderer.frames(track, np.zeros(1600, np.float32), fps=25, enhance=True)
