"""The upstream side of bench/animation.py: OPEA's Wav2Lip server loop re-created, and the avatars it reads.

`upstream_loop` does per request what OPEA's Wav2Lip server does (see bench/animation.py's
docstring); `detect`, `padded_boxes` and `align` are its per-frame face detection and GFPGAN
alignment; `make_video` builds the bench's video avatar.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import torch

from comps.animation.detect import HAAR_BOX_POINTS as BOX_POINTS
from comps.animation.detect import TEMPLATE_POINTS
from comps.animation.enhance import TEMPLATE
from comps.animation.wav2lip.mel import SAMPLE_RATE, melspectrogram
from comps.animation.wav2lip.network import Wav2Lip
from comps.core.audio import decode_audio

FPS = 25.0
CASCADE = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]


# ---- avatars and face detection (the same Haar detector on both sides) ----


def detect(frame: np.ndarray) -> tuple[int, int, int, int]:
    """Largest Haar face as an unpadded (x1, y1, x2, y2)."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    faces = cv2.CascadeClassifier(CASCADE).detectMultiScale(gray, 1.1, 5, minSize=(40, 40))
    if len(faces) == 0:
        raise RuntimeError("no face")
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(x + w), int(y + h)


def padded_boxes(frames: list[np.ndarray]) -> np.ndarray:
    """Upstream's face_detect: pads (0, 10, 0, 0), then the mean over a 5-frame window."""
    h, w = frames[0].shape[:2]
    boxes = []
    for frame in frames:
        x1, y1, x2, y2 = detect(frame)
        boxes.append([max(0, y1), min(h, y2 + 10), max(0, x1), min(w, x2)])
    arr = np.array(boxes, np.float64)
    for i in range(len(arr)):
        arr[i] = arr[len(arr) - 5 :].mean(0) if i + 5 > len(arr) else arr[i : i + 5].mean(0)
    return arr.astype(np.int64)


def align(box: np.ndarray) -> np.ndarray:
    """Affine onto GFPGAN's template from five points placed in the face box (stands in for RetinaFace landmarks)."""
    y1, y2, x1, x2 = box
    points = np.array([x1, y1], np.float32) + BOX_POINTS * np.array([x2 - x1, y2 - 10 - y1], np.float32)
    affine, _ = cv2.estimateAffinePartial2D(points, TEMPLATE_POINTS, method=cv2.LMEDS)
    return np.asarray(affine, np.float32)


def make_video(image: np.ndarray, path: Path, seconds: float = 5.0) -> None:
    """A 25 fps clip of the image with a slow 8% zoom and a small pan, encoded with libx264."""
    h, w = image.shape[:2]
    n = int(seconds * FPS)
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-framerate", "25"]
    cmd += ["-i", "pipe:0", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for i in range(n):
        t = i / (n - 1)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, 1.0 + 0.08 * t)
        m[:, 2] += np.array([10 * np.sin(2 * np.pi * t), -6 * t])
        proc.stdin.write(cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise RuntimeError(f"cannot read {path}")
    return image


def read_frames(path: Path) -> list[np.ndarray]:
    if path.suffix == ".png":
        return [read_image(path)]
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


# ---- the upstream loop (OPEA wav2lip server / Rudrabha inference.py), re-created ----


def upstream_paste(frame: np.ndarray, face: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """facexlib's paste_faces_to_input_image (upscale 1): full-frame inverse warp and masks, per frame."""
    h, w = frame.shape[:2]
    inverse = cv2.invertAffineTransform(affine)
    restored = cv2.warpAffine(face, inverse, (w, h))
    mask = cv2.warpAffine(np.ones((TEMPLATE, TEMPLATE), np.float32), inverse, (w, h))
    mask = cv2.erode(mask, np.ones((2, 2), np.uint8))
    pasted = mask[:, :, None] * restored
    edge = int(mask.sum() ** 0.5) // 20
    center = cv2.erode(mask, np.ones((edge * 2, edge * 2), np.uint8))
    soft = cv2.GaussianBlur(center, (edge * 2 + 1, edge * 2 + 1), 0)[:, :, None]
    return np.asarray(soft * pasted + (1 - soft) * frame, np.uint8)


def upstream_loop(
    model: Wav2Lip, avatar: Path, wav: Path, out: Path, workdir: Path, *, bf16: bool, gfpgan: torch.nn.Module | None
) -> int:
    """One request the upstream way; returns the number of frames written."""
    full_frames = read_frames(avatar)  # every avatar frame, held in memory, per request
    audio = decode_audio(wav.read_bytes(), sample_rate=SAMPLE_RATE, max_seconds=600, param="audio")
    mel = melspectrogram(audio)
    chunks, i = [], 0
    while True:  # upstream's indexing: stops ~0.19 s before the audio ends
        start = int(i * 80.0 / FPS)
        if start + 16 > mel.shape[1]:
            chunks.append(mel[:, -16:])
            break
        chunks.append(mel[:, start : start + 16])
        i += 1
    full_frames = full_frames[: len(chunks)]
    boxes = padded_boxes(full_frames)  # face detection on every input frame, every request
    h, w = full_frames[0].shape[:2]
    writer = cv2.VideoWriter(str(workdir / "result.avi"), cv2.VideoWriter.fourcc(*"DIVX"), FPS, (w, h))
    batch = 128
    written = 0
    for b in range(0, len(chunks), batch):
        idx = [k % len(full_frames) for k in range(b, min(b + batch, len(chunks)))]
        faces = np.asarray(
            [cv2.resize(full_frames[j][y1:y2, x1:x2], (96, 96)) for j in idx for y1, y2, x1, x2 in [boxes[j]]]
        )
        masked = faces.copy()
        masked[:, 48:] = 0
        img = np.concatenate((masked, faces), axis=3) / 255.0
        mels = np.asarray(chunks[b : b + len(idx)])[:, None]
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = model(torch.FloatTensor(mels), torch.FloatTensor(np.transpose(img, (0, 3, 1, 2))))
        pred = pred.float().numpy().transpose(0, 2, 3, 1) * 255.0
        for p, j in zip(pred, idx, strict=True):
            f = full_frames[j].copy()
            y1, y2, x1, x2 = boxes[j]
            f[y1:y2, x1:x2] = cv2.resize(p.astype(np.uint8), (int(x2 - x1), int(y2 - y1)))
            if gfpgan is not None:  # GFPGANer.enhance per frame: detect, align, one face, paste
                try:  # GFPGANer detects on the Wav2Lip frame; random weights can hide the face from Haar,
                    face_box = padded_boxes([f])[0]
                except RuntimeError:  # then the box found before (the detection cost was paid either way)
                    face_box = boxes[j]
                affine = align(face_box)
                crop = cv2.warpAffine(f, affine, (TEMPLATE, TEMPLATE), borderValue=(135, 133, 132))
                x = torch.from_numpy(crop[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
                with torch.no_grad():
                    y = gfpgan(x, return_rgb=False)[0][0].clamp(-1, 1)
                face = ((y + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()[..., ::-1]
                f = upstream_paste(f, np.ascontiguousarray(face), affine)
            writer.write(f)
            written += 1
    writer.release()
    cmd = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-i",
        str(wav),
        "-i",
        str(workdir / "result.avi"),
        "-strict",
        "-2",
        "-q:v",
        "1",
    ]
    subprocess.run([*cmd, str(out)], check=True)
    return written
