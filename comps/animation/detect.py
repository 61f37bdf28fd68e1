"""Face detection for avatars (OpenCV Haar or RetinaFace) and the face track built from it, once per avatar."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from comps.animation.track import FaceTrack, Frame
from comps.core.weights import WeightSpec

logger = logging.getLogger(__name__)

# Upstream Wav2Lip's default `--pads 0 10 0 0`: top, bottom, left, right in pixels (the chin needs room).
PADS = (0, 10, 0, 0)
SMOOTH_WINDOW = 5  # frames averaged per box of a video avatar (upstream's get_smoothened_boxes uses T=5)
OUTLIER_WINDOW = 9  # frames whose median face a video frame's face is compared with
# A frame's face is a false detection when its centre is further than this fraction of the local median
# face size from the median centre, or its size is off by more than OUTLIER_SCALE either way.
OUTLIER_SHIFT = 0.35
OUTLIER_SCALE = 1.5
HAAR_CASCADE = "haarcascade_frontalface_default.xml"
RETINAFACE_THRESHOLD = 0.8  # facexlib's default confidence threshold
# facexlib's five-point template for GFPGAN's 512x512 aligned face (eyes, nose tip, mouth corners), in pixels.
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
# Haar gives no landmarks: these canonical positions of the same five points inside a frontal Haar box
# (fractions of its width and height) stand in for them. Fixed proportions of an upright frontal face,
# not a measurement: fine for a front-facing avatar, use RetinaFace for tilted or turned faces.
HAAR_BOX_POINTS = np.array([[0.32, 0.40], [0.68, 0.40], [0.50, 0.58], [0.36, 0.77], [0.64, 0.77]], np.float32)
# RetinaFace ResNet-50 weights, the file facexlib (and so GFPGAN) downloads; fetched by `avatarchat download gfpgan`.
RETINAFACE = WeightSpec(
    component="gfpgan",
    filename="detection_Resnet50_Final.pth",
    url="https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth",
)


class NoFaceError(ValueError):
    """No face was found in any frame of an avatar."""


@dataclass(frozen=True)
class Face:
    """One detected face: its unpadded box `x1, y1, x2, y2` and five landmarks (x, y), in pixels."""

    box: npt.NDArray[np.float32]  # (4,)
    landmarks: npt.NDArray[np.float32]  # (5, 2)


class FaceDetector(Protocol):
    """Finds the main face of a BGR frame, or None."""

    def detect(self, frame: Frame) -> Face | None:
        """The largest face in `frame`, or None when there is none."""
        ...


class HaarDetector:
    """OpenCV's bundled frontal-face Haar cascade: no weights to download, fast, frontal faces only."""

    def __init__(self) -> None:
        """Load the cascade shipped inside opencv-python."""
        path = Path(cv2.data.haarcascades) / HAAR_CASCADE  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"cannot load OpenCV's Haar cascade {path}")

    def detect(self, frame: Frame) -> Face | None:
        """The largest face; landmarks placed in the box with `HAAR_BOX_POINTS`."""
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        faces = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
        if len(faces) == 0:
            return None
        x, y, w, h = (float(v) for v in max(faces, key=lambda f: int(f[2]) * int(f[3])))
        box = np.array([x, y, x + w, y + h], np.float32)
        landmarks = np.array([x, y], np.float32) + HAAR_BOX_POINTS * np.array([w, h], np.float32)
        return Face(box=box, landmarks=landmarks.astype(np.float32))


class RetinaFaceDetector:
    """facexlib's RetinaFace (ResNet-50): accurate boxes and real five-point landmarks."""

    def __init__(self, *, model: object) -> None:
        """Wrap a loaded `facexlib.detection.retinaface.RetinaFace`."""
        self._model = model

    @classmethod
    def load(cls, path: Path, *, device: str = "cpu") -> RetinaFaceDetector:
        """Load `detection_Resnet50_Final.pth` strictly (weights resolved by the caller, never downloaded here)."""
        import torch
        from facexlib.detection.retinaface import RetinaFace

        with warnings.catch_warnings():  # facexlib builds resnet50 with torchvision's deprecated `pretrained=`
            warnings.simplefilter("ignore", UserWarning)
            model = RetinaFace(network_name="resnet50", half=False, device=torch.device(device))
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
        return cls(model=model.eval())

    def detect(self, frame: Frame) -> Face | None:
        """The largest face above facexlib's confidence threshold."""
        import torch

        with torch.inference_mode():
            dets = self._model.detect_faces(frame, conf_threshold=RETINAFACE_THRESHOLD)  # type: ignore[attr-defined]
        return face_from_retinaface(np.asarray(dets, np.float32))


def face_from_retinaface(dets: npt.NDArray[np.float32]) -> Face | None:
    """Pick the largest face of RetinaFace's output rows `x1, y1, x2, y2, score, 5 x (x, y)`."""
    rows = dets.astype(np.float64).reshape(-1, 15)
    width, height = rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1]
    rows = rows[np.isfinite(rows).all(axis=1) & (width > 0) & (height > 0)]  # drop degenerate decodings
    if rows.size == 0:
        return None
    areas = (rows[:, 2] - rows[:, 0]) * (rows[:, 3] - rows[:, 1])
    row = rows[int(np.argmax(areas))].astype(np.float32)
    return Face(box=row[:4].copy(), landmarks=row[5:15].reshape(5, 2).copy())


def _fill_and_smooth(values: list[npt.NDArray[np.float32] | None], window: int) -> npt.NDArray[np.float32]:
    """Frames without a detection take the nearest detected frame's value; then a centred moving average."""
    found = {i: v for i, v in enumerate(values) if v is not None}
    filled = [found[min(found, key=lambda j: abs(j - i))] for i in range(len(values))]
    stacked = np.stack(filled).astype(np.float32)  # (n, ...)
    half = window // 2
    out = np.empty_like(stacked)
    for i in range(len(stacked)):
        out[i] = stacked[max(0, i - half) : i + half + 1].mean(axis=0)
    return out


def _reject_outliers(faces: list[Face | None]) -> list[Face | None]:
    """Drop a video frame's face that jumps away from the local median face (e.g. a Haar false positive)."""
    if len(faces) < 3:
        return faces
    found = [(i, f) for i, f in enumerate(faces) if f is not None]
    geometry = {i: (0.5 * (f.box[:2] + f.box[2:]), float(np.sqrt(np.prod(f.box[2:] - f.box[:2])))) for i, f in found}
    half = OUTLIER_WINDOW // 2
    kept: list[Face | None] = []
    for i, face in enumerate(faces):
        if face is None:
            kept.append(None)
            continue
        near = [geometry[j] for j in range(max(0, i - half), i + half + 1) if j in geometry]
        centre = np.median(np.stack([c for c, _ in near]), axis=0)
        size = float(np.median([s for _, s in near]))
        own_centre, own_size = geometry[i]
        shifted = float(np.linalg.norm(own_centre - centre)) > OUTLIER_SHIFT * size
        rescaled = not 1 / OUTLIER_SCALE <= own_size / max(size, 1e-6) <= OUTLIER_SCALE
        kept.append(None if shifted or rescaled else face)
    return kept


def padded_box(box: npt.NDArray[np.float32], height: int, width: int) -> npt.NDArray[np.int64]:
    """`x1, y1, x2, y2` -> upstream's padded, clipped `y1, y2, x1, x2` in whole pixels."""
    top, bottom, left, right = PADS
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    return np.array([max(0, y1 - top), min(height, y2 + bottom), max(0, x1 - left), min(width, x2 + right)], np.int64)


def alignment(landmarks: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The (2, 3) similarity transform taking five landmarks onto GFPGAN's 512x512 template (as facexlib does)."""
    affine, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), TEMPLATE_POINTS, method=cv2.LMEDS)
    if affine is None:
        raise NoFaceError("the face landmarks are degenerate; no alignment onto the GFPGAN template exists")
    return np.asarray(affine, np.float32)


def build_track(frames: Sequence[Frame], detector: FaceDetector, *, fps: float | None) -> FaceTrack:
    """Detect the face on every frame and build the cached track: padded boxes, landmarks and GFPGAN affines.

    A video's boxes and landmarks are smoothed over `SMOOTH_WINDOW` frames, so the pasted face does
    not jitter; frames where detection failed borrow the nearest detected frame's face.

    Raises:
        NoFaceError: no frame has a detectable face.
    """
    faces = _reject_outliers([detector.detect(frame) for frame in frames])
    if all(face is None for face in faces):
        raise NoFaceError("no face was found in the avatar; use a clear, front-facing picture of one face")
    missing = sum(face is None for face in faces)
    if missing:
        logger.info("no face in %d of %d avatar frames; using the nearest detected face", missing, len(frames))
    window = SMOOTH_WINDOW if len(frames) > 1 else 1
    boxes = _fill_and_smooth([f.box if f else None for f in faces], window)
    points = _fill_and_smooth([f.landmarks if f else None for f in faces], window)
    height, width = frames[0].shape[:2]
    padded = np.stack([padded_box(b, height, width) for b in boxes])
    if np.any(padded[:, 1] <= padded[:, 0]) or np.any(padded[:, 3] <= padded[:, 2]):
        raise NoFaceError("the detected face box is empty")
    align = np.stack([alignment(p) for p in points])
    return FaceTrack(frames=tuple(frames), boxes=padded, fps=fps, align=align, landmarks=points)
